"""Profiles and scenarios that ship with clicksim, and where a name leads.

In a checkout they are the top-level ``profiles/`` and ``scenarios/`` folders; in an
installed wheel, copies inside the package (``simulator/_bundled``). A reference that
looks like a path (``.toml``, or with a folder) is read as a file instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from simulator.device.profile import PROFILE_NAME, Profile, ProfileError, parse_profile

_PACKAGE: Final = Path(__file__).resolve().parent


def bundled_dir(kind: str) -> Path:
    """The folder of bundled ``profiles`` or ``scenarios``."""
    installed = _PACKAGE / "_bundled" / kind
    return installed if installed.is_dir() else _PACKAGE.parent / kind


def profile_names() -> list[str]:
    return sorted(path.stem for path in bundled_dir("profiles").glob("*.toml"))


def profile_path(reference: str) -> Path:
    """The file a profile name or path refers to."""
    if reference.endswith(".toml") or "/" in reference:
        return Path(reference)
    if not PROFILE_NAME.fullmatch(reference):
        raise ProfileError(f"{reference!r} is not a profile name or a .toml path")
    path = bundled_dir("profiles") / f"{reference}.toml"
    if not path.is_file():
        known = ", ".join(profile_names())
        raise ProfileError(f"unknown profile {reference!r}: known are {known} (or a .toml path)")
    return path


def load_profile(reference: str) -> Profile:
    path = profile_path(reference)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read the profile: {exc.strerror}") from None
    profile = parse_profile(text, source=str(path))
    if profile.name != path.stem:
        raise ProfileError(
            f"{path}:1: name {profile.name!r} differs from the file name {path.stem!r}"
        )
    return profile


def is_bundled(path: Path) -> bool:
    """Whether a profile file is one clicksim ships (found again by name anywhere)."""
    return path.resolve().parent == bundled_dir("profiles").resolve()
