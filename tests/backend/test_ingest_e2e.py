"""MQTT ingest end to end: real devices publish to a running backend's broker.

Malformed publishes from devices with valid certificates are counted by reason in
``/_clicksim/status``, logged in one line each, acknowledged, and harm nothing; both
payload formats are stored; duplicates are dropped. Then the same through an
external mosquitto, including clicks that wait in the broker while the backend is down.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from simulator import protocol
from simulator.backend.ingest import ExternalIngest
from simulator.backend.server import BackendConfig, ReferenceBackend
from simulator.broker.hook import Publish
from simulator.device.gestures import press_timings
from simulator.protocol import ClickType, PayloadFormat
from simulator.resources import load_profile
from simulator.runtime.button import press_once
from simulator.runtime.connection import client_tls_context, parse_broker_url
from simulator.runtime.fleet import Fleet
from simulator.workspace import CaFolder, create_fleet
from tests.backend.conftest import (
    ALICE,
    BOB,
    CLAIM_CODE,
    BackendThread,
    SdkFactory,
    admin_status,
    sdk_client,
    wait_until,
)
from tests.support import Mosquitto, require_mosquitto

GEN1_CODE = "C-GENONEBUTTON01"


# ------------------------------------------------------------------------------ helpers


def events_of(client: Any, device: str) -> list[dict[str, Any]]:
    now = time.time()
    answer = client.list_device_events(
        DeviceId=device, FromTimeStamp=now - 86400, ToTimeStamp=now + 86400
    )
    return [json.loads(event["StdEvent"]) for event in answer["Events"]]


def ids(fleet: Fleet) -> list[str]:
    return sorted(record.device_id for record in fleet.manifest.devices)


def make_click(
    fleet: Fleet,
    device: str,
    seq: int,
    *,
    certificate_id: str | None = None,
    click_type: ClickType = ClickType.SINGLE,
) -> protocol.Click:
    return protocol.Click(
        device_id=device,
        seq=seq,
        click_type=click_type,
        reported_at=time.time(),
        remaining_life=88.5,
        battery_mv=1550,
        certificate_id=certificate_id or fleet.device(device).record.certificate_id,
    )


def oneclick(click: protocol.Click) -> tuple[str, bytes]:
    return protocol.encode_click(PayloadFormat.ONECLICK, click)


def publish_raw(
    mqtt_url: str, fleet: Fleet, device: str, messages: Sequence[tuple[str, bytes]]
) -> None:
    """Publish as ``device`` (its certificate, its client id) on one connection at QoS 1.

    Returns once every message got its PUBACK: the backend acknowledged each.
    """
    address = parse_broker_url(mqtt_url)

    async def main() -> None:
        async with aiomqtt.Client(
            address.host,
            address.port,
            identifier=device,
            tls_context=fleet.device(device).tls_context(),
            timeout=10,
        ) as client:
            for topic, payload in messages:
                await client.publish(topic, payload, qos=1)

    asyncio.run(main())


def press(mqtt_url: str, fleet_path: Path, device_id: str, click_type: ClickType) -> None:
    """A real button press: the device's firmware, its profile's payload format and timings."""
    fleet = Fleet.open(fleet_path)
    device = fleet.device(device_id)
    firmware = device.firmware(rng=random.Random(0))
    durations = press_timings(click_type, device.profile.timings)
    asyncio.run(
        press_once(
            firmware,
            durations,
            broker=parse_broker_url(mqtt_url),
            tls_context=device.tls_context(),
            timeout=30,
        )
    )
    fleet.save_progress([firmware])
    assert firmware.counters.published == firmware.counters.clicks == 1


def new_fleet(
    ca_folder: CaFolder, out: Path, *, profile: str, seed: str, code: str, count: int
) -> Path:
    create_fleet(
        load_profile(profile), ca_folder=ca_folder, count=count, seed=seed, claim_code=code, out=out
    )
    return out


@pytest.fixture
def stranger_fleet(ca_folder: CaFolder, tmp_path: Path) -> Fleet:
    """Devices signed by the backend's CA, but never imported into its inventory."""
    path = new_fleet(
        ca_folder,
        tmp_path / "stranger.json",
        profile="aws-iot-enterprise-button",
        seed="e2e-stranger",
        code="C-STRANGERS001",
        count=1,
    )
    return Fleet.open(path)


