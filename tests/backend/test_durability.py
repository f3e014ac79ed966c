"""An acknowledged click is a committed click: SIGKILL the backend mid-stream and count.

The backend runs as its own process (``clicksim backend serve``), a device publishes
QoS 1 clicks as fast as the acks come back, and the process is killed with SIGKILL
at a moment of the test's choosing. After a restart on the same database every click
whose PUBACK the device saw is listed, and the backend carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import aiomqtt
import pytest

from simulator import protocol
from simulator.runtime.fleet import Fleet
from simulator.workspace import CaFolder
from tests.backend.conftest import ALICE, CLAIM_CODE, sdk_client

ACCOUNT_SPEC = f"{ALICE.account_id}:{ALICE.credentials.access_key}:{ALICE.credentials.secret_key}"


class BackendProcess:
    def __init__(self, ca_folder: CaFolder, db: Path, fleet: Path) -> None:
        self.args = [
            sys.executable, "-m", "simulator.cli", "backend", "serve",
            "--ca-dir", str(ca_folder.path), "--db", str(db), "--fleet", str(fleet),
            "--port", "0", "--mqtt-port", "0", "--account", ACCOUNT_SPEC,
            "--admin-token", "durability",
        ]  # fmt: skip
        self.db = db
        self.process: subprocess.Popen[str] | None = None
        self.api_url = ""
        self.mqtt_port = 0

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
        )
        assert self.process.stdout is not None
        self.api_url = _wait_for(self.process.stdout, r"Devices API\s+(\S+)")
        self.mqtt_port = int(_wait_for(self.process.stdout, r"MQTT ingest\s+mqtts://[^:]+:(\d+)"))

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        assert self.process.stdout is not None
        self.process.stdout.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()


def _wait_for(stream: IO[str], pattern: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        if match := re.search(pattern, line):
            return match[1]
    raise AssertionError(f"the backend never printed {pattern!r}")


@pytest.fixture
def process(
    ca_folder: CaFolder, backend_fleet_path: Path, tmp_path: Path
) -> Iterator[BackendProcess]:
    backend = BackendProcess(ca_folder, tmp_path / "durable.db", backend_fleet_path)
    yield backend
    backend.stop()


async def _publish(
    fleet: Fleet,
    device_id: str,
    port: int,
    seqs: range,
    *,
    kill_at: int | None = None,
    kill: Callable[[], None] = lambda: None,
) -> list[int]:
    """Publish clicks one after another; return the seqs whose PUBACK arrived.

    With ``kill_at``, ``kill`` runs while that seq's publish is in flight.
    """
    device = fleet.device(device_id)
    acked: list[int] = []
    try:
        async with aiomqtt.Client(
            "127.0.0.1", port, identifier=device_id, tls_context=device.tls_context()
        ) as client:
            for seq in seqs:
                click = protocol.Click(
                    device_id=device_id,
                    seq=seq,
                    click_type=protocol.ClickType.SINGLE,
                    reported_at=time.time(),
                    remaining_life=90.0,
                    battery_mv=1600,
                    certificate_id=device.record.certificate_id,
                )
                topic, payload = protocol.encode_click(protocol.PayloadFormat.ONECLICK, click)
                if seq == kill_at:
                    # Kill while this publish is in flight: its fate is unknown, not ours.
                    publishing = asyncio.create_task(client.publish(topic, payload, qos=1))
                    await asyncio.sleep(0)
                    kill()
                    await asyncio.wait_for(publishing, 3)
                else:
                    await client.publish(topic, payload, qos=1)
                acked.append(seq)
    except (aiomqtt.MqttError, TimeoutError):
        pass
    return acked


@pytest.mark.parametrize("kill_after", [37, 400])
def test_sigkill_loses_no_acknowledged_click_and_a_restart_carries_on(
    process: BackendProcess, backend_fleet: Fleet, kill_after: int
) -> None:
    process.start()
    client = sdk_client(process.api_url, ALICE)
    client.claim_devices_by_claim_code(ClaimCode=CLAIM_CODE)
    device_id = sorted(r.device_id for r in backend_fleet.manifest.devices)[0]
    acked = asyncio.run(
        _publish(
            backend_fleet,
            device_id,
            process.mqtt_port,
            range(kill_after + 1_000),
            kill_at=kill_after,
            kill=process.kill,
        )
    )
    assert len(acked) >= kill_after

    process.start()  # same database
    client = sdk_client(process.api_url, ALICE)
    stored = _stored_seqs(process.db, device_id)
    missing = sorted(set(acked) - stored)
    assert missing == [], f"acknowledged but lost: {missing[:10]}"
    assert stored <= set(range(kill_after + 1))  # nothing invented
    assert _listed(client, device_id) == len(stored)

    more = asyncio.run(_publish(backend_fleet, device_id, process.mqtt_port, range(10_000, 10_005)))
    assert len(more) == 5
    assert set(more) <= _stored_seqs(process.db, device_id)
    assert _listed(client, device_id) == len(stored) + len(more)


def _stored_seqs(db: Path, device_id: str) -> set[int]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as raw:
        rows = raw.execute("SELECT seq FROM events WHERE device_id = ?", (device_id,)).fetchall()
    return {seq for (seq,) in rows}


def _listed(client: Any, device_id: str) -> int:
    pages = client.get_paginator("list_device_events").paginate(
        DeviceId=device_id,
        FromTimeStamp=datetime.now(UTC) - timedelta(hours=1),
        ToTimeStamp=datetime.now(UTC) + timedelta(hours=1),
    )
    return sum(len(page["Events"]) for page in pages)
