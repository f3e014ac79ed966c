"""Paths and small helpers that several test modules share."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Final

import pytest

from simulator.broker.mosquitto import write_mosquitto_config

REPO: Final = Path(__file__).resolve().parents[1]
PROFILES: Final = REPO / "profiles"


def mosquitto_binary() -> str | None:
    """mosquitto on PATH or where Debian puts it (/usr/sbin is not on every PATH)."""
    found = shutil.which("mosquitto")
    if found is None and Path("/usr/sbin/mosquitto").exists():
        found = "/usr/sbin/mosquitto"
    return found


def require_mosquitto() -> str:
    """The binary, or skip; under CI (CLICKSIM_REQUIRE_BROKERS=1) a missing one fails."""
    binary = mosquitto_binary()
    if binary is None:
        if os.environ.get("CLICKSIM_REQUIRE_BROKERS"):
            pytest.fail("mosquitto is required here (CLICKSIM_REQUIRE_BROKERS) but not installed")
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    return binary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Mosquitto:
    """A mosquitto process with clicksim's generated configuration, on a free port.

    A port picked free may be taken by the time mosquitto binds it (an outgoing
    connection can get it as its ephemeral port), and a port just released may not
    be bindable yet: ``start`` retries, on a new port unless one was asked for.
    """

    def __init__(self, binary: str, *, ca_dir: Path, work_dir: Path, port: int = 0) -> None:
        self._fixed_port = port != 0
        self.port = port or free_port()
        self._binary = binary
        self._ca_dir = ca_dir
        self._work_dir = work_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._log = work_dir / "mosquitto.log"

    def start(self) -> None:
        deadline = time.monotonic() + 15
        while True:
            files = write_mosquitto_config(
                ca_dir=self._ca_dir,
                out_dir=self._work_dir,
                host="127.0.0.1",
                port=self.port,
                user="root" if os.geteuid() == 0 else None,  # our keys are 0600
            )
            offset = self._log.stat().st_size if self._log.exists() else 0
            with self._log.open("ab") as log:
                self._process = subprocess.Popen(
                    [self._binary, "-c", str(files.config)], stdout=log, stderr=log
                )
            if self._listening(deadline):
                return
            output = self._log.read_bytes()[offset:].decode(errors="replace")
            if "Address already in use" not in output or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start on {self.port}: {output}")
            if not self._fixed_port:
                self.port = free_port()
            time.sleep(0.2)

    def _listening(self, deadline: float) -> bool:
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return True
            time.sleep(0.02)
        self.stop()
        return False

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._process = None
