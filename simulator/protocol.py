"""The device protocol: topics and click payloads, the one place both sides take them from.

AWS never published how 1-Click devices talk to the service; clicksim defines it here
and documents it in ``docs/protocol.md``. Two payload formats exist:

* ``iotbutton``: the original AWS IoT Button, topic ``iotbutton/{serialNumber}``.
* ``oneclick``: the 1-Click devices, topic ``oneclick/devices/{deviceId}/events``.
"""

from __future__ import annotations

import enum
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final


class ClickType(enum.StrEnum):
    SINGLE = "SINGLE"
    DOUBLE = "DOUBLE"
    LONG = "LONG"


class PayloadFormat(enum.StrEnum):
    IOTBUTTON = "iotbutton"
    ONECLICK = "oneclick"


class ProtocolError(ValueError):
    """A topic or payload that does not follow the device protocol."""


class OtherDeviceError(ProtocolError):
    """A click payload that names another device than its topic."""


CLICK_QOS: Final = 1
"""Clicks go at QoS 1: a click is not done until the broker acknowledged it."""

ONECLICK_EVENT_TYPE: Final = "click"

_TOPIC_PATTERNS: Final = {
    PayloadFormat.IOTBUTTON: re.compile(r"^iotbutton/(?P<device_id>[^/+#]+)$"),
    PayloadFormat.ONECLICK: re.compile(r"^oneclick/devices/(?P<device_id>[^/+#]+)/events$"),
}

BACKEND_SUBSCRIPTIONS: Final = ("iotbutton/+", "oneclick/devices/+/events")
"""Topic filters a backend subscribes to in order to receive every device's clicks."""

CLAIM_CODE: Final = re.compile(r"^C-[A-Za-z0-9]{10,38}$")
"""A claim code: ``C-`` and 10 to 38 letters or digits (12..40 characters in all)."""

_VOLTAGE = re.compile(r"^(?P<mv>\d{1,5})mV$")
CERTIFICATE_ID: Final = re.compile(r"^[0-9a-f]{64}$")


def _topic_safe(device_id: str) -> str:
    if not device_id or any(c in device_id for c in "/+#"):
        raise ProtocolError(f"device id {device_id!r} cannot be used in a topic")
    return device_id


def click_topic(payload_format: PayloadFormat, device_id: str) -> str:
    """The topic a device publishes its clicks to."""
    _topic_safe(device_id)
    if payload_format is PayloadFormat.IOTBUTTON:
        return f"iotbutton/{device_id}"
    return f"oneclick/devices/{device_id}/events"


def status_topic(device_id: str) -> str:
    """Where a persistent device's last will says it went offline (never a click)."""
    return f"oneclick/devices/{_topic_safe(device_id)}/status"


OFFLINE_STATUS: Final = b'{"state":"offline"}'
"""The last will of a persistent device."""

STATUS_SUBSCRIPTION: Final = "oneclick/devices/+/status"
"""The topic filter for every device's status (last will)."""


def device_topic_patterns(device_id: str) -> tuple[str, ...]:
    """The topics one device may publish to: what a broker's ACL grants it."""
    clicks = tuple(click_topic(fmt, device_id) for fmt in PayloadFormat)
    return (*clicks, status_topic(device_id))


def parse_topic(topic: str) -> tuple[PayloadFormat, str]:
    """Which format and which device a click topic belongs to."""
    for payload_format, pattern in _TOPIC_PATTERNS.items():
        match = pattern.fullmatch(topic)
        if match:
            return payload_format, match["device_id"]
    raise ProtocolError(f"topic {topic!r} is not a click topic")


def format_voltage(millivolts: int) -> str:
    """``1615`` -> ``"1615mV"``, the string the buttons report."""
    return f"{millivolts}mV"


