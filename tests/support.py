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
    """A mosquitto process with clicksim's generated configuration, on a free port."""

    def __init__(self, binary: str, *, ca_dir: Path, work_dir: Path, port: int = 0) -> None:
        self.port = port or free_port()
        self._binary = binary
        self._files = write_mosquitto_config(
            ca_dir=ca_dir,
            out_dir=work_dir,
            host="127.0.0.1",
            port=self.port,
            user="root" if os.geteuid() == 0 else None,  # our keys are 0600
        )
        self._process: subprocess.Popen[bytes] | None = None
        self._log = work_dir / "mosquitto.log"

    def start(self) -> None:
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [self._binary, "-c", str(self._files.config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self._log.read_text()}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self._log.read_text()}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._process = None