@pytest.fixture
def gen1_fleet_path(ca_folder: CaFolder, tmp_path: Path) -> Path:
    return new_fleet(
        ca_folder,
        tmp_path / "gen1.json",
        profile="aws-iot-button-gen1",
        seed="e2e-gen1",
        code=GEN1_CODE,
        count=1,
    )


# ---------------------------------------------------------------- embedded broker


def test_malformed_publishes_are_counted_logged_acknowledged_and_harm_nothing(
    backend: ReferenceBackend,
    sdk: SdkFactory,
    backend_fleet: Fleet,
    stranger_fleet: Fleet,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "clicksim.ingest")
    alice = sdk(ALICE)
    alice.claim_devices_by_claim_code(ClaimCode=CLAIM_CODE)
    device, other = ids(backend_fleet)[:2]
    topic = protocol.click_topic(PayloadFormat.ONECLICK, device)
    _, other_payload = oneclick(make_click(backend_fleet, other, 1))  # names `other`
    good_topic, good_payload = oneclick(make_click(backend_fleet, device, 7))
    wrong_certificate = oneclick(make_click(backend_fleet, device, 8, certificate_id="ab" * 32))

    # One connection: each bad publish gets its PUBACK and the connection carries on.
    publish_raw(
        backend.mqtt_url,
        backend_fleet,
        device,
        [
            (topic, b"this is not JSON"),
            (topic, b'["a", "JSON", "array"]'),
            (topic, other_payload),
            wrong_certificate,
            (good_topic, good_payload),
        ],
    )
    stranger = ids(stranger_fleet)[0]
    publish_raw(
        backend.mqtt_url,
        stranger_fleet,
        stranger,
        [oneclick(make_click(stranger_fleet, stranger, 1))],
    )

    report = admin_status(backend)
    assert report["ingest"] == {
        "stored": 1,
        "duplicates": 0,
        "rejected": {
            "malformed": 2,
            "other-device": 1,
            "wrong-certificate": 1,
            "unknown-device": 1,
        },
    }
    assert report["events"] == 1
    (event,) = events_of(alice, device)
    assert event["reportedTime"] == json.loads(good_payload)["reportedTime"]

    lines = [r for r in caplog.records if r.name == "clicksim.ingest"]
    assert len(lines) == 5
    for line in lines:
        assert line.levelno == logging.WARNING
        assert line.exc_info is None
        assert "\n" not in line.getMessage()
    messages = [line.getMessage() for line in lines]
    assert device in messages[0]
    assert stranger in messages[4]

    # Still serving, and still ingesting: a real press afterwards is stored too.
    press(backend.mqtt_url, backend_fleet.path, device, ClickType.DOUBLE)
    assert [e["clickType"] for e in events_of(alice, device)] == ["SINGLE", "DOUBLE"]
    assert admin_status(backend)["ingest"]["stored"] == 2


def test_the_same_seq_twice_is_stored_once(
    backend: ReferenceBackend, sdk: SdkFactory, backend_fleet: Fleet
) -> None:
    alice = sdk(ALICE)
    alice.claim_devices_by_claim_code(ClaimCode=CLAIM_CODE)
    device = ids(backend_fleet)[0]
    first = oneclick(make_click(backend_fleet, device, 5, click_type=ClickType.LONG))
    second = oneclick(make_click(backend_fleet, device, 6))
    publish_raw(backend.mqtt_url, backend_fleet, device, [first, first])
    publish_raw(backend.mqtt_url, backend_fleet, device, [first, second])  # a new connection
    assert [e["clickType"] for e in events_of(alice, device)] == ["LONG", "SINGLE"]
    assert admin_status(backend)["ingest"] == {"stored": 2, "duplicates": 2, "rejected": {}}


