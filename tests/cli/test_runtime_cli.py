"""``clicksim click`` and ``clicksim broker`` as a user runs them, on real brokers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import assert_input_error, run
from tests.support import Mosquitto, require_mosquitto


@pytest.fixture
def fleet_file(ca_dir: Path) -> Path:
    args = ("--profile", "aws-iot-enterprise-button", "--count", "2", "--seed", "cli")
    assert run("fleet", "create", *args).exit_code == 0
    return ca_dir / "fleet.json"


@pytest.fixture
def mosquitto(ca_dir: Path, in_tmp: Path) -> Iterator[str]:
    broker = Mosquitto(require_mosquitto(), ca_dir=ca_dir, work_dir=in_tmp / "mosq")
    broker.start()
    try:
        yield f"mqtts://127.0.0.1:{broker.port}"
    finally:
        broker.stop()


def first_device(fleet_file: Path) -> dict[str, object]:
    device: dict[str, object] = json.loads(fleet_file.read_text())["devices"][0]
    return device


def test_click_delivers_and_saves_progress(fleet_file: Path, mosquitto: str) -> None:
    device_id = str(first_device(fleet_file)["deviceId"])
    result = run("click", device_id, "--type", "double", "--broker", mosquitto)
    assert result.exit_code == 0, result.output
    assert "DOUBLE click (seq 0)" in result.output
    assert "led blinking-white" in result.output
    assert "led solid-green" in result.output
    assert "1 of 1 click(s) acknowledged" in result.output
    saved = first_device(fleet_file)
    assert saved["seq"] == 1
    assert isinstance(saved["battery"], dict)
    assert saved["battery"]["clicks"] == 1
    again = run("click", device_id, "--press-ms", "90", "--broker", mosquitto)
    assert "SINGLE click (seq 1)" in again.output


def test_click_that_cannot_be_delivered_exits_1(fleet_file: Path) -> None:
    device_id = str(first_device(fleet_file)["deviceId"])
    result = run("click", device_id, "--broker", "mqtts://127.0.0.1:1", "--timeout", "2")
    assert result.exit_code == 1, result.output
    assert "led red-" in result.output
    assert "0 of 1 click(s) acknowledged" in result.output


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--broker", "http://localhost"), ("--broker", "mqtts://")),
        (("--broker", "mqtts://localhost:99999"), ("--broker", "port")),
        (("--broker", "mqtts://h:1", "--type", "single", "--press-ms", "90"), ("not both",)),
        (("--broker", "mqtts://h:1", "--press-ms", "90,x"), ("--press-ms", "milliseconds")),
        (("--broker", "mqtts://h:1", "--press-ms", "90,100"), ("--press-ms", "odd")),
        (("--broker", "mqtts://h:1", "--type", "triple"), ("--type", "triple")),
    ],
)
def test_click_refuses_bad_input(
    fleet_file: Path, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    device_id = str(first_device(fleet_file)["deviceId"])
    before = fleet_file.read_text()
    assert_input_error(run("click", device_id, *args), *fragments)
    assert fleet_file.read_text() == before


def test_click_refuses_an_unknown_device(fleet_file: Path) -> None:
    result = run("click", "G030PMNOSUCHDEV1", "--broker", "mqtts://127.0.0.1:1")
    assert_input_error(result, "fleet.json", "G030PMNOSUCHDEV1")


def test_click_refuses_a_missing_fleet(in_tmp: Path) -> None:
    result = run("click", "X", "--broker", "mqtts://127.0.0.1:1", "--fleet", "nope.json")
    assert_input_error(result, "nope.json", "cannot read")


def test_mosquitto_config_is_written(ca_dir: Path, in_tmp: Path) -> None:
    result = run("broker", "mosquitto-config", "--port", "18883", "--out", "mq")
    assert result.exit_code == 0, result.output
    config = (in_tmp / "mq" / "mosquitto.conf").read_text()
    assert "require_certificate true" in config
    assert "use_identity_as_username true" in config
    assert "listener 18883 127.0.0.1" in config
    acl = (in_tmp / "mq" / "mosquitto.acl").read_text()
    assert "pattern write oneclick/devices/%u/events" in acl
    assert "user clicksim-backend" in acl


def test_mosquitto_config_needs_a_ca(in_tmp: Path) -> None:
    assert_input_error(run("broker", "mosquitto-config"), "ca.crt", "clicksim ca init")


def test_broker_serve_takes_clicks(fleet_file: Path, in_tmp: Path) -> None:
    """The embedded broker as its own process, and a click through it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator.cli", "broker", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"mqtts://[\d.]+:\d+", line)
        assert match, line
        device_id = str(first_device(fleet_file)["deviceId"])
        result = run("click", device_id, "--broker", match.group(0))
        assert result.exit_code == 0, result.output
        assert "1 of 1 click(s) acknowledged" in result.output
    finally:
        process.terminate()
        process.communicate(timeout=10)  # reaps it and closes the pipe


def test_broker_serve_refuses_a_missing_ca(in_tmp: Path) -> None:
    assert_input_error(run("broker", "serve", "--port", "0"), "ca.crt", "clicksim ca init")


def test_fleet_run_delivers_every_click_and_saves_seq(fleet_file: Path, mosquitto: str) -> None:
    args = ("--broker", mosquitto, "--duration", "1.5", "--rate", "8", "--seed", "t")
    result = run("fleet", "run", "--fleet", str(fleet_file), *args)
    assert result.exit_code == 0, result.output
    summary = next(line for line in result.output.splitlines() if line.startswith("summary:"))
    match = re.search(r"clicks (\d+), acked (\d+), queued 0, dropped 0", summary)
    assert match, summary
    clicks, acked = int(match[1]), int(match[2])
    assert clicks == acked > 0
    devices = json.loads(fleet_file.read_text())["devices"]
    assert sum(device["seq"] for device in devices) == clicks


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--broker", "mqtts://h:1", "--duration", "0"), ("--duration", "0")),
        (("--broker", "mqtts://h:1", "--rate", "-1"), ("--rate", "-1")),
        (("--broker", "ftp://h"), ("--broker",)),
    ],
)
def test_fleet_run_refuses_bad_input(
    fleet_file: Path, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    before = fleet_file.read_text()
    assert_input_error(run("fleet", "run", "--fleet", str(fleet_file), *args), *fragments)
    assert fleet_file.read_text() == before
