"""Virtual buttons on real brokers: mosquitto and the embedded one, real mutual TLS."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import ssl
import time
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from simulator.device.battery import BatteryState
from simulator.device.firmware import (
    DisconnectRequested,
    DropReason,
    Event,
    Firmware,
    Led,
    LedChanged,
    LinkState,
    PublishRequested,
)
from simulator.device.gestures import press_timings
from simulator.device.identity import BACKEND_CLIENT_CN, CertificateAuthority, Validity
from simulator.device.profile import MqttVersion
from simulator.protocol import (
    BACKEND_SUBSCRIPTIONS,
    OFFLINE_STATUS,
    STATUS_SUBSCRIPTION,
    ClickType,
    click_topic,
    decode_click,
    status_topic,
)
from simulator.resources import load_profile
from simulator.runtime.button import VirtualButton
from simulator.runtime.connection import BrokerAddress, client_tls_context
from simulator.runtime.fleet import Fleet, FleetDevice
from simulator.workspace import CaFolder
from tests.runtime.conftest import BrokerFactory
from tests.support import Mosquitto, require_mosquitto


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coroutine)


def backend_tls(ca_folder: CaFolder) -> ssl.SSLContext:
    certificate, key = ca_folder.identity_files("backend")
    return client_tls_context(ca_file=ca_folder.certificate, certificate=certificate, key=key)


@contextlib.asynccontextmanager
async def backend(
    address: BrokerAddress,
    ca_folder: CaFolder,
    received: list[aiomqtt.Message],
    topics: tuple[str, ...] = BACKEND_SUBSCRIPTIONS,
) -> AsyncIterator[None]:
    """The backend identity, subscribed to every device topic, collecting messages."""
    async with aiomqtt.Client(
        address.host,
        address.port,
        identifier=BACKEND_CLIENT_CN,
        tls_context=backend_tls(ca_folder),
        timeout=10,
    ) as client:
        for topic in topics:
            await client.subscribe(topic, qos=1)

        async def collect() -> None:
            async for message in client.messages:
                received.append(message)

        task = asyncio.create_task(collect())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


def button(
    device: FleetDevice, address: BrokerAddress, events: list[Event], **options: Any
) -> VirtualButton:
    return VirtualButton(
        device.firmware(rng=random.Random(1)),
        broker=address,
        tls_context=device.tls_context(),
        on_event=events.append,
        **options,
    )


def test_click_arrives_with_every_field(
    start_broker: BrokerFactory, fleet: Fleet, ca_folder: CaFolder
) -> None:
    device = fleet.devices[0]
    received: list[aiomqtt.Message] = []
    events: list[Event] = []

    async def scenario() -> None:
        async with start_broker(0) as address, backend(address, ca_folder, received):
            async with button(device, address, events) as vb:
                for click_type in (ClickType.SINGLE, ClickType.DOUBLE, ClickType.LONG):
                    await vb.perform(press_timings(click_type, device.profile.timings))
                    await vb.settle(timeout=15)
            await until(lambda: len(received) == 3)

    run(scenario())
    sent = [e for e in events if isinstance(e, PublishRequested)]
    assert [m.payload for m in received] == [e.payload for e in sent]
    decoded = [decode_click(str(m.topic), bytes(m.payload)) for m in received]
    assert [c.click_type for c in decoded] == [ClickType.SINGLE, ClickType.DOUBLE, ClickType.LONG]
    assert [c.seq for c in decoded] == [0, 1, 2]
    for click in decoded:
        assert click.device_id == device.record.device_id
        assert click.certificate_id == device.record.certificate_id
        assert click.remaining_life is not None
        assert 99 < click.remaining_life <= 100
    leds = [e.led.value for e in events if isinstance(e, LedChanged)]
    assert leds[:3] == ["blinking-white", "solid-green", "off"]


def test_publishing_under_another_devices_id_is_refused(
    start_broker: BrokerFactory, fleet: Fleet, ca_folder: CaFolder
) -> None:
    me, other = fleet.devices[0], fleet.devices[1]
    received: list[aiomqtt.Message] = []

    async def scenario() -> None:
        async with start_broker(0) as address, backend(address, ca_folder, received):
            async with aiomqtt.Client(
                address.host, address.port, identifier=me.record.device_id,
                tls_context=me.tls_context(), timeout=10,
            ) as client:  # fmt: skip
                stolen = click_topic(me.profile.payload, other.record.device_id)
                await client.publish(stolen, b'{"forged": true}', qos=1)
                own = click_topic(me.profile.payload, me.record.device_id)
                await client.publish(own, b"marker", qos=1)
            await until(lambda: any(m.payload == b"marker" for m in received))

    run(scenario())
    assert [bytes(m.payload) for m in received] == [b"marker"]


@pytest.fixture(scope="module")
def foreign_ca() -> CertificateAuthority:
    return CertificateAuthority.create(seed=b"another CA entirely")


def _write_identity(
    folder: Path, ca: CertificateAuthority, device_id: str, **kw: Any
) -> tuple[Path, Path]:
    identity = ca.issue_device(device_id, seed=b"refusal tests", **kw)
    cert, key = folder / f"{device_id}.crt", folder / f"{device_id}.key"
    cert.write_bytes(identity.certificate_pem())
    key.write_bytes(identity.key_pem())
    return cert, key


@pytest.mark.parametrize("case", ["no-certificate", "another-ca", "expired"])
def test_bad_identities_are_refused(
    case: str,
    start_broker: BrokerFactory,
    fleet: Fleet,
    ca_folder: CaFolder,
    foreign_ca: CertificateAuthority,
    tmp_path: Path,
) -> None:
    device = fleet.devices[0]
    device_id = device.record.device_id
    context = ssl.create_default_context(cafile=str(ca_folder.certificate))
    if case == "another-ca":
        cert, key = _write_identity(tmp_path, foreign_ca, device_id)
        context.load_cert_chain(cert, key)
    elif case == "expired":
        ca = ca_folder.load()
        past = Validity(
            not_before=datetime(2025, 1, 1, tzinfo=UTC),
            not_after=datetime.now(UTC) - timedelta(days=1),
        )
        cert, key = _write_identity(tmp_path, ca, device_id, validity=past)
        context.load_cert_chain(cert, key)
    received: list[aiomqtt.Message] = []
    topic = click_topic(device.profile.payload, device_id)

    async def scenario() -> None:
        async with start_broker(0) as address, backend(address, ca_folder, received):
            with pytest.raises(aiomqtt.MqttError):
                async with aiomqtt.Client(
                    address.host, address.port, identifier=device_id, tls_context=context, timeout=2
                ) as client:
                    # TLS 1.3 reports a refused client certificate only at the first read.
                    await client.publish(topic, b"should never arrive", qos=1, timeout=2)
            await asyncio.sleep(0.2)

    run(scenario())
    assert received == []


def fast(device: FleetDevice, *, used_mah: float = 0.0) -> Firmware:
    """The device's firmware with human timings shrunk, so tests wait for the network only."""
    profile = dataclasses.replace(
        device.profile,
        timings=dataclasses.replace(device.profile.timings, led_success_ms=0),
        mqtt=dataclasses.replace(device.profile.mqtt, backoff_base_s=0.05, backoff_cap_s=0.2),
    )
    return device.firmware(
        rng=random.Random(7), profile=profile, battery=BatteryState(used_mah=used_mah)
    )


