"""The device protocol: topics, exact payload bytes, and what a backend refuses."""

from __future__ import annotations

import json
from typing import Any, Final

import pytest

from simulator.protocol import (
    BACKEND_SUBSCRIPTIONS,
    CLICK_QOS,
    Click,
    ClickType,
    PayloadFormat,
    ProtocolError,
    ReceivedClick,
    click_topic,
    decode_click,
    device_topic_patterns,
    encode_click,
    format_timestamp,
    format_voltage,
    parse_timestamp,
    parse_topic,
)

CERT: Final = "0123456789abcdef" * 4
DEVICE: Final = "G030PM0000000042"
ONECLICK_TOPIC: Final = f"oneclick/devices/{DEVICE}/events"
IOTBUTTON_TOPIC: Final = f"iotbutton/{DEVICE}"
T0: Final = 1_700_000_000.5  # 2023-11-14T22:13:20.500Z, exact in binary


def make_click(**overrides: Any) -> Click:
    fields: dict[str, Any] = {
        "device_id": DEVICE,
        "seq": 7,
        "click_type": ClickType.DOUBLE,
        "reported_at": T0,
        "remaining_life": 99.25,
        "battery_mv": 1748,
        "certificate_id": CERT,
        "test_mode": False,
    }
    fields.update(overrides)
    return Click(**fields)


def oneclick_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "deviceId": DEVICE,
        "type": "click",
        "seq": 7,
        "clickType": "DOUBLE",
        "reportedTime": "2023-11-14T22:13:20.500Z",
        "remainingLife": 99.25,
        "batteryVoltage": "1748mV",
        "certificateId": CERT,
        "testMode": False,
    }
    body.update(overrides)
    return body


def iotbutton_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "serialNumber": DEVICE,
        "batteryVoltage": "1615mV",
        "clickType": "SINGLE",
    }
    body.update(overrides)
    return body


def dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


# --- encoding ----------------------------------------------------------------------


def test_oneclick_payload_exact_bytes() -> None:
    topic, payload = encode_click(PayloadFormat.ONECLICK, make_click())
    assert topic == "oneclick/devices/G030PM0000000042/events"
    assert payload == (
        b'{"deviceId":"G030PM0000000042","type":"click","seq":7,"clickType":"DOUBLE",'
        b'"reportedTime":"2023-11-14T22:13:20.500Z","remainingLife":99.25,'
        b'"batteryVoltage":"1748mV","certificateId":"' + CERT.encode() + b'","testMode":false}'
    )


def test_iotbutton_payload_exact_bytes() -> None:
    click = make_click(click_type=ClickType.LONG, battery_mv=1615)
    topic, payload = encode_click(PayloadFormat.IOTBUTTON, click)
    assert topic == "iotbutton/G030PM0000000042"
    assert payload == (
        b'{"serialNumber":"G030PM0000000042","batteryVoltage":"1615mV","clickType":"LONG"}'
    )


def test_oneclick_payload_rounds_life_to_two_decimals_and_carries_test_mode() -> None:
    _, payload = encode_click(
        PayloadFormat.ONECLICK, make_click(remaining_life=87.654321, test_mode=True)
    )
    body = json.loads(payload)
    assert body["remainingLife"] == 87.65
    assert body["testMode"] is True
    assert list(body) == list(oneclick_body())


@pytest.mark.parametrize("click_type", list(ClickType))
def test_oneclick_round_trip(click_type: ClickType) -> None:
    click = make_click(
        click_type=click_type, seq=123_456, reported_at=1_700_000_000.123, test_mode=True
    )
    topic, payload = encode_click(PayloadFormat.ONECLICK, click)
    got = decode_click(topic, payload)
    assert got.payload_format is PayloadFormat.ONECLICK
    assert got.device_id == click.device_id
    assert got.click_type is click_type
    assert got.seq == click.seq
    assert got.reported_at == pytest.approx(click.reported_at, abs=1e-3)
    assert got.remaining_life == click.remaining_life
    assert got.battery_mv == click.battery_mv
    assert got.certificate_id == click.certificate_id
    assert got.test_mode is True


@pytest.mark.parametrize("click_type", list(ClickType))
def test_iotbutton_round_trip(click_type: ClickType) -> None:
    click = make_click(click_type=click_type)
    topic, payload = encode_click(PayloadFormat.IOTBUTTON, click)
    assert decode_click(topic, payload) == ReceivedClick(
        payload_format=PayloadFormat.IOTBUTTON,
        device_id=DEVICE,
        click_type=click_type,
        battery_mv=click.battery_mv,
    )


