"""The command line as a user meets it: CliRunner, real files, real certificates."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from simulator.runtime.fleet import Fleet
from tests.cli.conftest import assert_input_error, leftovers, run
from tests.support import PROFILES


def test_ca_init_writes_private_keys_and_refuses_to_overwrite(in_tmp: Path) -> None:
    result = run("ca", "init", "--seed", "s1")
    assert result.exit_code == 0, result.output
    for stem in ("ca", "server", "backend"):
        assert (in_tmp / "certs" / f"{stem}.crt").is_file()
        mode = stat.S_IMODE((in_tmp / "certs" / f"{stem}.key").stat().st_mode)
        assert mode == 0o600
    before = (in_tmp / "certs" / "ca.crt").read_bytes()
    assert_input_error(run("ca", "init"), "certs", "already there", "--force")
    assert (in_tmp / "certs" / "ca.crt").read_bytes() == before
    assert run("ca", "init", "--force", "--seed", "s2").exit_code == 0
    assert (in_tmp / "certs" / "ca.crt").read_bytes() != before
    assert leftovers(in_tmp) == []


def test_ca_init_is_deterministic_by_seed(in_tmp: Path) -> None:
    for folder in ("a", "b"):
        assert run("ca", "init", "--dir", folder, "--seed", "same").exit_code == 0
    for name in ("ca.crt", "ca.key", "server.crt", "backend.crt"):
        assert (in_tmp / "a" / name).read_bytes() == (in_tmp / "b" / name).read_bytes()


def test_fleet_create_writes_manifest_and_identities(ca_dir: Path) -> None:
    result = run(
        "fleet", "create", "--profile", "aws-iot-enterprise-button", "--count", "5",
        "--seed", "f1", "--claim-code", "C-ABCDEFGHIJ12",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest_path = ca_dir / "fleet.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["format"] == "clicksim-fleet/1"
    assert manifest["claimCode"] == "C-ABCDEFGHIJ12"
    assert len(manifest["devices"]) == 5
    ca_cert = x509.load_pem_x509_certificate((ca_dir / manifest["caCertificate"]).read_bytes())
    ids = set()
    for device in manifest["devices"]:
        ids.add(device["deviceId"])
        assert device["deviceId"].startswith("G030PM")
        assert len(device["deviceId"]) == 16
        assert device["type"] == "button"
        assert device["claimCode"] == "C-ABCDEFGHIJ12"
        assert device["seq"] == 0
        pem = (ca_dir / device["certificate"]).read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
        der = cert.public_bytes(Encoding.DER)
        assert device["certificateId"] == hashlib.sha256(der).hexdigest()
        cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        assert cn == device["deviceId"]
        cert.verify_directly_issued_by(ca_cert)  # signature, issuer name, CA key usage
        assert stat.S_IMODE((ca_dir / device["key"]).stat().st_mode) == 0o600
    assert len(ids) == 5
    assert manifest["seed"] == "f1"
    assert "C-ABCDEFGHIJ12" in result.output


def test_fleet_create_is_deterministic_by_seed(ca_dir: Path) -> None:
    for out in ("one.json", "two.json"):
        args = ("--profile", "soracom-lte-m-button", "--count", "3", "--seed", "replay")
        assert run("fleet", "create", *args, "--out", f"certs/{out}").exit_code == 0
    one = json.loads((ca_dir / "one.json").read_text())
    two = json.loads((ca_dir / "two.json").read_text())
    assert [d["deviceId"] for d in one["devices"]] == [d["deviceId"] for d in two["devices"]]
    assert one["claimCode"] == two["claimCode"]
    for a, b in zip(one["devices"], two["devices"], strict=True):
        assert a["certificateId"] == b["certificateId"]
        assert (ca_dir / a["key"]).read_bytes() == (ca_dir / b["key"]).read_bytes()
        assert (ca_dir / a["certificate"]).read_bytes() == (ca_dir / b["certificate"]).read_bytes()


def test_fleet_create_generates_a_claim_code_and_seed(ca_dir: Path) -> None:
    args = ("--profile", "aws-iot-button-gen1", "--count", "2")
    assert run("fleet", "create", *args).exit_code == 0
    manifest = json.loads((ca_dir / "fleet.json").read_text())
    assert manifest["claimCode"].startswith("C-")
    assert 12 <= len(manifest["claimCode"]) <= 40
    assert manifest["seed"]


def test_fleet_create_accepts_a_profile_file(ca_dir: Path) -> None:
    custom = ca_dir.parent / "my-button.toml"
    text = (PROFILES / "aws-iot-button-gen2.toml").read_text()
    custom.write_text(text.replace('"aws-iot-button-gen2"', '"my-button"', 1))
    assert run("fleet", "create", "--profile", str(custom), "--count", "1").exit_code == 0
    manifest = json.loads((ca_dir / "fleet.json").read_text())
    assert manifest["devices"][0]["profile"] == "my-button"
    assert manifest["profileFile"] == "../my-button.toml"
    # The fleet runs from its manifest alone, the custom profile found again.
    assert Fleet.open(ca_dir / "fleet.json").devices[0].profile.name == "my-button"


def test_a_bundled_profile_is_recorded_by_name_only(ca_dir: Path) -> None:
    assert run("fleet", "create", "--profile", "aws-iot-button-gen2", "--count", "1").exit_code == 0
    assert "profileFile" not in json.loads((ca_dir / "fleet.json").read_text())


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--profile", "no-such-button", "--count", "1"), ("unknown profile", "no-such-button")),
        (("--profile", "aws-iot-button-gen1", "--count", "0"), ("count", "1..", "got 0")),
        (("--profile", "aws-iot-button-gen1", "--count", "-1"), ("count", "got -1")),
        (("--profile", "aws-iot-button-gen1", "--count", "many"), ("--count", "many")),
        (
            ("--profile", "aws-iot-button-gen1", "--count", "1", "--claim-code", "X-123"),
            ("claim code", "X-123"),
        ),
        (
            ("--profile", "aws-iot-button-gen1", "--count", "1", "--claim-code", "C-short"),
            ("claim code", "C-short"),
        ),
        (("--count", "1"), ("--profile",)),
    ],
)
def test_fleet_create_refuses_bad_input(
    ca_dir: Path, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    assert_input_error(run("fleet", "create", *args), *fragments)
    assert not (ca_dir / "fleet.json").exists()
    assert not (ca_dir / "fleet").exists()
    assert leftovers(ca_dir.parent) == []


def test_fleet_create_refuses_an_existing_fleet(ca_dir: Path) -> None:
    args = ("--profile", "aws-iot-button-gen1", "--count", "2", "--seed", "a")
    assert run("fleet", "create", *args).exit_code == 0
    before = (ca_dir / "fleet.json").read_bytes()
    again = ("--profile", "aws-iot-button-gen1", "--count", "2", "--seed", "b")
    assert_input_error(run("fleet", "create", *again), "fleet.json", "already exists")
    assert (ca_dir / "fleet.json").read_bytes() == before
    assert leftovers(ca_dir.parent) == []


def test_fleet_create_refuses_a_leftover_identity_folder(ca_dir: Path) -> None:
    (ca_dir / "fleet").mkdir()
    args = ("--profile", "aws-iot-button-gen1", "--count", "1")
    assert_input_error(run("fleet", "create", *args), "fleet", "already exists")
    assert not (ca_dir / "fleet.json").exists()


def test_fleet_create_needs_a_ca(in_tmp: Path) -> None:
    args = ("--profile", "aws-iot-button-gen1", "--count", "1")
    assert_input_error(run("fleet", "create", *args), "no CA", "clicksim ca init")
    assert leftovers(in_tmp) == []


def test_fleet_create_reports_an_unwritable_place(ca_dir: Path) -> None:
    blocker = ca_dir.parent / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    args = ("--profile", "aws-iot-button-gen1", "--count", "1")
    result = run("fleet", "create", *args, "--out", "not-a-folder/fleet.json")
    assert_input_error(result, "not-a-folder", "cannot write")
    assert blocker.read_text() == "a file where a folder should be"


def test_fleet_create_refuses_a_malformed_profile_file(ca_dir: Path) -> None:
    broken = ca_dir.parent / "broken.toml"
    broken.write_text('name = "broken"\n[timings\n')
    args = ("--profile", str(broken), "--count", "1")
    assert_input_error(run("fleet", "create", *args), "broken.toml", "not valid TOML", "line 2")


def test_fleet_create_refuses_an_invalid_profile_value(ca_dir: Path) -> None:
    bad = ca_dir.parent / "aws-iot-button-gen1.toml"
    text = (PROFILES / "aws-iot-button-gen1.toml").read_text()
    bad.write_text(text.replace("long_press_ms = 1500", "long_press_ms = -3"))
    line = next(
        i for i, row in enumerate(bad.read_text().splitlines(), 1) if "long_press_ms" in row
    )
    args = ("--profile", str(bad), "--count", "1")
    result = run("fleet", "create", *args)
    assert_input_error(result, f"aws-iot-button-gen1.toml:{line}", "long_press_ms", "got -3")


def test_profiles_list_names_every_bundled_profile() -> None:
    result = run("profiles", "list")
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.splitlines()]
    assert names == sorted(p.stem for p in PROFILES.glob("*.toml"))


def test_profiles_show_describes_one() -> None:
    result = run("profiles", "show", "soracom-lte-m-button")
    assert result.exit_code == 0
    assert "1,500 clicks or 365 days" in result.output
    assert "oneclick" in result.output


def test_profiles_show_refuses_an_unknown_name() -> None:
    assert_input_error(run("profiles", "show", "nope"), "unknown profile", "aws-iot-button-gen1")


def test_version_and_help() -> None:
    assert run("--version").output.startswith("clicksim, version")
    assert "fleet" in run("--help").output
