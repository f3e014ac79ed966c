"""The external-broker consumer against a real mosquitto with clicksim's TLS config and ACL.

What matters is what the broker does with the acknowledgements: messages wait for a
persistent session that is offline, an unacknowledged one comes back on the next
connection, an acknowledged one never does.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiomqtt
import pytest

from simulator.backend.ingest import ExternalIngest
from simulator.broker.hook import Publish
from simulator.protocol import Click, ClickType, PayloadFormat, encode_click
from simulator.runtime.connection import client_tls_context
from simulator.workspace import CaFolder
from tests.support import Mosquitto, free_port, require_mosquitto

DEVICE: Final = "G030PM0123456789"
SCENARIO_TIMEOUT: Final = 20.0
QUIET_PERIOD: Final = 0.3
FAST: Final = 0.05
"""Retry delay for tests: reconnecting must not make them slow."""


@dataclass(frozen=True)
class Bench:
    mosquitto: Mosquitto
    backend: ssl.SSLContext
    device: ssl.SSLContext

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.mosquitto.port}"

    def ingest(self, hook: Callable[[Publish], Awaitable[None]]) -> ExternalIngest:
        return ExternalIngest(self.url, self.backend, hook, retry_delay=FAST, max_retry_delay=FAST)

    async def click(self, seq: int) -> tuple[str, bytes]:
        """Publish one click from the device at QoS 1, as a button does."""
        click = Click(
            device_id=DEVICE,
            seq=seq,
            click_type=ClickType.SINGLE,
            reported_at=1_750_000_000.0 + seq,
            remaining_life=90.0,
            battery_mv=1600,
            certificate_id="cd" * 32,
        )
        topic, payload = encode_click(PayloadFormat.ONECLICK, click)
        async with aiomqtt.Client(
            "127.0.0.1", self.mosquitto.port, identifier=DEVICE, tls_context=self.device, timeout=5
        ) as device:
            await device.publish(topic, payload, qos=1)
        return topic, payload


@pytest.fixture
def bench(ca_folder: CaFolder, tmp_path: Path) -> Iterator[Bench]:
    binary = require_mosquitto()
    identity = ca_folder.load().issue_device(DEVICE, seed=b"ingest tests")
    certificate, key = tmp_path / "device.crt", tmp_path / "device.key"
    certificate.write_bytes(identity.certificate_pem())
    key.write_bytes(identity.key_pem())
    backend_certificate, backend_key = ca_folder.identity_files("backend")
    mosquitto = Mosquitto(binary, ca_dir=ca_folder.path, work_dir=tmp_path, port=free_port())
    mosquitto.start()
    try:
        yield Bench(
            mosquitto=mosquitto,
            backend=client_tls_context(
                ca_file=ca_folder.certificate, certificate=backend_certificate, key=backend_key
            ),
            device=client_tls_context(
                ca_file=ca_folder.certificate, certificate=certificate, key=key
            ),
        )
    finally:
        mosquitto.stop()


def run(scenario: Awaitable[None]) -> None:
    async def main() -> None:
        await asyncio.wait_for(scenario, SCENARIO_TIMEOUT)

    asyncio.run(main())


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.01)


async def connected(ingest: ExternalIngest) -> None:
    await asyncio.wait_for(ingest.wait_connected(), 5)


def test_messages_published_while_offline_arrive_once_connected(bench: Bench) -> None:
    taken: list[Publish] = []

    async def hook(publish: Publish) -> None:
        taken.append(publish)

    async def scenario() -> None:
        async with bench.ingest(hook) as ingest:  # creates the persistent session
            await connected(ingest)
        topic, payload = await bench.click(seq=1)
        await asyncio.sleep(QUIET_PERIOD)
        assert taken == []
        async with bench.ingest(hook) as ingest:
            await eventually(lambda: ingest.acknowledged == 1)
        assert taken == [Publish(topic=topic, payload=payload, qos=1, client_id=None)]

    run(scenario())


def test_failed_hook_is_redelivered_and_acknowledged_messages_are_not(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    attempts: list[bytes] = []

    async def flaky(publish: Publish) -> None:
        attempts.append(publish.payload)
        if len(attempts) == 2:
            raise RuntimeError("disk full")

    later: list[bytes] = []

    async def record(publish: Publish) -> None:
        later.append(publish.payload)

    async def scenario() -> None:
        async with bench.ingest(flaky) as ingest:
            await connected(ingest)
            _, first = await bench.click(seq=1)
            topic, second = await bench.click(seq=2)
            await eventually(lambda: ingest.acknowledged == 2)
            assert attempts == [first, second, second]
        # A new connection of the session: an acknowledged message would come first.
        async with bench.ingest(record) as ingest:
            await connected(ingest)
            _, third = await bench.click(seq=3)
            await eventually(lambda: len(later) == 1)
            await asyncio.sleep(QUIET_PERIOD)
        assert later == [third]
        failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [(r.name, r.exc_info) for r in failures] == [("clicksim.ingest", None)]
        assert (
            failures[0]
            .getMessage()
            .startswith(
                f"message on {topic!r} not acknowledged: the publish hook failed "
                "(RuntimeError('disk full')); reconnecting in "
            )
        )

    run(scenario())


def test_consumer_stopped_inside_the_hook_gets_the_message_again(bench: Bench) -> None:
    entered = asyncio.Event()

    async def stuck(publish: Publish) -> None:
        entered.set()
        await asyncio.Event().wait()

    taken: list[bytes] = []

    async def record(publish: Publish) -> None:
        taken.append(publish.payload)

    async def scenario() -> None:
        async with bench.ingest(stuck) as ingest:
            await connected(ingest)
            _, payload = await bench.click(seq=1)
            await entered.wait()
        async with bench.ingest(record) as ingest:
            await eventually(lambda: ingest.acknowledged == 1)
        assert taken == [payload]

    run(scenario())


def test_reconnects_after_the_broker_restarts(bench: Bench) -> None:
    taken: list[bytes] = []

    async def record(publish: Publish) -> None:
        taken.append(publish.payload)

    async def scenario() -> None:
        async with bench.ingest(record) as ingest:
            await connected(ingest)
            await asyncio.to_thread(bench.mosquitto.stop)
            await eventually(lambda: not ingest.connected)
            await asyncio.sleep(FAST * 4)  # a few refused attempts
            await asyncio.to_thread(bench.mosquitto.start)
            await connected(ingest)
            _, payload = await bench.click(seq=1)
            await eventually(lambda: taken == [payload])

    run(scenario())


@pytest.mark.parametrize(
    ("url", "with_context", "message"),
    [
        ("mqtts://127.0.0.1:8883", False, "mqtts:// needs a TLS context"),
        ("mqtt://127.0.0.1:1883", True, "a TLS context needs an mqtts:// URL"),
        ("http://127.0.0.1", False, "use mqtts://HOST:PORT"),
    ],
)
def test_broker_url_and_tls_context_must_agree(url: str, with_context: bool, message: str) -> None:
    async def hook(publish: Publish) -> None:
        pass

    context = ssl.create_default_context() if with_context else None
    with pytest.raises(ValueError, match=message):
        ExternalIngest(url, context, hook)