def test_clicks_go_at_qos_1() -> None:
    assert CLICK_QOS == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"device_id": ""},
        {"device_id": "a/b"},
        {"device_id": "a+b"},
        {"device_id": "a#"},
        {"seq": -1},
        {"remaining_life": 100.01},
        {"remaining_life": -0.01},
        {"remaining_life": float("nan")},
        {"battery_mv": -1},
        {"battery_mv": 100_000},
        {"certificate_id": CERT.upper()},
        {"certificate_id": CERT[:-1]},
    ],
)
def test_click_refuses_bad_fields(overrides: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        make_click(**overrides)


# --- topics and small formats ---------------------------------------------------------


def test_click_topic_per_format() -> None:
    assert click_topic(PayloadFormat.IOTBUTTON, "X1") == "iotbutton/X1"
    assert click_topic(PayloadFormat.ONECLICK, "X1") == "oneclick/devices/X1/events"
    assert device_topic_patterns("X1") == (
        "iotbutton/X1",
        "oneclick/devices/X1/events",
        "oneclick/devices/X1/status",
    )


@pytest.mark.parametrize("device_id", ["", "a/b", "+", "#", "x+"])
def test_click_topic_refuses_unusable_ids(device_id: str) -> None:
    with pytest.raises(ProtocolError):
        click_topic(PayloadFormat.ONECLICK, device_id)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("iotbutton/G030JF0000000001", (PayloadFormat.IOTBUTTON, "G030JF0000000001")),
        (
            "oneclick/devices/SRCM000000000001/events",
            (PayloadFormat.ONECLICK, "SRCM000000000001"),
        ),
    ],
)
def test_parse_topic(topic: str, expected: tuple[PayloadFormat, str]) -> None:
    assert parse_topic(topic) == expected


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "iotbutton",
        "iotbutton/",
        "iotbutton/a/b",
        "iotbutton/+",
        "iotbutton/#",
        "oneclick/devices/X1",
        "oneclick/devices//events",
        "oneclick/devices/X1/events/more",
        "oneclick/devices/+/events",
        "oneclick/devices/X1/clicks",
        "other/X1",
        "/iotbutton/X1",
    ],
)
def test_parse_topic_refuses_other_topics(topic: str) -> None:
    with pytest.raises(ProtocolError):
        parse_topic(topic)


def test_backend_subscriptions_cover_both_formats() -> None:
    assert set(BACKEND_SUBSCRIPTIONS) == {"iotbutton/+", "oneclick/devices/+/events"}


@pytest.mark.parametrize(
    ("posix", "text"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1_700_000_000.0, "2023-11-14T22:13:20.000Z"),
        (1_700_000_000.5, "2023-11-14T22:13:20.500Z"),
        (1_700_000_000.123, "2023-11-14T22:13:20.123Z"),
        (1_700_000_000.0071, "2023-11-14T22:13:20.007Z"),
    ],
)
def test_format_timestamp_milliseconds_and_z(posix: float, text: str) -> None:
    assert format_timestamp(posix) == text


def test_parse_timestamp_reads_zones_and_refuses_naive() -> None:
    assert parse_timestamp("2023-11-14T22:13:20.500Z") == T0
    assert parse_timestamp("2023-11-14T23:13:20.500+01:00") == T0
    with pytest.raises(ProtocolError):
        parse_timestamp("2023-11-14T22:13:20.500")
    with pytest.raises(ProtocolError):
        parse_timestamp("yesterday")


def test_format_voltage() -> None:
    assert format_voltage(1615) == "1615mV"


# --- decoding refusals --------------------------------------------------------------------


