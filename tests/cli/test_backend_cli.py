"""``clicksim backend serve``: refuses bad input in one line; serves when it is good."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import botocore.session
import pytest

from tests.cli.conftest import assert_input_error, run

STOP_TIMEOUT_S = 30  # generous: a loaded 2-core machine is slow to stop a backend
GOOD_ACCOUNT = "111111111111:AKIAGOOD00000000001:a-secret-of-enough-length"


@pytest.mark.usefixtures("ca_dir")
@pytest.mark.parametrize(
    ("account", "fragment"),
    [
        ("nonsense", "expected ID:ACCESS_KEY:SECRET"),
        ("12345:AKIAGOOD00000000001:a-secret-of-enough-length", "must be 12 digits"),
        ("111111111111:lower:a-secret-of-enough-length", "access key must be"),
        ("111111111111:AKIAGOOD00000000001:short", "at least 16 characters"),
    ],
)
def test_a_bad_account_is_refused_without_echoing_the_secret(account: str, fragment: str) -> None:
    result = run("backend", "serve", "--account", account)
    assert_input_error(result, fragment)
    assert "a-secret-of-enough-length" not in result.output


@pytest.mark.usefixtures("ca_dir")
def test_an_access_key_given_twice_is_refused() -> None:
    other = "222222222222:AKIAGOOD00000000001:another-secret-long-enough"
    assert_input_error(
        run("backend", "serve", "--account", GOOD_ACCOUNT, "--account", other), "given twice"
    )


@pytest.mark.usefixtures("ca_dir")
def test_a_bad_broker_url_is_refused() -> None:
    assert_input_error(run("backend", "serve", "--broker", "ftp://x:1"), "ftp")


@pytest.mark.usefixtures("in_tmp")
def test_no_ca_is_refused_with_the_fix() -> None:
    assert_input_error(run("backend", "serve"), "clicksim ca init")


@pytest.mark.usefixtures("ca_dir")
def test_a_missing_fleet_is_refused(in_tmp: Path) -> None:
    result = run("backend", "serve", "--port", "0", "--mqtt-port", "0", "--fleet", "nope.json")
    assert_input_error(result, "nope.json")


@pytest.mark.usefixtures("ca_dir")
def test_a_file_that_is_not_a_database_is_refused(in_tmp: Path) -> None:
    (in_tmp / "clicksim.db").write_text("this is not a database\n" * 200)
    result = run("backend", "serve", "--port", "0", "--mqtt-port", "0")
    assert_input_error(result, "clicksim.db", "cannot open the database")


@pytest.mark.usefixtures("ca_dir")
def test_a_database_of_a_newer_clicksim_is_refused_and_left_alone(in_tmp: Path) -> None:
    with sqlite3.connect(in_tmp / "clicksim.db") as raw:
        raw.execute("PRAGMA user_version=999")
    raw.close()
    result = run("backend", "serve", "--port", "0", "--mqtt-port", "0")
    assert_input_error(result, "newer than this clicksim")
    with sqlite3.connect(in_tmp / "clicksim.db") as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 999
    raw.close()


@pytest.mark.usefixtures("ca_dir")
def test_a_taken_port_is_refused_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("backend", "serve", "--port", str(port), "--mqtt-port", "0")
    assert_input_error(result, "backend serve:")


# --- serving, in a process of its own --------------------------------------------


@pytest.fixture
def serve(ca_dir: Path, in_tmp: Path) -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        process.send_signal(signal.SIGINT)
        process.wait(STOP_TIMEOUT_S)
        assert process.stdout is not None
        process.stdout.close()


def _popen_serve(log: IO[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator.cli",
            "backend",
            "serve",
            "--port",
            "0",
            "--mqtt-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _start(processes: list[subprocess.Popen[str]]) -> dict[str, str]:
    log_path = Path.cwd() / f"serve-{len(processes)}.log"
    with log_path.open("w") as log:  # the child keeps its own descriptor
        process = _popen_serve(log)
    processes.append(process)
    assert process.stdout is not None
    printed: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while "AWS_DEFAULT_REGION" not in printed and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(
                f"backend serve ended before announcing itself:\n{log_path.read_text()}"
            )

        if match := re.search(r"Devices API\s+(\S+)", line):
            printed["api"] = match[1]
        if match := re.search(r"export (AWS_\w+)=(\S+)", line):
            printed[match[1]] = match[2]
    return printed


def test_with_no_account_it_prints_working_development_credentials_stable_per_database(
    serve: list[subprocess.Popen[str]],
) -> None:
    first = _start(serve)
    client = botocore.session.get_session().create_client(
        "iot1click-devices",
        region_name=first["AWS_DEFAULT_REGION"],
        endpoint_url=first["api"],
        aws_access_key_id=first["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=first["AWS_SECRET_ACCESS_KEY"],
    )
    assert client.list_devices()["Devices"] == []
    serve[0].send_signal(signal.SIGINT)
    assert serve[0].wait(STOP_TIMEOUT_S) == 0
    assert serve[0].stdout is not None
    serve[0].stdout.close()
    serve.clear()
    again = _start(serve)
    assert again["AWS_ACCESS_KEY_ID"] == first["AWS_ACCESS_KEY_ID"]
    assert again["AWS_SECRET_ACCESS_KEY"] == first["AWS_SECRET_ACCESS_KEY"]
