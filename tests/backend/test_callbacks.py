"""Callbacks end to end: real clicks over MQTT, real POSTs to a real HTTP receiver.

The owner points ``setOnClickCallback`` / ``setDeviceHealthMonitorCallback`` at a
``tests.http_receiver.Receiver`` (its own h11 server on its own event loop) and the
backend, running on a real socket, must POST each event in the Lambda event format,
in order per device, retrying until a 2xx, and across a restart of the backend.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import aiomqtt
import pytest

from simulator import protocol
from simulator.backend.server import BackendConfig, ReferenceBackend
from simulator.protocol import ClickType
from simulator.runtime.connection import parse_broker_url
from simulator.runtime.fleet import Fleet
from tests.backend.conftest import (
    ALICE,
    CLAIM_CODE,
    WAIT,
    BackendThread,
    Clicker,
    SdkFactory,
    admin_status,
    sdk_client,
    wait_until,
)
from tests.http_receiver import Answer, Received, Receiver, Respond
from tests.support import free_port

_T = TypeVar("_T")

"""Seconds a delivery may take before a test gives up (the default backoff starts at 0.5 s)."""


class ReceiverThread:
    """A ``Receiver`` on its own event loop, so that a sync test can press and poll."""

    def __init__(self, respond: Respond | None = None, *, port: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.receiver = Receiver(port=port) if respond is None else Receiver(respond, port=port)

    def __enter__(self) -> Receiver:
        self._thread.start()
        self._run(self.receiver.__aenter__())
        return self.receiver

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._run(self.receiver.__aexit__(None, None, None))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
            self.loop.close()

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)


def invoke(client: Any, device: str, kind: str, method: str, parameters: object = None) -> Any:
    extra = {} if parameters is None else {"DeviceMethodParameters": json.dumps(parameters)}
    answer = client.invoke_device_method(
        DeviceId=device, DeviceMethod={"DeviceType": kind, "MethodName": method}, **extra
    )
    return json.loads(answer["DeviceMethodResponse"])


def claim_and_enable(client: Any, device: str) -> None:
    client.claim_devices_by_claim_code(ClaimCode=CLAIM_CODE)
    client.update_device_state(DeviceId=device, Enabled=True)


def first_device(fleet: Fleet) -> str:
    return sorted(record.device_id for record in fleet.manifest.devices)[0]


def listed_events(client: Any, device: str) -> list[dict[str, Any]]:
    now = time.time()
    events = client.list_device_events(
        DeviceId=device,
        FromTimeStamp=now - 86400,
        ToTimeStamp=now + 86400,
    )["Events"]
    return [json.loads(event["StdEvent"]) for event in events]


def make_click(
    fleet: Fleet, device: str, seq: int, life: float, click_type: ClickType = ClickType.SINGLE
) -> protocol.Click:
    return protocol.Click(
        device_id=device,
        seq=seq,
        click_type=click_type,
        reported_at=time.time(),
        remaining_life=life,
        battery_mv=1500,
        certificate_id=fleet.device(device).record.certificate_id,
    )


def publish(backend: ReferenceBackend, fleet: Fleet, clicks: Sequence[protocol.Click]) -> None:
    """Publish raw ``oneclick`` clicks as the device itself; return once each is acknowledged."""
    address = parse_broker_url(backend.mqtt_url)

    async def main() -> None:
        for click in clicks:  # one connection per click, as a per-click button does
            device = fleet.device(click.device_id)
            topic, payload = protocol.encode_click(protocol.PayloadFormat.ONECLICK, click)
            async with aiomqtt.Client(
                address.host,
                address.port,
                identifier=click.device_id,
                tls_context=device.tls_context(),
                timeout=10,
            ) as client:
                await client.publish(topic, payload, qos=1)

    asyncio.run(main())


def click_event(click: protocol.Click) -> dict[str, object]:
    """What AWS IoT 1-Click handed a Lambda function for ``click`` (facts.md)."""
    return {
        "deviceEvent": {
            "buttonClicked": {
                "clickType": click.click_type.value,
                "reportedTime": protocol.format_timestamp(click.reported_at),
            }
        },
        "deviceInfo": {
            "attributes": {},
            "type": "button",
            "deviceId": click.device_id,
            "remainingLife": click.remaining_life,
        },
    }


def health_event(click: protocol.Click, threshold: float) -> dict[str, object]:
    return {
        "deviceEvent": {
            "deviceHealthMonitor": {"condition": {"remainingLifeLowerThan": threshold}}
        },
        "deviceInfo": click_event(click)["deviceInfo"],
    }


def posted(receiver: Receiver) -> list[tuple[str, object]]:
    return [(request.target, json.loads(request.body)) for request in list(receiver.requests)]


# --------------------------------------------------------------------------- tests


def test_a_disabled_devices_click_is_listed_not_posted_then_enabled_clicks_arrive_in_order(
    backend: ReferenceBackend, sdk: SdkFactory, backend_fleet: Fleet, press: Clicker
) -> None:
    alice = sdk(ALICE)
    device = first_device(backend_fleet)
    with ReceiverThread() as receiver:
        alice.claim_devices_by_claim_code(ClaimCode=CLAIM_CODE)  # claimed disabled
        callback = {"callback": {"url": receiver.url("/click")}}
        assert invoke(alice, device, "button", "setOnClickCallback", callback) == {}
        assert invoke(alice, device, "button", "getOnClickCallback") == callback

        press(device, ClickType.SINGLE)
        assert [event["clickType"] for event in listed_events(alice, device)] == ["SINGLE"]
        # The outbox is written in the click's own transaction: nothing was queued.
        assert admin_status(backend)["pendingCallbacks"] == 0

        alice.update_device_state(DeviceId=device, Enabled=True)
        press(device, ClickType.DOUBLE)
        press(device, ClickType.SINGLE)
        events = listed_events(alice, device)
        assert [event["clickType"] for event in events] == ["SINGLE", "DOUBLE", "SINGLE"]
        wait_until(
            lambda: len(receiver.requests) >= 2 and admin_status(backend)["pendingCallbacks"] == 0
        )
        time.sleep(0.3)  # a third POST (the disabled click's) would show up now

    expected = [
        {
            "deviceEvent": {
                "buttonClicked": {
                    "clickType": event["clickType"],
                    "reportedTime": event["reportedTime"],
                }
            },
            "deviceInfo": {
                "attributes": {},
                "type": "button",
                "deviceId": device,
                "remainingLife": event["remainingLife"],
            },
        }
        for event in events[1:]
    ]
    assert posted(receiver) == [("/click", body) for body in expected]
    for request in receiver.requests:
        assert request.method == "POST"
        assert request.header("content-type") == "application/json"


def test_a_500_is_retried_after_the_backoff_and_later_clicks_wait_their_turn(
    backend: ReferenceBackend,
    sdk: SdkFactory,
    backend_fleet: Fleet,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "clicksim.webhooks")
    alice = sdk(ALICE)
    device = first_device(backend_fleet)
    arrivals: list[float] = []

    async def fail_once(request: Received) -> Answer:
        arrivals.append(time.monotonic())
        return Answer(500 if len(arrivals) == 1 else 200)

    with ReceiverThread(fail_once) as receiver:
        claim_and_enable(alice, device)
        invoke(alice, device, "button", "setOnClickCallback", {"callback": {"url": receiver.url()}})
        clicks = [
            make_click(backend_fleet, device, 1, 90.0, ClickType.SINGLE),
            make_click(backend_fleet, device, 2, 89.5, ClickType.DOUBLE),
            make_click(backend_fleet, device, 3, 89.25, ClickType.LONG),
        ]
        publish(backend, backend_fleet, clicks)
        wait_until(lambda: admin_status(backend)["pendingCallbacks"] == 0)
        time.sleep(0.3)

    first, second, third = (click_event(click) for click in clicks)
    assert posted(receiver) == [("/", first), ("/", first), ("/", second), ("/", third)]
    assert arrivals[1] - arrivals[0] >= 0.45  # Backoff(first=0.5), not an immediate retry
    (warning,) = [r for r in caplog.records if r.name == "clicksim.webhooks"]
    assert warning.levelno == logging.WARNING
    assert "HTTP 500; retrying in 0.5 s" in warning.getMessage()


def test_the_health_callback_fires_each_time_remaining_life_falls_below_the_threshold(
    backend: ReferenceBackend, sdk: SdkFactory, backend_fleet: Fleet
) -> None:
    alice = sdk(ALICE)
    device = first_device(backend_fleet)
    with ReceiverThread() as receiver:
        claim_and_enable(alice, device)
        on_click = {"callback": {"url": receiver.url("/click")}}
        invoke(alice, device, "button", "setOnClickCallback", on_click)
        health = {
            "callback": {"url": receiver.url("/health")},
            "condition": {"remainingLifeLowerThan": 10},
        }
        invoke(alice, device, "device", "setDeviceHealthMonitorCallback", health)
        assert invoke(alice, device, "device", "getDeviceHealthMonitorCallback") == {
            "callback": {"url": receiver.url("/health")},
            "condition": {"remainingLifeLowerThan": 10.0},
        }
        lives = [12.0, 10.0, 9.5, 9.0, 50.0, 5.0]  # crosses below 10 twice: at 9.5 and at 5
        clicks = [make_click(backend_fleet, device, seq, life) for seq, life in enumerate(lives)]
        publish(backend, backend_fleet, clicks)
        wait_until(
            lambda: len(receiver.requests) >= 8 and admin_status(backend)["pendingCallbacks"] == 0
        )
        time.sleep(0.3)
        parameters = invoke(alice, device, "device", "getDeviceHealthParameters")

    c12, c10, c9_5, c9, c50, c5 = clicks
    assert posted(receiver) == [
        ("/click", click_event(c12)),
        ("/click", click_event(c10)),
        ("/click", click_event(c9_5)),
        ("/health", health_event(c9_5, 10)),
        ("/click", click_event(c9)),
        ("/click", click_event(c50)),
        ("/click", click_event(c5)),
        ("/health", health_event(c5, 10)),
    ]
    assert parameters == {"remainingLife": 5.0}


def test_a_pending_delivery_survives_a_restart_of_the_backend(
    backend_config: BackendConfig, backend_fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    restartable = backend_config  # a file database: the second run opens the first's
    assert restartable.db != ":memory:"
    caplog.set_level(logging.WARNING, "clicksim.webhooks")
    device = first_device(backend_fleet)
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    with BackendThread(restartable) as backend:  # the receiver is down all along
        alice = sdk_client(backend.api_url, ALICE)
        claim_and_enable(alice, device)
        invoke(alice, device, "button", "setOnClickCallback", {"callback": {"url": url}})
        click = make_click(backend_fleet, device, 1, 77.5, ClickType.DOUBLE)
        publish(backend, backend_fleet, [click])
        wait_until(
            lambda: any("connection refused" in r.getMessage() for r in caplog.records), WAIT
        )
        assert admin_status(backend)["pendingCallbacks"] == 1

    with ReceiverThread(port=port) as receiver, BackendThread(restartable) as backend:
        wait_until(lambda: admin_status(backend)["pendingCallbacks"] == 0)
        time.sleep(0.3)

    assert posted(receiver) == [("/hook", click_event(click))]