def _refused(topic: str, payload: bytes, *needles: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_click(topic, payload)
    for needle in needles:
        assert needle in str(info.value)


def test_good_bodies_are_accepted() -> None:
    # The bodies the refusal tests start from are themselves valid.
    decode_click(ONECLICK_TOPIC, dumps(oneclick_body()))
    decode_click(IOTBUTTON_TOPIC, dumps(iotbutton_body()))


@pytest.mark.parametrize(
    "payload", [b"", b"not json", b"{", b"\xff\xfe\xfa", b'{"deviceId": }'], ids=repr
)
def test_decode_refuses_non_json(payload: bytes) -> None:
    _refused(ONECLICK_TOPIC, payload, "not JSON")


@pytest.mark.parametrize("payload", [b"[]", b"[1, 2]", b'"click"', b"42", b"null", b"true"])
def test_decode_refuses_non_objects(payload: bytes) -> None:
    _refused(ONECLICK_TOPIC, payload, "not a JSON object")
    _refused(IOTBUTTON_TOPIC, payload, "not a JSON object")


def test_decode_refuses_a_non_click_topic() -> None:
    _refused("devices/X1/click", dumps(oneclick_body()), "not a click topic")


@pytest.mark.parametrize("name", list(oneclick_body()))
def test_decode_refuses_missing_oneclick_field(name: str) -> None:
    body = oneclick_body()
    del body[name]
    _refused(ONECLICK_TOPIC, dumps(body), "lacks", name)


@pytest.mark.parametrize("name", list(iotbutton_body()))
def test_decode_refuses_missing_iotbutton_field(name: str) -> None:
    body = iotbutton_body()
    del body[name]
    _refused(IOTBUTTON_TOPIC, dumps(body), "lacks", name)


def test_decode_refuses_unknown_fields() -> None:
    _refused(ONECLICK_TOPIC, dumps(oneclick_body(extra=1)), "unknown", "extra")
    # an iotbutton payload must not carry the 1-Click fields either
    _refused(IOTBUTTON_TOPIC, dumps(iotbutton_body(seq=1)), "unknown", "seq")


def test_decode_refuses_device_id_differing_from_topic() -> None:
    _refused(ONECLICK_TOPIC, dumps(oneclick_body(deviceId="G030PM0000000043")), "G030PM0000000043")
    _refused(
        IOTBUTTON_TOPIC, dumps(iotbutton_body(serialNumber="G030PM0000000043")), "G030PM0000000043"
    )


@pytest.mark.parametrize("value", ["TRIPLE", "single", "", "Double", 1, None])
def test_decode_refuses_bad_click_type(value: object) -> None:
    _refused(ONECLICK_TOPIC, dumps(oneclick_body(clickType=value)), "clickType")
    _refused(IOTBUTTON_TOPIC, dumps(iotbutton_body(clickType=value)), "clickType")


@pytest.mark.parametrize(
    "value",
    ["1615", "1615 mV", "1615mv", "1.6V", "mV", "-1615mV", "123456mV", "1615mV ", 1615, None],
)
def test_decode_refuses_bad_battery_voltage(value: object) -> None:
    _refused(ONECLICK_TOPIC, dumps(oneclick_body(batteryVoltage=value)), "batteryVoltage")
    _refused(IOTBUTTON_TOPIC, dumps(iotbutton_body(batteryVoltage=value)), "batteryVoltage")


def test_click_refuses_certificate_id_with_trailing_newline() -> None:
    with pytest.raises(ProtocolError):
        make_click(certificate_id=CERT + "\n")


def test_decode_refuses_battery_voltage_with_trailing_newline() -> None:
    # "1615mV\n" is not like "1615mV": the whole string must be the voltage.
    _refused(ONECLICK_TOPIC, dumps(oneclick_body(batteryVoltage="1615mV\n")), "batteryVoltage")
    _refused(IOTBUTTON_TOPIC, dumps(iotbutton_body(batteryVoltage="1615mV\n")), "batteryVoltage")


@pytest.mark.parametrize("value", [-1, -1000])
def test_decode_refuses_negative_seq(value: int) -> None:
    _refused(ONECLICK_TOPIC, dumps(oneclick_body(seq=value)), "seq")


@pytest.mark.parametrize("value", [1.0, "7", None])
def test_decode_refuses_non_integer_seq(value: object) -> None:
    _refused(ONECLICK_TOPIC, dumps(oneclick_body(seq=value)), "seq")


@pytest.mark.parametrize("value", [-0.01, 100.01, 1000, -5])
def test_decode_refuses_remaining_life_out_of_range(value: float) -> None:
    _refused(ONECLICK_TOPIC, dumps(oneclick_body(remainingLife=value)), "remainingLife")


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_decode_refuses_non_finite_remaining_life(literal: bytes) -> None:
    payload = dumps(oneclick_body(remainingLife=0.5)).replace(b"0.5", literal)
    _refused(ONECLICK_TOPIC, payload, "remainingLife")


def test_decode_accepts_remaining_life_bounds_and_integers() -> None:
    for value in (0, 100, 0.0, 100.0):
        got = decode_click(ONECLICK_TOPIC, dumps(oneclick_body(remainingLife=value)))
        assert got.remaining_life == float(value)


@pytest.mark.parametrize(
    "value",
    [CERT.upper(), CERT[:-1], CERT + "0", "g" * 64, "", 123, CERT + "\n"],
    ids=["upper", "short", "long", "non-hex", "empty", "number", "trailing-newline"],
)
def test_decode_refuses_bad_certificate_id(value: object) -> None:
    _refused(ONECLICK_TOPIC, dumps(oneclick_body(certificateId=value)), "certificateId")


@pytest.mark.parametrize("name", ["seq", "remainingLife"])
@pytest.mark.parametrize("value", [True, False])
def test_decode_refuses_boolean_for_a_number(name: str, value: bool) -> None:
    _refused(ONECLICK_TOPIC, dumps(oneclick_body(**{name: value})), name, "boolean")


@pytest.mark.parametrize("value", [0, 1, "false", None])
def test_decode_refuses_non_boolean_test_mode(value: object) -> None:
    _refused(ONECLICK_TOPIC, dumps(oneclick_body(testMode=value)), "testMode")


@pytest.mark.parametrize("value", ["press", "CLICK", "", None])
def test_decode_refuses_other_event_types(value: object) -> None:
    _refused(ONECLICK_TOPIC, dumps(oneclick_body(type=value)), "type")


@pytest.mark.parametrize(
    "value", ["yesterday", "2023-11-14T22:13:20.500", "2023-13-01T00:00:00Z", 1_700_000_000, None]
)
def test_decode_refuses_bad_reported_time(value: object) -> None:
    _refused(ONECLICK_TOPIC, dumps(oneclick_body(reportedTime=value)))


@pytest.mark.parametrize("value", [42, None, ["G030PM0000000042"]])
def test_decode_refuses_non_string_device_id(value: object) -> None:
    _refused(ONECLICK_TOPIC, dumps(oneclick_body(deviceId=value)), "deviceId")