def test_the_iotbutton_format_is_ingested(
    backend_config: BackendConfig, backend_fleet_path: Path, gen1_fleet_path: Path
) -> None:
    config = dataclasses.replace(backend_config, fleets=(backend_fleet_path, gen1_fleet_path))
    fleet = Fleet.open(gen1_fleet_path)
    (serial,) = ids(fleet)
    record = fleet.device(serial).record
    with BackendThread(config) as backend:
        bob = sdk_client(backend.api_url, BOB)
        assert bob.claim_devices_by_claim_code(ClaimCode=GEN1_CODE)["Total"] == 1
        before = time.time()
        press(backend.mqtt_url, gen1_fleet_path, serial, ClickType.SINGLE)
        press(backend.mqtt_url, gen1_fleet_path, serial, ClickType.DOUBLE)
        after = time.time()
        events = events_of(bob, serial)
        report = admin_status(backend)

    assert fleet.device(serial).profile.payload == PayloadFormat.IOTBUTTON
    assert [e["clickType"] for e in events] == ["SINGLE", "DOUBLE"]  # no seq: both kept
    for event in events:
        assert event["certificateId"] == record.certificate_id
        assert event["remainingLife"] is None  # the iotbutton format reports none
        # No reportedTime in the payload: the backend's receive time, in milliseconds.
        reported = protocol.parse_timestamp(event["reportedTime"])
        assert before - 0.001 <= reported <= after
    assert report["ingest"] == {"stored": 2, "duplicates": 0, "rejected": {}}


# ---------------------------------------------------------------- external broker


@pytest.fixture
def mosquitto(ca_folder: CaFolder, tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(require_mosquitto(), ca_dir=ca_folder.path, work_dir=tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def external_config(
    backend_config: BackendConfig, mosquitto: Mosquitto, ca_folder: CaFolder
) -> BackendConfig:
    """The backend consuming from mosquitto, whose persistent session already exists.

    A broker queues messages only for a session it knows: the backend's session is
    made once beforehand (as an operator does by running the backend once), so that
    a click published before the backend's first SUBSCRIBE is not lost to the test.
    """
    url = f"mqtts://127.0.0.1:{mosquitto.port}"
    certificate, key = ca_folder.identity_files("backend")
    tls = client_tls_context(ca_file=ca_folder.certificate, certificate=certificate, key=key)

    async def ignore(publish: Publish) -> None:
        raise AssertionError(f"nothing is published yet, got {publish}")

    async def make_session() -> None:
        async with ExternalIngest(url, tls, ignore) as ingest:
            await asyncio.wait_for(ingest.wait_connected(), 10)

    asyncio.run(make_session())
    return dataclasses.replace(backend_config, broker_url=url)


def test_a_press_through_an_external_broker_is_listed(
    external_config: BackendConfig, backend_fleet: Fleet
) -> None:
    device = ids(backend_fleet)[0]
    with BackendThread(external_config) as backend:
        assert backend.mqtt_url == external_config.broker_url
        alice = sdk_client(backend.api_url, ALICE)
        alice.claim_devices_by_claim_code(ClaimCode=CLAIM_CODE)
        press(backend.mqtt_url, backend_fleet.path, device, ClickType.LONG)
        wait_until(lambda: len(events_of(alice, device)) == 1)
        (event,) = events_of(alice, device)
        report = admin_status(backend)
    assert event["clickType"] == "LONG"
    assert event["certificateId"] == backend_fleet.device(device).record.certificate_id
    assert report["ingest"] == {"stored": 1, "duplicates": 0, "rejected": {}}


def test_clicks_published_while_the_backend_is_down_are_ingested_when_it_starts(
    external_config: BackendConfig, backend_fleet: Fleet
) -> None:
    device = ids(backend_fleet)[0]
    url = external_config.broker_url
    assert url is not None
    with BackendThread(external_config) as backend:
        alice = sdk_client(backend.api_url, ALICE)
        alice.claim_devices_by_claim_code(ClaimCode=CLAIM_CODE)
        press(url, backend_fleet.path, device, ClickType.SINGLE)
        wait_until(lambda: len(events_of(alice, device)) == 1)

    # The backend is down: the broker acknowledges and keeps these for its session.
    press(url, backend_fleet.path, device, ClickType.DOUBLE)
    press(url, backend_fleet.path, device, ClickType.LONG)
    topic = protocol.click_topic(PayloadFormat.ONECLICK, device)
    publish_raw(url, backend_fleet, device, [(topic, b"{truncated")])

    with BackendThread(external_config) as backend:
        alice = sdk_client(backend.api_url, ALICE)
        wait_until(lambda: len(events_of(alice, device)) == 3)
        wait_until(lambda: sum(admin_status(backend)["ingest"]["rejected"].values()) == 1)
        events = events_of(alice, device)
        report = admin_status(backend)
    assert [e["clickType"] for e in events] == ["SINGLE", "DOUBLE", "LONG"]
    assert report["ingest"] == {"stored": 2, "duplicates": 0, "rejected": {"malformed": 1}}
    assert report["events"] == 3