def format_timestamp(posix_seconds: float) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``, as in ``reportedTime``."""
    stamp = datetime.fromtimestamp(posix_seconds, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> float:
    """The POSIX time of an ISO 8601 stamp; a stamp without a zone is refused."""
    try:
        stamp = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ProtocolError(f"{text!r} is not an ISO 8601 timestamp") from None
    if stamp.tzinfo is None:
        raise ProtocolError(f"timestamp {text!r} has no time zone")
    return stamp.timestamp()


@dataclass(frozen=True, kw_only=True, slots=True)
class Click:
    """One click as a device reports it, whatever the wire format.

    Built by the firmware at the moment the click is recognised, so the battery
    figures and the time are those of the press, not of a later retry.
    """

    device_id: str
    seq: int
    click_type: ClickType
    reported_at: float
    remaining_life: float
    battery_mv: int
    certificate_id: str
    test_mode: bool = False

    def __post_init__(self) -> None:
        if not self.device_id or any(c in self.device_id for c in "/+#"):
            raise ProtocolError(f"device id {self.device_id!r} is not valid")
        if self.seq < 0:
            raise ProtocolError(f"seq must be >= 0, got {self.seq}")
        if not (math.isfinite(self.remaining_life) and 0.0 <= self.remaining_life <= 100.0):
            raise ProtocolError(f"remainingLife must be within 0..100, got {self.remaining_life}")
        if not 0 <= self.battery_mv <= 99_999:
            raise ProtocolError(f"battery voltage must be 0..99999 mV, got {self.battery_mv}")
        if not CERTIFICATE_ID.fullmatch(self.certificate_id):
            raise ProtocolError("certificateId must be 64 lowercase hex characters")


def encode_click(payload_format: PayloadFormat, click: Click) -> tuple[str, bytes]:
    """The topic and the exact payload bytes for ``click`` in ``payload_format``."""
    body: dict[str, Any]
    if payload_format is PayloadFormat.IOTBUTTON:
        body = {
            "serialNumber": click.device_id,
            "batteryVoltage": format_voltage(click.battery_mv),
            "clickType": click.click_type.value,
        }
    else:
        body = {
            "deviceId": click.device_id,
            "type": ONECLICK_EVENT_TYPE,
            "seq": click.seq,
            "clickType": click.click_type.value,
            "reportedTime": format_timestamp(click.reported_at),
            "remainingLife": round(click.remaining_life, 2),
            "batteryVoltage": format_voltage(click.battery_mv),
            "certificateId": click.certificate_id,
            "testMode": click.test_mode,
        }
    topic = click_topic(payload_format, click.device_id)
    return topic, json.dumps(body, separators=(",", ":")).encode()


@dataclass(frozen=True, kw_only=True, slots=True)
class ReceivedClick:
    """A click as a backend reads it off the wire.

    ``iotbutton`` payloads carry no seq, time, life or certificate: those fields are
    ``None`` and the backend supplies what it knows (its own clock, the TLS peer).
    """

    payload_format: PayloadFormat
    device_id: str
    click_type: ClickType
    battery_mv: int
    seq: int | None = None
    reported_at: float | None = None
    remaining_life: float | None = None
    certificate_id: str | None = None
    test_mode: bool = False


def decode_click(topic: str, payload: bytes) -> ReceivedClick:
    """Parse and check a click; the error names the first field that is wrong."""
    payload_format, topic_device = parse_topic(topic)
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"payload on {topic} is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"payload on {topic} is not a JSON object")
    fields = _IOTBUTTON_FIELDS if payload_format is PayloadFormat.IOTBUTTON else _ONECLICK_FIELDS
    missing = [name for name in fields if name not in body]
    extra = sorted(set(body) - set(fields))
    if missing:
        raise ProtocolError(f"payload on {topic} lacks {', '.join(missing)}")
    if extra:
        raise ProtocolError(f"payload on {topic} has unknown fields {', '.join(extra)}")
    id_field = "serialNumber" if payload_format is PayloadFormat.IOTBUTTON else "deviceId"
    device_id = _field(body, id_field, str)
    if device_id != topic_device:
        raise OtherDeviceError(
            f"payload on {topic} names device {device_id!r}, not {topic_device!r}"
        )
    click_type_text = _field(body, "clickType", str)
    try:
        click_type = ClickType(click_type_text)
    except ValueError:
        raise ProtocolError(
            f"clickType {click_type_text!r} is not SINGLE, DOUBLE or LONG"
        ) from None
    voltage = _VOLTAGE.fullmatch(_field(body, "batteryVoltage", str))
    if voltage is None:
        raise ProtocolError(f"batteryVoltage {body['batteryVoltage']!r} is not like '1615mV'")
    if payload_format is PayloadFormat.IOTBUTTON:
        return ReceivedClick(
            payload_format=payload_format,
            device_id=device_id,
            click_type=click_type,
            battery_mv=int(voltage["mv"]),
        )
    if _field(body, "type", str) != ONECLICK_EVENT_TYPE:
        raise ProtocolError(f"type {body['type']!r} is not {ONECLICK_EVENT_TYPE!r}")
    seq = _field(body, "seq", int)
    if seq < 0:
        raise ProtocolError(f"seq {seq} is negative")
    life = float(_field(body, "remainingLife", (int, float)))
    if not (math.isfinite(life) and 0.0 <= life <= 100.0):
        raise ProtocolError(f"remainingLife {life} is not within 0..100")
    certificate_id = _field(body, "certificateId", str)
    if not CERTIFICATE_ID.fullmatch(certificate_id):
        raise ProtocolError("certificateId is not 64 lowercase hex characters")
    return ReceivedClick(
        payload_format=payload_format,
        device_id=device_id,
        click_type=click_type,
        battery_mv=int(voltage["mv"]),
        seq=seq,
        reported_at=parse_timestamp(_field(body, "reportedTime", str)),
        remaining_life=life,
        certificate_id=certificate_id,
        test_mode=_field(body, "testMode", bool),
    )


_IOTBUTTON_FIELDS: Final = ("serialNumber", "batteryVoltage", "clickType")
_ONECLICK_FIELDS: Final = (
    "deviceId",
    "type",
    "seq",
    "clickType",
    "reportedTime",
    "remainingLife",
    "batteryVoltage",
    "certificateId",
    "testMode",
)


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = body[name]
    # bool is an int in Python, but never a valid seq or remainingLife on the wire.
    if isinstance(value, bool) and kind is not bool:
        raise ProtocolError(f"{name} must not be a boolean")
    if not isinstance(value, kind):
        raise ProtocolError(f"{name} has the wrong type ({type(value).__name__})")
    return value
