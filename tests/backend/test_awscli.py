"""The real AWS CLI v1 (1.36.31, the last with iot1click-devices) against the backend.

The CLI is what most people would point at a backend with ``--endpoint-url``; it
builds on botocore but adds its own argument parsing (shorthand maps and lists,
timestamps), auto-pagination, output and exit codes. It runs as a subprocess of the
venv under test, with credentials only from the environment: empty config and
credentials files, so the user's ``~/.aws`` never leaks in.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from simulator.backend.accounts import Account
from simulator.backend.server import ReferenceBackend
from simulator.runtime.fleet import Fleet
from tests.backend.conftest import ALICE, CLAIM_CODE, Clicker


class AwsCli:
    """``aws iot1click-devices ...`` as one account, against the backend."""

    def __init__(self, backend: ReferenceBackend, account: Account, home: Path) -> None:
        self.endpoint = backend.api_url
        config, credentials = home / "config", home / "credentials"
        config.write_text("")
        credentials.write_text("")
        host = urlsplit(backend.api_url).hostname or "127.0.0.1"
        # Nothing of the caller's AWS setup (profiles, CA bundle, region) gets through.
        self.env = {k: v for k, v in os.environ.items() if not k.upper().startswith("AWS_")}
        self.env.update(
            HOME=str(home),
            AWS_CONFIG_FILE=str(config),
            AWS_SHARED_CREDENTIALS_FILE=str(credentials),
            AWS_ACCESS_KEY_ID=account.credentials.access_key,
            AWS_SECRET_ACCESS_KEY=account.credentials.secret_key,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_EC2_METADATA_DISABLED="true",
            NO_PROXY=host,
            no_proxy=host,
        )

    def run(self, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "awscli",
                "iot1click-devices",
                command,
                *args,
                "--endpoint-url",
                self.endpoint,
                "--output",
                "json",
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def __call__(self, command: str, *args: str) -> Any:
        """The parsed JSON output of a command that must succeed (None if it prints nothing)."""
        done = self.run(command, *args)
        assert done.returncode == 0, f"aws {command} failed ({done.returncode}): {done.stderr}"
        return json.loads(done.stdout) if done.stdout.strip() else None


@pytest.fixture
def aws(backend: ReferenceBackend, tmp_path: Path) -> AwsCli:
    home = tmp_path / "aws-home"
    home.mkdir()
    return AwsCli(backend, ALICE, home)


def ids(fleet: Fleet) -> list[str]:
    return sorted(record.device_id for record in fleet.manifest.devices)


def arn(device_id: str) -> str:
    return f"arn:aws:iot1click:us-east-1:{ALICE.account_id}:devices/{device_id}"


def test_claim_code_list_describe_enable_tags_methods_unclaim(
    aws: AwsCli, backend_fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = ids(backend_fleet)
    device = fleet[0]
    assert aws("claim-devices-by-claim-code", "--claim-code", CLAIM_CODE) == {
        "ClaimCode": CLAIM_CODE,
        "Total": 5,
    }

    # The CLI follows nextToken itself: 3 pages of 2, merged into one list.
    caplog.set_level(logging.INFO, logger="clicksim.api")
    listed = aws("list-devices", "--page-size", "2")["Devices"]
    assert [d["DeviceId"] for d in listed] == fleet
    pages = [r for r in caplog.records if " GET /devices " in r.getMessage()]
    assert len(pages) == 3

    described = aws("describe-device", "--device-id", device)["DeviceDescription"]
    assert described["DeviceId"] == device
    assert described["Arn"] == arn(device)
    assert described["Type"] == "button"
    assert described["Enabled"] is False
    assert aws("update-device-state", "--device-id", device, "--enabled") is None
    assert aws("describe-device", "--device-id", device)["DeviceDescription"]["Enabled"] is True

    # Shorthand map for --tags, a space-separated list (query tagKeys, repeated) for untag.
    assert aws("tag-resource", "--resource-arn", arn(device), "--tags", "a=1,b=2,c=3") is None
    assert aws("untag-resource", "--resource-arn", arn(device), "--tag-keys", "a", "c") is None
    assert aws("list-tags-for-resource", "--resource-arn", arn(device)) == {"Tags": {"b": "2"}}

    methods = aws("get-device-methods", "--device-id", device)["DeviceMethods"]
    assert {"DeviceType": "button", "MethodName": "setOnClickCallback"} in methods
    assert {"DeviceType": "button", "MethodName": "getOnClickCallback"} in methods
    callback = {"callback": {"url": "http://127.0.0.1:9/hook"}}
    set_answer = aws(
        "invoke-device-method",
        "--device-id",
        device,
        "--device-method",
        "DeviceType=button,MethodName=setOnClickCallback",
        "--device-method-parameters",
        json.dumps(callback),
    )
    assert json.loads(set_answer["DeviceMethodResponse"]) == {}
    get_answer = aws(
        "invoke-device-method",
        "--device-id",
        device,
        "--device-method",
        "DeviceType=button,MethodName=getOnClickCallback",
    )
    assert json.loads(get_answer["DeviceMethodResponse"]) == callback

    assert aws("unclaim-device", "--device-id", device) == {"State": "UNCLAIMED"}
    after = aws("list-devices")["Devices"]
    assert [d["DeviceId"] for d in after] == fleet[1:]


def test_initiate_press_finalize_then_events_in_a_window(
    aws: AwsCli, backend_fleet: Fleet, press: Clicker
) -> None:
    device = ids(backend_fleet)[1]
    assert aws("initiate-device-claim", "--device-id", device) == {"State": "CLAIM_INITIATED"}
    before = datetime.now(UTC)
    press(device)
    after = datetime.now(UTC)
    answer = aws("finalize-device-claim", "--device-id", device, "--tags", "room=kitchen")
    assert answer == {"State": "CLAIMED"}

    # The click is inside [before - 1 s, after + 1 s], and after a window ending before it.
    around = (before - timedelta(seconds=1), after + timedelta(seconds=1))
    events = aws(
        "list-device-events",
        "--device-id",
        device,
        "--from-time-stamp",
        around[0].isoformat(),
        "--to-time-stamp",
        around[1].isoformat(),
    )["Events"]
    (event,) = events
    assert event["Device"] == {"Attributes": {}, "DeviceId": device, "Type": "button"}
    std_event = json.loads(event["StdEvent"])
    assert std_event["clickType"] == "SINGLE"
    assert std_event["certificateId"] == backend_fleet.device(device).record.certificate_id
    earlier = aws(
        "list-device-events",
        "--device-id",
        device,
        "--from-time-stamp",
        (before - timedelta(hours=1)).isoformat(),
        "--to-time-stamp",
        (before - timedelta(seconds=1)).isoformat(),
    )
    assert earlier["Events"] == []
    assert aws("list-tags-for-resource", "--resource-arn", arn(device)) == {
        "Tags": {"room": "kitchen"}
    }


def test_an_unknown_device_is_a_cli_error_naming_the_exception(aws: AwsCli) -> None:
    done = aws.run("describe-device", "--device-id", "NO-SUCH-DEVICE")
    assert done.returncode in (254, 255)
    assert "ResourceNotFoundException" in done.stderr
    assert "NO-SUCH-DEVICE" in done.stderr
    assert done.stdout == ""
