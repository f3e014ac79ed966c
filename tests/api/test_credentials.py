"""The credential chain: the answers botocore gives, and errors that say where we looked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import botocore.session
import pytest

from simulator.api.credentials import CredentialsError, resolve, resolve_region
from simulator.api.sigv4 import Credentials

SECRET: Final = "file-secret-0123456789"
DEFAULT: Final = (
    "[default]\naws_access_key_id = AKIAFILEDEFAULT\naws_secret_access_key = s-default\n"
)
WORK: Final = "[work]\naws_access_key_id = AKIAFILEWORK\naws_secret_access_key = s-work\n"
CONFIG_WORK: Final = (
    "[profile work]\nregion = eu-west-1\n"
    "aws_access_key_id = AKIACONFIGWORK\naws_secret_access_key = s-config-work\n"
)
CONFIG_DEFAULT: Final = (
    "[default]\nregion = us-west-2\n"
    "aws_access_key_id = AKIACONFIGDEFAULT\naws_secret_access_key = s-config-default\n"
)
ENV_KEYS: Final = {"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "s-env"}

# (credentials file, config file, environment, profile argument) -> the access key found
FOUND: Final = [
    pytest.param(None, None, ENV_KEYS, None, "AKIAENV", id="env"),
    pytest.param(DEFAULT, None, ENV_KEYS, None, "AKIAENV", id="env-before-files"),
    pytest.param(WORK, None, {**ENV_KEYS, "AWS_PROFILE": "work"}, None, "AKIAENV", id="env-wins"),
    pytest.param(WORK, None, ENV_KEYS, "work", "AKIAFILEWORK", id="explicit-profile-skips-env"),
    pytest.param(DEFAULT, None, {}, None, "AKIAFILEDEFAULT", id="credentials-file"),
    pytest.param(
        DEFAULT + WORK, None, {"AWS_PROFILE": "work"}, None, "AKIAFILEWORK", id="aws-profile"
    ),
    pytest.param(None, CONFIG_WORK, {"AWS_PROFILE": "work"}, None, "AKIACONFIGWORK", id="config"),
    pytest.param(None, CONFIG_DEFAULT, {}, None, "AKIACONFIGDEFAULT", id="config-default"),
    pytest.param(
        None,
        CONFIG_DEFAULT.replace("[default]", '[profile "my work"]'),
        {},
        "my work",
        "AKIACONFIGDEFAULT",
        id="config-quoted-name",
    ),
    pytest.param(
        None,
        CONFIG_DEFAULT
        + CONFIG_DEFAULT.replace("[default]", "[profile default]").replace(
            "AKIACONFIGDEFAULT", "AKIALATER"
        ),
        {},
        None,
        "AKIALATER",
        id="config-last-default-section-wins",
    ),
    pytest.param(DEFAULT, CONFIG_DEFAULT, {}, None, "AKIAFILEDEFAULT", id="credentials-first"),
    pytest.param(
        "[work]\nregion = x\n", CONFIG_WORK, {}, "work", "AKIACONFIGWORK", id="keyless-section"
    ),
]


def _write(home: Path, credentials: str | None, config: str | None) -> None:
    (home / ".aws").mkdir(parents=True, exist_ok=True)
    if credentials is not None:
        (home / ".aws" / "credentials").write_text(credentials)
    if config is not None:
        (home / ".aws" / "config").write_text(config)


@pytest.mark.parametrize(("credentials", "config", "env", "profile", "access_key"), FOUND)
def test_resolves_what_botocore_resolves(
    credentials: str | None,
    config: str | None,
    env: dict[str, str],
    profile: str | None,
    access_key: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _write(tmp_path, credentials, config)

    found = resolve(profile, env=env, home=tmp_path)

    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in {**env, "HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    expected = botocore.session.Session(profile=profile).get_credentials()
    assert found.access_key == expected.access_key == access_key
    assert (found.secret_key, found.session_token) == (expected.secret_key, expected.token)


def test_session_tokens_come_along() -> None:
    env = {**ENV_KEYS, "AWS_SESSION_TOKEN": "token-1"}
    assert resolve(env=env, home=Path("/nonexistent")).session_token == "token-1"
    env = {**ENV_KEYS, "AWS_SECURITY_TOKEN": "token-2"}
    assert resolve(env=env, home=Path("/nonexistent")).session_token == "token-2"


def test_files_named_by_the_environment_with_a_tilde(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "creds").write_text(
        WORK + "aws_session_token = token-3\n", encoding="utf-8"
    )
    (tmp_path / "elsewhere" / "conf").write_text(CONFIG_WORK)
    env = {
        "AWS_SHARED_CREDENTIALS_FILE": "~/elsewhere/creds",
        "AWS_CONFIG_FILE": str(tmp_path / "elsewhere" / "conf"),
        "AWS_PROFILE": "work",
    }
    assert resolve(env=env, home=tmp_path) == Credentials(
        access_key="AKIAFILEWORK", secret_key="s-work", session_token="token-3"
    )
    assert resolve_region(env=env, home=tmp_path) == "eu-west-1"


def test_nothing_found_names_every_place_looked(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError) as caught:
        resolve(env={}, home=tmp_path)
    assert str(caught.value) == (
        "no AWS credentials for profile 'default'; looked at: "
        "the environment (AWS_ACCESS_KEY_ID is not set); "
        f"{tmp_path}/.aws/credentials (no such file); {tmp_path}/.aws/config (no such file)"
    )


def test_an_unknown_profile_names_the_sections_looked_for(tmp_path: Path) -> None:
    _write(tmp_path, DEFAULT, CONFIG_DEFAULT + "[work]\naws_access_key_id = X\n")
    with pytest.raises(CredentialsError) as caught:
        resolve("work", env=ENV_KEYS, home=tmp_path / "elsewhere")  # named: not from the env
    assert str(caught.value).startswith("no AWS credentials for profile 'work'; looked at: /")
    with pytest.raises(CredentialsError) as caught:
        resolve(env={"AWS_PROFILE": "work"}, home=tmp_path)
    message = str(caught.value)
    assert f"{tmp_path}/.aws/credentials (no [work] section)" in message
    assert f"{tmp_path}/.aws/config (no [profile work] section)" in message


def test_unsupported_sources_are_named(tmp_path: Path) -> None:
    _write(
        tmp_path,
        None,
        "[profile sso]\nsso_session = corp\nsso_account_id = 1\n"
        "[profile role]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = sso\n",
    )
    with pytest.raises(
        CredentialsError, match=r"\[profile sso\] in .* \(uses SSO, not supported\)"
    ):
        resolve("sso", env={}, home=tmp_path)
    with pytest.raises(CredentialsError, match=r"uses an assumed role, not supported"):
        resolve("role", env={}, home=tmp_path)


@pytest.mark.parametrize(
    ("credentials", "env", "message"),
    [
        (None, {"AWS_ACCESS_KEY_ID": "AKIAENV"}, "^AWS_ACCESS_KEY_ID is set but AWS_SECRET_"),
        (
            f"[default]\naws_access_key_id = AKIA\n# {SECRET}\n",
            {},
            r"\[default\] in .*credentials has aws_access_key_id but no aws_secret_access_key$",
        ),
        (f"aws_secret_access_key = {SECRET}\n", {}, r"credentials:1: a setting before any"),
        (f"[default]\nok = 1\n  {SECRET}\n{SECRET}\n", {}, r"credentials:4: not a setting or a"),
        ("[default]\na = 1\na = 2\n", {}, r"credentials: While reading from .* option 'a'"),
    ],
    ids=["env-partial", "file-partial", "no-section", "garbage", "duplicate"],
)
def test_errors_are_one_line_without_secrets(
    credentials: str | None, env: dict[str, str], message: str, tmp_path: Path
) -> None:
    _write(tmp_path, credentials, None)
    with pytest.raises(CredentialsError, match=message) as caught:
        resolve(env=env, home=tmp_path)
    assert SECRET not in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_unreadable_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / ".aws" / "credentials").mkdir(parents=True)
    with pytest.raises(CredentialsError, match=r"^cannot read .*credentials: Is a directory$"):
        resolve(env={}, home=tmp_path)


def test_secrets_stay_out_of_repr() -> None:
    found = resolve(env={**ENV_KEYS, "AWS_SESSION_TOKEN": "token-1"}, home=Path("/nonexistent"))
    assert "s-env" not in repr(found)
    assert "token-1" not in repr(found)


@pytest.mark.parametrize(
    ("env", "profile", "region"),
    [
        ({"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "sa-east-1"}, None, "ap-south-1"),
        ({"AWS_DEFAULT_REGION": "sa-east-1"}, "work", "sa-east-1"),
        ({}, None, "us-west-2"),
        ({"AWS_PROFILE": "work"}, None, "eu-west-1"),
        ({}, "work", "eu-west-1"),
        ({}, "nobody", None),
    ],
)
def test_region_from_the_environment_then_the_config_file(
    env: dict[str, str], profile: str | None, region: str | None, tmp_path: Path
) -> None:
    _write(tmp_path, None, CONFIG_DEFAULT + CONFIG_WORK)
    assert resolve_region(profile, env=env, home=tmp_path) == region


def test_no_config_file_no_region(tmp_path: Path) -> None:
    assert resolve_region(env={}, home=tmp_path) is None
