"""The service's rules (docs/semantics.md), called directly: fast and exhaustive.

The same rows are checked again through real HTTP and the AWS SDK in test_sdk.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from simulator import protocol
from simulator.backend import errors
from simulator.backend.service import DevicesService
from simulator.backend.store import InventoryDevice, Store

ALICE, BOB = "111111111111", "222222222222"
CODE = "C-BATCH00001"
CERT = "c" * 64
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(tmp_path: Path, clock: Clock) -> Iterator[DevicesService]:
    store = Store(tmp_path / "db")
    store.add_devices(
        InventoryDevice(
            device_id=f"D{i}", device_type="button", certificate_id=CERT, claim_code=CODE
        )
        for i in range(3)
    )
    store.add_devices(
        [
            InventoryDevice(
                device_id="X1", device_type="button", certificate_id=CERT, claim_code="C-OTHER00001"
            )
        ]
    )
    yield DevicesService(store, clock=clock)
    store.close()


def click(
    device: str, seq: int, *, life: float | None = 99.0, at: float = T0, cert: str | None = CERT
) -> protocol.ReceivedClick:
    return protocol.ReceivedClick(
        payload_format=protocol.PayloadFormat.ONECLICK,
        device_id=device,
        click_type=protocol.ClickType.SINGLE,
        battery_mv=1600,
        seq=seq,
        reported_at=at,
        remaining_life=life,
        certificate_id=cert,
    )


def next_token(page: dict[str, object]) -> str | None:
    token = page.get("nextToken")
    assert token is None or isinstance(token, str)
    return token


def window(service: DevicesService, caller: str, device: str) -> list[dict[str, object]]:
    result = service.list_device_events(
        caller,
        device,
        from_time=datetime.fromtimestamp(T0 - 3600, UTC),
        to_time=datetime.fromtimestamp(T0 + 10 * 86400, UTC),
        max_results=None,
        next_token=None,
    )
    events = result["events"]
    assert isinstance(events, list)
    return events


# --- claims ------------------------------------------------------------------------


def test_claim_by_code_claims_the_batch_disabled(service: DevicesService) -> None:
    assert service.claim_devices_by_claim_code(ALICE, CODE) == {"claimCode": CODE, "total": 3}
    description = service.describe_device(ALICE, "D0")["deviceDescription"]
    assert isinstance(description, dict)
    assert description["enabled"] is False
    assert description["arn"] == f"arn:aws:iot1click:us-east-1:{ALICE}:devices/D0"


def test_the_same_account_claiming_its_code_again_gets_the_same_total(
    service: DevicesService,
) -> None:
    service.claim_devices_by_claim_code(ALICE, CODE)
    assert service.claim_devices_by_claim_code(ALICE, CODE) == {"claimCode": CODE, "total": 3}


@pytest.mark.parametrize("code", ["C-NOSUCHCODE1", CODE])
def test_an_unknown_code_or_one_used_by_another_account_is_403(
    service: DevicesService, code: str
) -> None:
    service.claim_devices_by_claim_code(ALICE, CODE)
    with pytest.raises(errors.Forbidden):
        service.claim_devices_by_claim_code(BOB, code)


@pytest.mark.parametrize("code", ["C-SHORT", "X-ABCDEFGHIJKL", "C-" + "A" * 39, "C-ABCDEFGHI!"])
def test_a_malformed_code_is_400(service: DevicesService, code: str) -> None:
    with pytest.raises(errors.InvalidRequest, match="claimCode"):
        service.claim_devices_by_claim_code(ALICE, code)


def test_initiate_click_finalize(service: DevicesService, clock: Clock) -> None:
    assert service.initiate_device_claim(ALICE, "D1") == {"state": "CLAIM_INITIATED"}
    clock.now += 10
    assert service.record_clicks([click("D1", 0, at=clock.now)], received_at=clock.now)[0].stored
    assert service.finalize_device_claim(ALICE, "D1", {"room": "7"}) == {"state": "CLAIMED"}
    assert service.list_tags_for_resource(ALICE, f"arn:aws:iot1click:us-east-1:{ALICE}:devices/D1")[
        "tags"
    ] == {"room": "7"}
    assert len(window(service, ALICE, "D1")) == 1


def test_finalize_without_a_click_is_412(service: DevicesService) -> None:
    service.initiate_device_claim(ALICE, "D1")
    with pytest.raises(errors.PreconditionFailed):
        service.finalize_device_claim(ALICE, "D1", None)


def test_finalize_after_the_window_is_412(service: DevicesService, clock: Clock) -> None:
    service.initiate_device_claim(ALICE, "D1")
    service.record_clicks([click("D1", 0)], received_at=clock.now)
    clock.now += 901
    with pytest.raises(errors.PreconditionFailed):
        service.finalize_device_claim(ALICE, "D1", None)


def test_finalize_with_nothing_initiated_is_412(service: DevicesService) -> None:
    with pytest.raises(errors.PreconditionFailed):
        service.finalize_device_claim(ALICE, "D1", None)


def test_initiate_on_a_claimed_device_is_409_for_anyone(service: DevicesService) -> None:
    service.claim_devices_by_claim_code(ALICE, CODE)
    for caller in (ALICE, BOB):
        with pytest.raises(errors.ResourceConflict):
            service.initiate_device_claim(caller, "D0")


def test_finalize_after_another_account_finished_is_409(
    service: DevicesService, clock: Clock
) -> None:
    service.initiate_device_claim(ALICE, "D1")
    service.record_clicks([click("D1", 0)], received_at=clock.now)
    service.claim_devices_by_claim_code(BOB, CODE)
    with pytest.raises(errors.ResourceConflict):
        service.finalize_device_claim(ALICE, "D1", None)


def test_an_unknown_device_is_404_on_initiate(service: DevicesService) -> None:
    with pytest.raises(errors.ResourceNotFound):
        service.initiate_device_claim(ALICE, "NOPE")


def test_a_device_of_another_account_looks_like_no_device(service: DevicesService) -> None:
    service.claim_devices_by_claim_code(ALICE, CODE)
    calls: list[Callable[[], object]] = [
        lambda: service.describe_device(BOB, "D0"),
        lambda: service.get_device_methods(BOB, "D0"),
        lambda: service.unclaim_device(BOB, "D0"),
        lambda: service.update_device_state(BOB, "D0", True),
        lambda: window(service, BOB, "D0"),
    ]
    messages = set()
    call: Callable[[], object]
    for call in calls:
        with pytest.raises(errors.ResourceNotFound) as caught:
            call()
        assert ALICE not in caught.value.message
        messages.add(caught.value.message)
    with pytest.raises(errors.ResourceNotFound) as unknown:
        service.describe_device(BOB, "NOPE")
    assert unknown.value.message.replace("NOPE", "D0") in messages
    assert service.list_devices(BOB, device_type=None, max_results=None, next_token=None) == {
        "devices": []
    }


def test_unclaim_then_another_account_can_claim(service: DevicesService) -> None:
    service.claim_devices_by_claim_code(ALICE, CODE)
    arn = f"arn:aws:iot1click:us-east-1:{ALICE}:devices/D0"
    service.tag_resource(ALICE, arn, {"k": "v"})
    assert service.unclaim_device(ALICE, "D0") == {"state": "UNCLAIMED"}
    with pytest.raises(errors.ResourceNotFound):
        service.describe_device(ALICE, "D0")
    service.initiate_device_claim(BOB, "D0")
    service.record_clicks([click("D0", 1)], received_at=T0)
    service.finalize_device_claim(BOB, "D0", None)
    bob_arn = f"arn:aws:iot1click:us-east-1:{BOB}:devices/D0"
    assert service.list_tags_for_resource(BOB, bob_arn) == {"tags": {}}


# --- state, tags -------------------------------------------------------------------


def test_update_device_state_needs_a_boolean(service: DevicesService) -> None:
    service.claim_devices_by_claim_code(ALICE, CODE)
    with pytest.raises(errors.InvalidRequest, match="enabled"):
        service.update_device_state(ALICE, "D0", None)
    assert service.update_device_state(ALICE, "D0", True) == {}
    description = service.describe_device(ALICE, "D0")["deviceDescription"]
    assert isinstance(description, dict)
    assert description["enabled"] is True


@pytest.mark.parametrize(
    "tags",
    [
        {"": "v"},
        {"k" * 129: "v"},
        {"aws:x": "v"},
        {"k": "v" * 257},
        {f"k{i}": "v" for i in range(51)},
    ],
    ids=["empty-key", "long-key", "aws-prefix", "long-value", "51-tags"],
)
def test_bad_tags_are_400_and_change_nothing(service: DevicesService, tags: dict[str, str]) -> None:
    service.claim_devices_by_claim_code(ALICE, CODE)
    arn = f"arn:aws:iot1click:us-east-1:{ALICE}:devices/D0"
    service.tag_resource(ALICE, arn, {"keep": "me"})
    with pytest.raises(errors.InvalidRequest, match="tags"):
        service.tag_resource(ALICE, arn, tags)
    assert service.list_tags_for_resource(ALICE, arn) == {"tags": {"keep": "me"}}


def test_tags_merge_and_untag_removes(service: DevicesService) -> None:
    service.claim_devices_by_claim_code(ALICE, CODE)
    arn = f"arn:aws:iot1click:us-east-1:{ALICE}:devices/D0"
    service.tag_resource(ALICE, arn, {"a": "1", "b": "2"})
    service.tag_resource(ALICE, arn, {"b": "3", "c": "4"})
    service.untag_resource(ALICE, arn, ["a", "missing"])
    assert service.list_tags_for_resource(ALICE, arn) == {"tags": {"b": "3", "c": "4"}}


@pytest.mark.parametrize(
    ("arn", "error"),
    [
        ("not-an-arn", errors.InvalidRequest),
        ("arn:aws:iot1click:us-east-1:12345:devices/D0", errors.InvalidRequest),
        (f"arn:aws:iot1click:us-east-1:{BOB}:devices/D0", errors.ResourceNotFound),
        (f"arn:aws:iot1click:eu-west-1:{ALICE}:devices/D0", errors.ResourceNotFound),
        (f"arn:aws:iot1click:us-east-1:{ALICE}:devices/X1", errors.ResourceNotFound),
    ],
)
def test_arns(service: DevicesService, arn: str, error: type[errors.ApiError]) -> None:
    service.claim_devices_by_claim_code(ALICE, CODE)
    with pytest.raises(error):
        service.list_tags_for_resource(ALICE, arn)


# --- events and pages --------------------------------------------------------------


def test_duplicates_unknown_devices_and_wrong_certificates_are_not_stored(
    service: DevicesService,
) -> None:
    outcomes = service.record_clicks(
        [click("D0", 1), click("D0", 1), click("NOPE", 1), click("D0", 2, cert="d" * 64)],
        received_at=T0,
    )
    assert [(o.stored, o.reason) for o in outcomes] == [
        (True, ""),
        (False, "duplicate"),
        (False, "unknown-device"),
        (False, "wrong-certificate"),
    ]


def test_pages_of_devices_lose_and_repeat_nothing(service: DevicesService) -> None:
    service.claim_devices_by_claim_code(ALICE, CODE)
    seen: list[object] = []
    token = None
    while True:
        page = service.list_devices(ALICE, device_type=None, max_results=1, next_token=token)
        devices = page["devices"]
        assert isinstance(devices, list)
        seen += [d["deviceId"] for d in devices]
        token = next_token(page)
        if token is None:
            break
    assert seen == ["D0", "D1", "D2"]


def test_a_page_token_of_another_account_or_query_is_416(service: DevicesService) -> None:
    service.claim_devices_by_claim_code(ALICE, CODE)
    service.claim_devices_by_claim_code(BOB, "C-OTHER00001")
    token = service.list_devices(ALICE, device_type=None, max_results=1, next_token=None)[
        "nextToken"
    ]
    assert isinstance(token, str)
    with pytest.raises(errors.RangeNotSatisfiable):
        service.list_devices(BOB, device_type=None, max_results=1, next_token=token)
    with pytest.raises(errors.RangeNotSatisfiable):
        service.list_devices(ALICE, device_type="button", max_results=1, next_token=token)
    with pytest.raises(errors.RangeNotSatisfiable):
        service.list_devices(ALICE, device_type=None, max_results=1, next_token="forged")


def test_events_in_a_window_in_order_across_pages(service: DevicesService) -> None:
    service.claim_devices_by_claim_code(ALICE, CODE)
    times = [T0 + 30, T0 + 10, T0 + 20, T0 + 20, T0 + 5000]
    service.record_clicks([click("D0", i, at=t) for i, t in enumerate(times)], received_at=T0)
    pages: list[list[str]] = []
    token = None
    while True:
        page = service.list_device_events(
            ALICE,
            "D0",
            from_time=datetime.fromtimestamp(T0 + 10, UTC),
            to_time=datetime.fromtimestamp(T0 + 30, UTC),
            max_results=2,
            next_token=token,
        )
        events = page["events"]
        assert isinstance(events, list)
        pages.append([json.loads(e["stdEvent"])["reportedTime"][17:19] for e in events])
        token = next_token(page)
        if token is None:
            break
    assert [t for page in pages for t in page] == ["10", "20", "20", "30"]
    assert [len(page) for page in pages] == [2, 2]


def test_from_after_to_is_400(service: DevicesService) -> None:
    service.claim_devices_by_claim_code(ALICE, CODE)
    with pytest.raises(errors.InvalidRequest, match="fromTimeStamp"):
        service.list_device_events(
            ALICE,
            "D0",
            from_time=datetime.fromtimestamp(T0 + 1, UTC),
            to_time=datetime.fromtimestamp(T0, UTC),
            max_results=None,
            next_token=None,
        )


def test_a_new_owner_does_not_see_the_last_owners_events(service: DevicesService) -> None:
    service.claim_devices_by_claim_code(ALICE, CODE)
    service.record_clicks([click("D0", 1)], received_at=T0)
    service.unclaim_device(ALICE, "D0")
    service.initiate_device_claim(BOB, "D0")
    service.record_clicks([click("D0", 2)], received_at=T0)
    service.finalize_device_claim(BOB, "D0", None)
    assert len(window(service, BOB, "D0")) == 1  # Bob's own click, not Alice's


# --- device methods and callbacks --------------------------------------------------


def invoke(service: DevicesService, name: str, kind: str, parameters: str | None) -> object:
    answer = service.invoke_device_method(
        ALICE, "D0", method={"deviceType": kind, "methodName": name}, parameters=parameters
    )["deviceMethodResponse"]
    assert isinstance(answer, str)
    return json.loads(answer)


def test_the_five_methods(service: DevicesService) -> None:
    service.claim_devices_by_claim_code(ALICE, CODE)
    methods = service.get_device_methods(ALICE, "D0")["deviceMethods"]
    assert isinstance(methods, list)
    assert {(m["deviceType"], m["methodName"]) for m in methods} == {
        ("device", "getDeviceHealthParameters"),
        ("device", "setDeviceHealthMonitorCallback"),
        ("device", "getDeviceHealthMonitorCallback"),
        ("button", "setOnClickCallback"),
        ("button", "getOnClickCallback"),
    }
    service.record_clicks([click("D0", 1, life=97.5)], received_at=T0)
    assert invoke(service, "getDeviceHealthParameters", "device", None) == {"remainingLife": 97.5}
    lam = "arn:aws:lambda:us-east-1:111111111111:function:on-click"
    assert (
        invoke(
            service, "setOnClickCallback", "button", json.dumps({"callback": {"awsLambdaArn": lam}})
        )
        == {}
    )
    assert invoke(service, "getOnClickCallback", "button", "{}") == {
        "callback": {"awsLambdaArn": lam}
    }
    health = {
        "callback": {"url": "http://127.0.0.1:9/h"},
        "condition": {"remainingLifeLowerThan": 20},
    }
    assert invoke(service, "setDeviceHealthMonitorCallback", "device", json.dumps(health)) == {}
    assert invoke(service, "getDeviceHealthMonitorCallback", "device", None) == health


@pytest.mark.parametrize(
    ("name", "kind", "parameters"),
    [
        ("reboot", "device", None),
        ("setOnClickCallback", "device", '{"callback": {"url": "http://x/"}}'),
        ("getOnClickCallback", "button", ""),
        ("setOnClickCallback", "button", "[]"),
        ("setOnClickCallback", "button", "not json"),
        ("setDeviceHealthMonitorCallback", "device", '{"condition": NaN}'),
        ("setOnClickCallback", "button", '{"callback": {"url": "ftp://x/"}}'),
        ("setOnClickCallback", "button", '{"callback": {"url": "http://a..b/"}}'),
        ("setOnClickCallback", "button", '{"callback": {"url": "http://h/\u00e9"}}'),
        ("setOnClickCallback", "button", '{"callback": {"awsLambdaArn": "arn:aws:s3:::b"}}'),
        ("setOnClickCallback", "button", '{"callback": {"url": "http://x/"}, "extra": 1}'),
        (
            "setDeviceHealthMonitorCallback",
            "device",
            '{"callback": {"url": "http://x/"}, "condition": {"remainingLifeLowerThan": 0}}',
        ),
    ],
)
def test_bad_method_calls_are_400(
    service: DevicesService, name: str, kind: str, parameters: str | None
) -> None:
    service.claim_devices_by_claim_code(ALICE, CODE)
    with pytest.raises(errors.InvalidRequest):
        invoke(service, name, kind, parameters)


def test_clicks_of_an_enabled_device_queue_lambda_format_events(service: DevicesService) -> None:
    woken: list[bool] = []
    service._on_delivery = lambda: woken.append(True)
    service.claim_devices_by_claim_code(ALICE, CODE)
    invoke(service, "setOnClickCallback", "button", '{"callback": {"url": "http://127.0.0.1:9/c"}}')
    service.record_clicks([click("D0", 1)], received_at=T0)  # disabled: stored, not delivered
    assert service.store.pending_deliveries() == 0
    assert len(window(service, ALICE, "D0")) == 1
    service.update_device_state(ALICE, "D0", True)
    service.record_clicks([click("D0", 2, life=98.0)], received_at=T0)
    (delivery,) = service.store.due(now=T0 + 1, limit=10)
    assert json.loads(delivery.body) == {
        "deviceEvent": {
            "buttonClicked": {"clickType": "SINGLE", "reportedTime": protocol.format_timestamp(T0)}
        },
        "deviceInfo": {"attributes": {}, "type": "button", "deviceId": "D0", "remainingLife": 98.0},
    }
    assert woken == [True]


def test_the_health_event_fires_once_when_life_falls_below_the_threshold(
    service: DevicesService,
) -> None:
    service.claim_devices_by_claim_code(ALICE, CODE)
    service.update_device_state(ALICE, "D0", True)
    invoke(
        service,
        "setDeviceHealthMonitorCallback",
        "device",
        json.dumps(
            {
                "callback": {"url": "http://127.0.0.1:9/h"},
                "condition": {"remainingLifeLowerThan": 10},
            }
        ),
    )
    service.record_clicks(
        [click("D0", i, life=life) for i, life in enumerate([11.0, 10.0, 9.95, 9.9])],
        received_at=T0,
    )
    bodies = []
    while deliveries := service.store.due(now=T0 + 1, limit=10):
        bodies.append(json.loads(deliveries[0].body))
        service.store.delivered(deliveries[0].id)
    assert bodies == [
        {
            "deviceEvent": {"deviceHealthMonitor": {"condition": {"remainingLifeLowerThan": 10.0}}},
            "deviceInfo": {
                "attributes": {},
                "type": "button",
                "deviceId": "D0",
                "remainingLife": 9.95,
            },
        }
    ]
