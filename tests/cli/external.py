"""An external backend for the command line's tests: ``clicksim backend serve`` as a process.

Two accounts (``owner`` through the environment's keys, ``rival`` through an AWS
profile of that name), an admin token, and a ``--provision-cmd`` script that POSTs a
manifest to the admin endpoint, as a user of another backend would write one.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ACCOUNT_ID = "111111111111"
ACCESS_KEY = "AKIACLICKSIMRUNTEST1"
SECRET_KEY = "run-test-secret-key-000000000001"
RIVAL_ACCOUNT_ID = "222222222222"
RIVAL_ACCESS_KEY = "AKIACLICKSIMRUNTEST2"
RIVAL_SECRET_KEY = "run-test-secret-key-000000000002"
ADMIN_TOKEN = "run-test-admin-token"

PROVISION = """\
import sys
import urllib.request

api_url, token, manifest = sys.argv[1:]
with open(manifest, "rb") as file:
    body = file.read()
request = urllib.request.Request(
    api_url + "/_clicksim/fleets",
    data=body,
    method="POST",
    headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
)
with urllib.request.urlopen(request, timeout=10) as reply:
    if reply.status != 200:
        sys.exit(f"the backend answered {reply.status}")
"""


def use_test_accounts(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """The owner's keys in the environment, the rival's as AWS profile ``rival``, and
    nothing from ~/.aws."""
    credentials = folder / "aws-credentials"
    credentials.write_text(
        f"[rival]\naws_access_key_id = {RIVAL_ACCESS_KEY}\n"
        f"aws_secret_access_key = {RIVAL_SECRET_KEY}\n"
    )
    config = folder / "aws-config"
    config.write_text("")
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "CLICKSIM_CA_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))


@dataclass(frozen=True)
class ServedBackend:
    api_url: str
    broker_url: str
    ca_dir: Path
    provision_cmd: str

    def target(self) -> list[str]:
        """The options that point a command at this backend."""
        return ["--api", self.api_url, "--broker", self.broker_url, "--ca-dir", str(self.ca_dir)]


def _read_until(log: Path, pattern: str, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if found := re.search(pattern, log.read_text()):
            return found[1]
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"the backend never printed {pattern!r}: {log.read_text()}")


@contextmanager
def serve_backend(folder: Path, ca_source: Path) -> Iterator[ServedBackend]:
    """``clicksim backend serve`` on free ports, with a copy of the CA in ``ca_source``."""
    ca_dir = folder / "certs"
    shutil.copytree(ca_source, ca_dir)
    script = folder / "provision.py"
    script.write_text(PROVISION)
    log = folder / "serve.out"
    args = [
        sys.executable, "-m", "simulator.cli", "backend", "serve",
        "--port", "0", "--mqtt-port", "0", "--ca-dir", str(ca_dir),
        "--db", str(folder / "backend.db"),
        "--account", f"{ACCOUNT_ID}:{ACCESS_KEY}:{SECRET_KEY}",
        "--account", f"{RIVAL_ACCOUNT_ID}:{RIVAL_ACCESS_KEY}:{RIVAL_SECRET_KEY}",
        "--admin-token", ADMIN_TOKEN,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        api_url = _read_until(log, r"Devices API\s+(\S+)", process)
        broker_url = _read_until(log, r"MQTT ingest\s+(mqtts://\S+)", process)
        provision = shlex.join([sys.executable, str(script), api_url, ADMIN_TOKEN])
        yield ServedBackend(
            api_url=api_url, broker_url=broker_url, ca_dir=ca_dir, provision_cmd=provision
        )
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