def test_broker_restart_loses_no_click_and_keeps_order(
    start_broker: BrokerFactory, fleet: Fleet, ca_folder: CaFolder
) -> None:
    device = fleet.devices[0]
    firmware = fast(device)
    received: list[aiomqtt.Message] = []
    single = press_timings(ClickType.SINGLE, firmware.profile.timings)

    async def scenario() -> None:
        async with start_broker(0) as address, backend(address, ca_folder, received):
            vb = VirtualButton(firmware, broker=address, tls_context=device.tls_context())
            await vb.__aenter__()
            await vb.perform(single)
            await vb.settle(timeout=10)
            await until(lambda: len(received) == 1)
        # The broker is down: these clicks queue up while the device backs off, then
        # gives up and sleeps (so that it cannot reach the new broker before our backend).
        for _ in range(3):
            await vb.perform(single)
        await until(lambda: firmware.queued == 3 and firmware.link_state is LinkState.ASLEEP)
        async with start_broker(address.port) as again, backend(again, ca_folder, received):
            await vb.perform(single)  # wakes a device that gave up; joins the queue
            await vb.settle(timeout=20)
            await until(lambda: len(received) >= 5)
        await vb.__aexit__(None, None, None)

    run(scenario())
    seqs = [decode_click(str(m.topic), bytes(m.payload)).seq for m in received]
    unique = list(dict.fromkeys(seqs))  # QoS 1 may redeliver: drop duplicates by seq
    assert unique == [0, 1, 2, 3, 4]
    assert firmware.counters.dropped == dict.fromkeys(DropReason, 0)
    assert firmware.counters.connect_failures >= 1


def test_dead_battery_publishes_nothing(
    start_broker: BrokerFactory, fleet: Fleet, ca_folder: CaFolder
) -> None:
    device = fleet.devices[1]
    firmware = fast(device, used_mah=device.profile.battery.capacity_mah)
    received: list[aiomqtt.Message] = []
    events: list[Event] = []

    async def scenario() -> None:
        async with start_broker(0) as address, backend(address, ca_folder, received):
            async with VirtualButton(
                firmware, broker=address, tls_context=device.tls_context(), on_event=events.append
            ) as vb:
                await vb.perform(press_timings(ClickType.SINGLE, firmware.profile.timings))
                await vb.settle(timeout=5)
            await asyncio.sleep(0.3)

    run(scenario())
    assert received == []
    assert not any(isinstance(e, LedChanged | PublishRequested) for e in events)
    assert firmware.dead
    assert firmware.counters.presses_while_dead == 1


