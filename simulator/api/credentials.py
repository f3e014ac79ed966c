"""AWS credentials and region, found where the AWS CLI and SDKs look for them.

The chain, as botocore runs it for static keys:

1. the environment: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and
   ``AWS_SESSION_TOKEN`` (or the older ``AWS_SECURITY_TOKEN``), skipped when a
   profile is named explicitly (``AWS_PROFILE`` does not skip it);
2. the shared credentials file (``AWS_SHARED_CREDENTIALS_FILE``, default
   ``~/.aws/credentials``), section ``[name]``;
3. the config file (``AWS_CONFIG_FILE``, default ``~/.aws/config``), section
   ``[profile name]`` (``[default]`` for the default profile);

for the profile given, else ``AWS_PROFILE``, else ``default``. Not supported: SSO,
assumed roles, ``credential_process``, web identity, container and instance
metadata (IMDS); export such a profile's keys first (``aws configure
export-credentials --format env``). Messages never carry a secret.
"""

from __future__ import annotations

import configparser
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from simulator.api.sigv4 import Credentials

# Keys that mean a profile gets its credentials some way this module does not follow.
_UNSUPPORTED: Final = {
    "sso_session": "SSO",
    "sso_start_url": "SSO",
    "role_arn": "an assumed role",
    "credential_process": "credential_process",
    "web_identity_token_file": "web identity",
    "credential_source": "instance or container metadata",
}


class CredentialsError(Exception):
    """No usable credentials: one line saying what was looked at."""


def resolve(
    profile: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Credentials:
    """The first credentials the chain finds (see the module docstring)."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    looked: list[str] = []
    if profile is None:
        found = _from_env(env)
        if found is not None:
            return found
        looked.append("the environment (AWS_ACCESS_KEY_ID is not set)")
    name = _profile_name(profile, env)
    for path, in_config in ((_credentials_file(env, home), False), (_config_file(env, home), True)):
        config = _read(path)
        if config is None:
            looked.append(f"{path} (no such file)")
            continue
        section = _config_section(config, name) if in_config else name
        if section is None or not config.has_section(section):
            looked.append(f"{path} (no [{'profile ' if in_config else ''}{name}] section)")
            continue
        values = config[section]
        found = _from_section(values, f"[{section}] in {path}")
        if found is not None:
            return found
        how = sorted({_UNSUPPORTED[key] for key in values if key in _UNSUPPORTED})
        reason = f"uses {', '.join(how)}, not supported" if how else "no aws_access_key_id"
        looked.append(f"[{section}] in {path} ({reason})")
    raise CredentialsError(
        f"no AWS credentials for profile {name!r}; looked at: {'; '.join(looked)}"
    )


def resolve_region(
    profile: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> str | None:
    """``AWS_REGION``, else ``AWS_DEFAULT_REGION``, else the profile's ``region`` in the
    config file; None if none of them is set."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if env.get(variable):
            return env[variable]
    config = _read(_config_file(env, home))
    section = None if config is None else _config_section(config, _profile_name(profile, env))
    if config is None or section is None:
        return None
    return config[section].get("region") or None


def _profile_name(profile: str | None, env: Mapping[str, str]) -> str:
    return profile or env.get("AWS_PROFILE") or "default"


def _config_section(config: configparser.RawConfigParser, name: str) -> str | None:
    """The config file's section for a profile: ``[profile name]`` (quotes allowed), or
    ``[default]`` for the default one; the last such section, as botocore reads it."""
    found = None
    for section in config.sections():
        if section.startswith("profile"):
            try:
                parts = shlex.split(section)
            except ValueError:
                continue
            if parts[1:] == [name]:
                found = section
        elif section == name == "default":
            found = section
    return found


def _from_env(env: Mapping[str, str]) -> Credentials | None:
    access_key = env.get("AWS_ACCESS_KEY_ID")
    if not access_key:
        return None
    secret_key = env.get("AWS_SECRET_ACCESS_KEY")
    if not secret_key:
        raise CredentialsError("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
    token = env.get("AWS_SESSION_TOKEN") or env.get("AWS_SECURITY_TOKEN") or None
    return Credentials(access_key=access_key, secret_key=secret_key, session_token=token)


def _from_section(values: Mapping[str, str], where: str) -> Credentials | None:
    access_key = values.get("aws_access_key_id")
    if not access_key:
        return None
    secret_key = values.get("aws_secret_access_key")
    if not secret_key:
        raise CredentialsError(f"{where} has aws_access_key_id but no aws_secret_access_key")
    token = values.get("aws_session_token") or values.get("aws_security_token") or None
    return Credentials(access_key=access_key, secret_key=secret_key, session_token=token)


def _credentials_file(env: Mapping[str, str], home: Path) -> Path:
    return _expand(env.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials", home)


def _config_file(env: Mapping[str, str], home: Path) -> Path:
    return _expand(env.get("AWS_CONFIG_FILE") or "~/.aws/config", home)


def _expand(path: str, home: Path) -> Path:
    if path == "~" or path.startswith("~/"):
        return home / path[2:]
    return Path(path)


def _read(path: Path) -> configparser.RawConfigParser | None:
    """The INI file at ``path``, None if there is none. Errors never quote a line:
    it could hold a secret."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise CredentialsError(f"cannot read {path}: {reason}") from None
    config = configparser.RawConfigParser()
    try:
        config.read_string(text, source=str(path))
    except configparser.MissingSectionHeaderError as exc:
        raise CredentialsError(f"{path}:{exc.lineno}: a setting before any [section]") from None
    except configparser.ParsingError as exc:
        line = exc.errors[0][0] if exc.errors else "?"
        raise CredentialsError(f"{path}:{line}: not a setting or a [section]") from None
    except configparser.Error as exc:
        raise CredentialsError(f"{path}: {exc.message}") from None
    return config
