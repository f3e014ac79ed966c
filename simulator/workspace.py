"""The files clicksim keeps: a CA folder and fleets of device identities.

The device core makes keys, certificates and manifests as bytes; this module puts
them on disk, safely: private keys are created with mode 0600, and nothing is ever
left half-written. A fleet is built in a hidden temporary folder and moved into
place in one rename, its manifest last, so an interrupted ``fleet create`` leaves
nothing behind and an existing fleet is never overwritten.

CA folder layout (``certs/`` by default)::

    ca.crt  ca.key              the device CA
    server.crt  server.key      for brokers: localhost, 127.0.0.1, ::1
    backend.crt  backend.key    the backend service's client identity (clicksim-backend)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from simulator.device.fleet import (
    DeviceRecord,
    Manifest,
    check_claim_code,
    derive,
    make_claim_code,
    plan_devices,
)
from simulator.device.identity import (
    BACKEND_CLIENT_CN,
    CertificateAuthority,
    Identity,
    IdentityError,
    KeyType,
)
from simulator.device.profile import Profile

DEFAULT_CA_DIR: Final = Path("certs")
CA_FILES: Final = ("ca.crt", "ca.key", "server.crt", "server.key", "backend.crt", "backend.key")


class WorkspaceError(ValueError):
    """A file or folder that cannot be used; the message names it and the fix."""


def new_seed() -> str:
    """A fresh random seed, printed and recorded so that the run can be replayed."""
    return secrets.token_hex(8)


@dataclass(frozen=True, kw_only=True)
class CaFolder:
    path: Path

    @property
    def certificate(self) -> Path:
        return self.path / "ca.crt"

    def exists(self) -> bool:
        return any((self.path / name).exists() for name in CA_FILES)

    def load(self) -> CertificateAuthority:
        if not self.certificate.exists():
            raise WorkspaceError(
                f"{self.path}: no CA here (no ca.crt); "
                f"run 'clicksim ca init --dir {self.path}' first"
            )
        try:
            return CertificateAuthority.from_pem(
                certificate_pem=self.certificate.read_bytes(),
                key_pem=(self.path / "ca.key").read_bytes(),
            )
        except IdentityError as exc:
            raise WorkspaceError(f"{self.path}: {exc}") from None
        except OSError as exc:
            raise WorkspaceError(f"{self.path}: cannot read the CA: {exc.strerror}") from None

    def identity_files(self, stem: str) -> tuple[Path, Path]:
        """Certificate and key of ``server`` or ``backend``."""
        return self.path / f"{stem}.crt", self.path / f"{stem}.key"


def init_ca(path: Path, *, seed: str, key_type: KeyType, replace: bool = False) -> CaFolder:
    """Create a CA, a broker server identity and the backend's client identity."""
    folder = CaFolder(path=path)
    if folder.exists() and not replace:
        raise WorkspaceError(
            f"{path}: a CA is already there; use --force to replace it "
            "(fleets it signed will no longer be trusted)"
        )
    ca = CertificateAuthority.create(seed=derive(seed, "ca"), key_type=key_type)
    server = ca.issue_server(seed=derive(seed, "server"))
    backend = ca.issue_client(seed=derive(seed, "backend"), common_name=BACKEND_CLIENT_CN)
    with _staging(path.parent, path.name) as stage:
        for stem, identity in (("ca", ca.identity), ("server", server), ("backend", backend)):
            _write_identity(stage, stem, identity)
        path.mkdir(parents=True, exist_ok=True)
        for name in CA_FILES:
            (stage / name).replace(path / name)
    return folder


def create_fleet(
    profile: Profile,
    *,
    ca_folder: CaFolder,
    count: int,
    seed: str,
    claim_code: str | None,
    out: Path,
    profile_file: Path | None = None,
) -> Manifest:
    """Write a fleet's identities and manifest; refuse to overwrite anything.

    ``profile_file``: where a profile that is not bundled came from, so that the
    fleet can be run later from its manifest alone.
    """
    devices_dir = out.with_suffix("")
    for target in (out, devices_dir):
        if target.exists():
            raise WorkspaceError(f"{target}: already exists; choose another --out or remove it")
    code = check_claim_code(claim_code) if claim_code is not None else make_claim_code(seed)
    ca = ca_folder.load()
    planned = plan_devices(profile, count=count, seed=seed)
    ca_relative = Path(os.path.relpath(ca_folder.certificate, out.parent)).as_posix()
    records: list[DeviceRecord] = []
    with _staging(out.parent, out.name) as stage:
        for device in planned:
            identity = ca.issue_device(device.device_id, seed=device.key_seed)
            _write_identity(stage, device.device_id, identity)
            records.append(
                DeviceRecord(
                    device_id=device.device_id,
                    device_type=profile.device_type,
                    profile=profile.name,
                    certificate=f"{devices_dir.name}/{device.device_id}.crt",
                    key=f"{devices_dir.name}/{device.device_id}.key",
                    certificate_id=identity.certificate_id,
                    claim_code=code,
                )
            )
        manifest = Manifest(
            profile=profile.name,
            seed=seed,
            claim_code=code,
            ca_certificate=ca_relative,
            devices=tuple(records),
            profile_file=(
                Path(os.path.relpath(profile_file, out.parent)).as_posix() if profile_file else None
            ),
        )
        manifest_tmp = stage.parent / f".{out.name}.{stage.name}"
        manifest_tmp.write_text(manifest.to_json())
        moved = False
        try:
            stage.rename(devices_dir)
            moved = True
            # link() refuses to replace: a manifest written meanwhile is not clobbered.
            os.link(manifest_tmp, out)
        except FileExistsError:
            if moved:
                shutil.rmtree(devices_dir, ignore_errors=True)
            raise WorkspaceError(
                f"{out}: appeared while the fleet was written; nothing changed"
            ) from None
        finally:
            manifest_tmp.unlink(missing_ok=True)
    return manifest


def read_manifest(path: Path) -> Manifest:
    try:
        text = path.read_text()
    except OSError as exc:
        raise WorkspaceError(f"{path}: cannot read the fleet manifest: {exc.strerror}") from None
    return Manifest.from_json(text, source=str(path))


def _write_identity(folder: Path, stem: str, identity: Identity) -> None:
    (folder / f"{stem}.crt").write_bytes(identity.certificate_pem())
    descriptor = os.open(folder / f"{stem}.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as key_file:
        key_file.write(identity.key_pem())


@contextlib.contextmanager
def _staging(parent: Path, name: str) -> Iterator[Path]:
    """A hidden folder beside the target, removed whatever happens."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=parent))
    except OSError as exc:
        raise WorkspaceError(f"{parent}: cannot write here: {exc.strerror}") from None
    try:
        yield stage
    except OSError as exc:
        raise WorkspaceError(f"{exc.filename or parent}: cannot write: {exc.strerror}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def save_manifest(path: Path, manifest: Manifest) -> None:
    """Replace a manifest in one rename: a crash leaves the old one or the new one."""
    staged = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    try:
        staged.write_text(manifest.to_json())
        staged.replace(path)
    except OSError as exc:
        staged.unlink(missing_ok=True)
        raise WorkspaceError(f"{path}: cannot save the fleet's progress: {exc.strerror}") from None