def test_long_press_costs_more_than_single_on_a_real_broker(
    start_broker: BrokerFactory, fleet: Fleet, ca_folder: CaFolder
) -> None:
    used: dict[ClickType, float] = {}

    async def scenario() -> None:
        async with start_broker(0) as address:
            for click_type, device in zip(
                (ClickType.SINGLE, ClickType.LONG), fleet.devices, strict=False
            ):
                firmware = fast(device)
                async with VirtualButton(
                    firmware, broker=address, tls_context=device.tls_context()
                ) as vb:
                    await vb.perform(press_timings(click_type, firmware.profile.timings))
                    await vb.settle(timeout=10)
                assert firmware.counters.published == 1
                used[click_type] = firmware.battery.state.used_mah

    run(scenario())
    assert used[ClickType.LONG] > used[ClickType.SINGLE]


def persistent_firmware(device: FleetDevice, version: MqttVersion = MqttVersion.V311) -> Firmware:
    """A fleet device's identity in the persistent profile (which stays connected)."""
    base = load_profile("clicksim-persistent-button")
    profile = dataclasses.replace(base, mqtt=dataclasses.replace(base.mqtt, version=version))
    return device.firmware(rng=random.Random(3), profile=profile, battery=BatteryState())


def test_persistent_device_stays_online_and_its_will_fires_when_it_dies(
    start_broker: BrokerFactory, fleet: Fleet, ca_folder: CaFolder
) -> None:
    device = fleet.devices[2]
    firmware = persistent_firmware(device)
    received: list[aiomqtt.Message] = []
    events: list[Event] = []
    skipped_days = [0.0]

    def clock() -> float:
        return time.time() + skipped_days[0] * 86_400

    topics = (*BACKEND_SUBSCRIPTIONS, STATUS_SUBSCRIPTION)
    single = press_timings(ClickType.SINGLE, firmware.profile.timings)

    async def scenario() -> None:
        async with (
            start_broker(0) as address,
            backend(address, ca_folder, received, topics),
            VirtualButton(
                firmware,
                broker=address,
                tls_context=device.tls_context(),
                clock=clock,
                on_event=events.append,
            ) as vb,
        ):
            await until(lambda: firmware.link_state is LinkState.ONLINE)
            await vb.perform(single)
            await until(lambda: len(received) == 1)
            await vb.settle(timeout=5)
            assert firmware.link_state is LinkState.ONLINE  # no disconnect after a click
            skipped_days[0] = 400  # connected that long, the cell is flat
            await vb.perform(single)
            await until(lambda: len(received) == 2)

    run(scenario())
    assert str(received[1].topic) == status_topic(device.record.device_id)
    assert received[1].payload == OFFLINE_STATUS
    assert firmware.dead
    assert not any(isinstance(e, DisconnectRequested) for e in events)


def test_mqtt5_device_on_mosquitto(fleet: Fleet, ca_folder: CaFolder, tmp_path: Path) -> None:
    broker = Mosquitto(require_mosquitto(), ca_dir=ca_folder.path, work_dir=tmp_path)
    device = fleet.devices[2]
    firmware = persistent_firmware(device, MqttVersion.V5)
    received: list[aiomqtt.Message] = []
    address = BrokerAddress(host="127.0.0.1", port=broker.port, tls=True)

    async def scenario() -> None:
        async with (
            backend(address, ca_folder, received),
            VirtualButton(firmware, broker=address, tls_context=device.tls_context()) as vb,
        ):
            await vb.perform(press_timings(ClickType.DOUBLE, firmware.profile.timings))
            await until(lambda: len(received) == 1)

    broker.start()
    try:
        run(scenario())
    finally:
        broker.stop()
    assert (
        decode_click(str(received[0].topic), bytes(received[0].payload)).click_type
        is ClickType.DOUBLE
    )


def test_a_refused_certificate_shows_the_tls_led_at_once(
    start_broker: BrokerFactory, fleet: Fleet, foreign_ca: CertificateAuthority, tmp_path: Path
) -> None:
    device = fleet.devices[0]
    cert, key = _write_identity(tmp_path, foreign_ca, device.record.device_id)
    context = client_tls_context(ca_file=device.ca_certificate, certificate=cert, key=key)
    firmware = fast(device)
    events: list[Event] = []

    async def scenario() -> None:
        async with (
            start_broker(0) as address,
            VirtualButton(
                firmware, broker=address, tls_context=context, on_event=events.append
            ) as vb,
        ):
            await vb.perform(press_timings(ClickType.SINGLE, firmware.profile.timings))
            await until(lambda: firmware.counters.connect_failures >= 1, timeout=3)

    run(scenario())
    leds = [e.led for e in events if isinstance(e, LedChanged)]
    assert Led.TLS_FAILED in leds
    assert firmware.counters.published == 0
