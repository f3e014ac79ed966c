"""The Devices API's behaviour: the 13 operations and the device events, over the store.

moto's layering: this module is the model. It takes typed arguments (the HTTP adapter
has already parsed and type-checked the request against the API model), applies the
rules of docs/semantics.md, and returns the response members or raises an
:class:`~simulator.backend.errors.ApiError`. It reads time only from the clock it is
given, so a scenario can move it, and each call is one store transaction, so two
callers racing for one device see one winner.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from simulator import protocol
from simulator.backend import errors
from simulator.backend.claims import DEFAULT_CLAIM_WINDOW_S, ClaimError, ClaimState, DeviceClaim
from simulator.backend.pages import InvalidToken, PageTokens
from simulator.backend.store import DeviceRow, InventoryDevice, Store

DEFAULT_REGION: Final = "us-east-1"
DEFAULT_PAGE_SIZE: Final = 100
MAX_TAGS: Final = 50

_ARN: Final = re.compile(
    r"arn:aws:iot1click:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):devices/(?P<device>[^/]+)"
)
_LAMBDA_ARN: Final = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,140}"
    r"(:[A-Za-z0-9_$-]{1,128})?"
)
_URL: Final = re.compile(r"https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:\d{1,5})?([/?#]\S*)?")

_ERRORS_BY_CODE: Final[dict[str, type[errors.ApiError]]] = {
    cls.code: cls
    for cls in (
        errors.InvalidRequest,
        errors.Forbidden,
        errors.ResourceNotFound,
        errors.ResourceConflict,
        errors.PreconditionFailed,
        errors.RangeNotSatisfiable,
    )
}

_DEVICE_METHODS: Final[dict[str, str]] = {
    "getDeviceHealthParameters": "device",
    "setDeviceHealthMonitorCallback": "device",
    "getDeviceHealthMonitorCallback": "device",
    "setOnClickCallback": "button",
    "getOnClickCallback": "button",
}
"""The device methods of facts.md and the deviceType each belongs to."""

DEFAULT_HEALTH_THRESHOLD: Final = 10.0
"""remainingLifeLowerThan when setDeviceHealthMonitorCallback names no condition."""

log = logging.getLogger("clicksim.backend")


@dataclass(frozen=True, slots=True)
class Clicked:
    """The outcome of one device event handed to :meth:`DevicesService.record_click`."""

    stored: bool
    reason: str = ""
    """Why it was not stored: ``duplicate``, ``unknown-device`` or ``wrong-certificate``."""
    detail: str = ""


class DevicesService:
    """The reference backend's rules. One instance per database; not thread-safe."""

    def __init__(
        self,
        store: Store,
        *,
        region: str = DEFAULT_REGION,
        clock: Callable[[], float] = time.time,
        claim_window_s: float = DEFAULT_CLAIM_WINDOW_S,
        on_delivery: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.region = region
        self.clock = clock
        self.claim_window_s = claim_window_s
        self._tokens = PageTokens(store.secret("page-token-key"))
        self._on_delivery = on_delivery
        """Called after a commit that queued callback deliveries (wakes the deliverer)."""

    # --- inventory ------------------------------------------------------------------

    def add_inventory(self, devices: Iterable[InventoryDevice]) -> int:
        return self.store.add_devices(devices)

    # --- claims ---------------------------------------------------------------------

    def claim_devices_by_claim_code(self, caller: str, claim_code: str) -> dict[str, object]:
        if not protocol.CLAIM_CODE.fullmatch(claim_code):
            raise errors.InvalidRequest("claimCode: must be 'C-' and 10 to 38 letters or digits")
        now = self.clock()
        with self.store.transaction():
            devices = self.store.devices_with_claim_code(claim_code)
            if not devices:
                raise errors.Forbidden(f"claim code {claim_code} is not valid")
            for device in devices:
                try:
                    claimed = device.claim.claim_by_code(caller, now)
                except ClaimError:
                    raise errors.Forbidden(
                        f"claim code {claim_code} was used by another account"
                    ) from None
                if claimed != device.claim:
                    self._release_settings(device)
                    self.store.save_claim(claimed)
        return {"claimCode": claim_code, "total": len(devices)}

    def initiate_device_claim(self, caller: str, device_id: str) -> dict[str, object]:
        now = self.clock()
        with self.store.transaction():
            device = self._inventory_device(device_id)
            claim = self._apply(device.claim.initiate, caller, now, window_s=self.claim_window_s)
            self.store.save_claim(claim)
        return {"state": "CLAIM_INITIATED"}

    def finalize_device_claim(
        self, caller: str, device_id: str, tags: Mapping[str, str] | None
    ) -> dict[str, object]:
        now = self.clock()
        with self.store.transaction():
            device = self._inventory_device(device_id)
            claim = self._apply(device.claim.finalize, caller, now)
            self._release_settings(device)
            self.store.save_claim(claim)
            if tags:
                self.store.save_tags(device_id, _checked_tags({}, tags))
        return {"state": "CLAIMED"}

    def unclaim_device(self, caller: str, device_id: str) -> dict[str, object]:
        now = self.clock()
        with self.store.transaction():
            device = self._owned_device(caller, device_id)
            self.store.save_claim(self._apply(device.claim.unclaim, caller, now))
            self._release_settings(device)
        return {"state": "UNCLAIMED"}

    def update_device_state(
        self, caller: str, device_id: str, enabled: bool | None
    ) -> dict[str, object]:
        if enabled is None:
            raise errors.InvalidRequest("enabled: a boolean is required")
        with self.store.transaction():
            device = self._owned_device(caller, device_id)
            self.store.save_claim(self._apply(device.claim.set_enabled, caller, enabled))
        return {}

    # --- reading devices ------------------------------------------------------------

    def describe_device(self, caller: str, device_id: str) -> dict[str, object]:
        device = self._owned_device(caller, device_id)
        return {"deviceDescription": self._description(device)}

    def list_devices(
        self,
        caller: str,
        *,
        device_type: str | None,
        max_results: int | None,
        next_token: str | None,
    ) -> dict[str, object]:
        limit = max_results or DEFAULT_PAGE_SIZE
        query = {"op": "ListDevices", "deviceType": device_type}
        after = self._position(next_token, caller, query)
        rows = self.store.owned_devices(
            caller,
            device_type=device_type,
            after=str(after[0]) if after else None,
            limit=limit + 1,
        )
        response: dict[str, object] = {
            "devices": [self._description(device) for device in rows[:limit]]
        }
        if len(rows) > limit:
            response["nextToken"] = self._tokens.issue(
                account=caller, query=query, position=[rows[limit - 1].device_id], now=self.clock()
            )
        return response

    def list_device_events(
        self,
        caller: str,
        device_id: str,
        *,
        from_time: datetime,
        to_time: datetime,
        max_results: int | None,
        next_token: str | None,
    ) -> dict[str, object]:
        if from_time > to_time:
            raise errors.InvalidRequest("fromTimeStamp: must not be later than toTimeStamp")
        self._owned_device(caller, device_id)
        limit = max_results or DEFAULT_PAGE_SIZE
        from_ms, to_ms = _ms(from_time.timestamp()), _ms(to_time.timestamp())
        query = {"op": "ListDeviceEvents", "device": device_id, "from": from_ms, "to": to_ms}
        after = self._position(next_token, caller, query)
        rows = self.store.events(
            device_id,
            caller,
            from_ms=from_ms,
            to_ms=to_ms,
            after=(int(str(after[0])), int(str(after[1]))) if after else None,
            limit=limit + 1,
        )
        response: dict[str, object] = {
            "events": [
                {
                    "device": {
                        "attributes": row.attributes,
                        "deviceId": row.device_id,
                        "type": row.device_type,
                    },
                    "stdEvent": row.std_event,
                }
                for row in rows[:limit]
            ]
        }
        if len(rows) > limit:
            last = rows[limit - 1]
            response["nextToken"] = self._tokens.issue(
                account=caller, query=query, position=[last.at_ms, last.id], now=self.clock()
            )
        return response

    # --- tags -----------------------------------------------------------------------

    def list_tags_for_resource(self, caller: str, arn: str) -> dict[str, object]:
        return {"tags": self._device_of_arn(caller, arn).tags}

    def tag_resource(self, caller: str, arn: str, tags: Mapping[str, str]) -> None:
        with self.store.transaction():
            device = self._device_of_arn(caller, arn)
            self.store.save_tags(device.device_id, _checked_tags(device.tags, tags))

    def untag_resource(self, caller: str, arn: str, tag_keys: Sequence[str]) -> None:
        with self.store.transaction():
            device = self._device_of_arn(caller, arn)
            kept = {key: value for key, value in device.tags.items() if key not in tag_keys}
            self.store.save_tags(device.device_id, kept)

    # --- device methods -------------------------------------------------------------

    def get_device_methods(self, caller: str, device_id: str) -> dict[str, object]:
        device = self._owned_device(caller, device_id)
        methods = [
            {"deviceType": kind, "methodName": name}
            for name, kind in _DEVICE_METHODS.items()
            if kind in ("device", device.device_type)
        ]
        return {"deviceMethods": methods}

    def invoke_device_method(
        self,
        caller: str,
        device_id: str,
        *,
        method: Mapping[str, object] | None,
        parameters: str | None,
    ) -> dict[str, object]:
        name, kind = _method_of(method)
        with self.store.transaction():
            device = self._owned_device(caller, device_id)
            if kind not in ("device", device.device_type):
                raise errors.InvalidRequest(
                    f"deviceMethod: {name} is not a method of a {device.device_type}"
                )
            if name.startswith("get"):
                if parameters is not None and parameters.strip() != "":
                    _parameters_object(parameters)
                elif parameters is not None:
                    raise errors.InvalidRequest(
                        "deviceMethodParameters: a get method takes none or a JSON object"
                    )
                answer = self._get_method(device, name)
            else:
                answer = self._set_method(device, name, _parameters_object(parameters or ""))
        return {"deviceMethodResponse": json.dumps(answer)}

    def _get_method(self, device: DeviceRow, name: str) -> dict[str, object]:
        if name == "getDeviceHealthParameters":
            return {"remainingLife": device.remaining_life}
        setting = device.settings.get(_SETTING_OF[name])
        return dict(setting) if isinstance(setting, dict) else {}

    def _set_method(
        self, device: DeviceRow, name: str, parameters: Mapping[str, object]
    ) -> dict[str, object]:
        setting: dict[str, object] = {"callback": _callback(parameters.get("callback"))}
        if name == "setDeviceHealthMonitorCallback":
            setting["condition"] = {"remainingLifeLowerThan": _threshold(parameters)}
        elif set(parameters) - {"callback"}:
            raise errors.InvalidRequest(
                f"deviceMethodParameters: unknown members {sorted(set(parameters) - {'callback'})}"
            )
        self.store.save_settings(device.device_id, {**device.settings, _SETTING_OF[name]: setting})
        return {}

    # --- device events --------------------------------------------------------------

    def record_clicks(
        self, clicks: Sequence[protocol.ReceivedClick], *, received_at: float
    ) -> list[Clicked]:
        """Store a batch of clicks in one commit: what makes 5,000 clicks/s possible.

        Returns after the commit, so the caller can then acknowledge every click.
        """
        queued = False
        with self.store.transaction():
            outcomes = []
            for click in clicks:
                outcome, delivered = self._record_click(click, received_at)
                outcomes.append(outcome)
                queued = queued or delivered
        if queued:
            self._on_delivery()
        return outcomes

    def _record_click(self, click: protocol.ReceivedClick, now: float) -> tuple[Clicked, bool]:
        device = self.store.device(click.device_id)
        if device is None:
            return Clicked(False, "unknown-device", f"unknown device {click.device_id}"), False
        if click.certificate_id is not None and click.certificate_id != device.certificate_id:
            return (
                Clicked(
                    False, "wrong-certificate", f"device {click.device_id}: wrong certificateId"
                ),
                False,
            )
        claim = device.claim.device_event(now)
        account = claim.owner or claim.initiated_by
        reported_at = click.reported_at if click.reported_at is not None else now
        life = click.remaining_life
        std_event = {
            "clickType": click.click_type.value,
            "reportedTime": protocol.format_timestamp(reported_at),
            "certificateId": device.certificate_id,
            "remainingLife": life if life is not None else device.remaining_life,
            "testMode": click.test_mode,
        }
        stored = self.store.add_event(
            device_id=device.device_id,
            account=account,
            seq=click.seq,
            at_ms=_ms(reported_at),
            received_at=now,
            std_event=json.dumps(std_event, separators=(",", ":")),
        )
        if not stored:
            return (
                Clicked(False, "duplicate", f"device {click.device_id}: duplicate seq {click.seq}"),
                False,
            )
        if claim != device.claim:
            self.store.save_claim(claim)
        if life is not None:
            self.store.save_remaining_life(device.device_id, life)
        if not (claim.state is ClaimState.CLAIMED and claim.enabled):
            return Clicked(True), False
        info = {
            "attributes": device.attributes,
            "type": device.device_type,
            "deviceId": device.device_id,
            "remainingLife": life if life is not None else device.remaining_life,
        }
        queued = self._deliver(
            device,
            "onClick",
            {
                "deviceEvent": {
                    "buttonClicked": {
                        "clickType": click.click_type.value,
                        "reportedTime": std_event["reportedTime"],
                    }
                },
                "deviceInfo": info,
            },
            now,
        )
        if life is not None and _crossed(device, life):
            condition = device.settings["healthMonitor"]["condition"]  # type: ignore[index]
            queued |= self._deliver(
                device,
                "healthMonitor",
                {
                    "deviceEvent": {"deviceHealthMonitor": {"condition": condition}},
                    "deviceInfo": info,
                },
                now,
            )
        return Clicked(True), queued

    def _deliver(
        self, device: DeviceRow, setting: str, event: Mapping[str, object], now: float
    ) -> bool:
        """Queue ``event`` for the owner's callback URL; an AWS Lambda ARN is only kept."""
        configured = device.settings.get(setting)
        callback = configured.get("callback") if isinstance(configured, dict) else None
        url = callback.get("url") if isinstance(callback, dict) else None
        if not isinstance(url, str):
            return False
        body = json.dumps(event, separators=(",", ":")).encode()
        self.store.enqueue_delivery(device_id=device.device_id, url=url, body=body, now=now)
        return True

    # --- helpers --------------------------------------------------------------------

    def _inventory_device(self, device_id: str) -> DeviceRow:
        device = self.store.device(device_id)
        if device is None:
            raise errors.ResourceNotFound(f"device {device_id} not found")
        return device

    def _owned_device(self, caller: str, device_id: str) -> DeviceRow:
        device = self.store.device(device_id)
        if device is None or not device.claim.visible_to(caller):
            raise errors.ResourceNotFound(f"device {device_id} not found")
        return device

    def _device_of_arn(self, caller: str, arn: str) -> DeviceRow:
        match = _ARN.fullmatch(arn)
        if match is None:
            raise errors.InvalidRequest(
                "resource-arn: must be arn:aws:iot1click:REGION:ACCOUNT:devices/DEVICE_ID"
            )
        if match["region"] != self.region or match["account"] != caller:
            raise errors.ResourceNotFound(f"resource {arn} not found")
        try:
            return self._owned_device(caller, match["device"])
        except errors.ResourceNotFound:
            raise errors.ResourceNotFound(f"resource {arn} not found") from None

    def _description(self, device: DeviceRow) -> dict[str, object]:
        owner = device.claim.owner or ""
        description: dict[str, object] = {
            "arn": f"arn:aws:iot1click:{self.region}:{owner}:devices/{device.device_id}",
            "attributes": device.attributes,
            "deviceId": device.device_id,
            "enabled": device.claim.enabled,
            "type": device.device_type,
            "tags": device.tags,
        }
        if device.remaining_life is not None:
            description["remainingLife"] = device.remaining_life
        return description

    def _position(
        self, token: str | None, caller: str, query: Mapping[str, object]
    ) -> list[object] | None:
        if token is None:
            return None
        try:
            return self._tokens.open(token, account=caller, query=query, now=self.clock())
        except InvalidToken as exc:
            raise errors.RangeNotSatisfiable(f"nextToken: {exc}") from None

    def _release_settings(self, device: DeviceRow) -> None:
        """A device that changes hands keeps no tags or callbacks of its last owner."""
        if device.tags:
            self.store.save_tags(device.device_id, {})
        if device.settings:
            self.store.save_settings(device.device_id, {})

    def _apply(
        self, operation: Callable[..., DeviceClaim], *args: object, **kwargs: object
    ) -> DeviceClaim:
        try:
            return operation(*args, **kwargs)
        except ClaimError as exc:
            log.info("refused: %s", exc)
            raise _ERRORS_BY_CODE[exc.code](_public_message(exc)) from None


_SETTING_OF: Final = {
    "setOnClickCallback": "onClick",
    "getOnClickCallback": "onClick",
    "setDeviceHealthMonitorCallback": "healthMonitor",
    "getDeviceHealthMonitorCallback": "healthMonitor",
}


def _public_message(error: ClaimError) -> str:
    """What the caller may read: the operation, the device and the reason, no other account."""
    return f"device {error.device_id}: {error.reason}"


def _ms(posix_seconds: float) -> int:
    return math.floor(posix_seconds * 1000)


def _checked_tags(current: Mapping[str, str], new: Mapping[str, str]) -> dict[str, str]:
    for key, value in new.items():
        if not 1 <= len(key) <= 128:
            raise errors.InvalidRequest(f"tags: key {key[:40]!r} must be 1 to 128 characters")
        if key.startswith("aws:"):
            raise errors.InvalidRequest(f"tags: key {key!r} must not start with 'aws:'")
        if len(value) > 256:
            raise errors.InvalidRequest(f"tags: value of {key!r} is longer than 256 characters")
    merged = {**current, **new}
    if len(merged) > MAX_TAGS:
        raise errors.InvalidRequest(f"tags: a device takes at most {MAX_TAGS} tags")
    return merged


def _method_of(method: Mapping[str, object] | None) -> tuple[str, str]:
    if method is None:
        raise errors.InvalidRequest("deviceMethod: required")
    name = method.get("methodName")
    kind = method.get("deviceType")
    if not isinstance(name, str) or name not in _DEVICE_METHODS:
        raise errors.InvalidRequest(
            f"deviceMethod.methodName: unknown method {name!r}; known: {sorted(_DEVICE_METHODS)}"
        )
    if kind != _DEVICE_METHODS[name]:
        raise errors.InvalidRequest(
            f"deviceMethod.deviceType: {name} is a method of deviceType "
            f"{_DEVICE_METHODS[name]!r}, not {kind!r}"
        )
    return name, _DEVICE_METHODS[name]


def _parameters_object(parameters: str) -> dict[str, object]:
    try:
        value = json.loads(parameters, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # deep nesting overflows the parser's stack: a 400
        raise errors.InvalidRequest("deviceMethodParameters: not valid JSON") from None
    if not isinstance(value, dict):
        raise errors.InvalidRequest("deviceMethodParameters: must be a JSON object")
    return value


def _no_constant(name: str) -> object:
    """NaN and Infinity are not JSON, whatever Python's parser allows."""
    raise ValueError(f"{name} is not JSON")


def _callback(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) != 1:
        raise errors.InvalidRequest(
            'deviceMethodParameters.callback: must be {"awsLambdaArn": ARN} or {"url": URL}'
        )
    ((kind, target),) = value.items()
    if kind == "awsLambdaArn" and isinstance(target, str) and _LAMBDA_ARN.fullmatch(target):
        return {kind: target}
    if kind == "url" and isinstance(target, str) and target.isascii() and _URL.fullmatch(target):
        return {kind: target}
    raise errors.InvalidRequest(
        f"deviceMethodParameters.callback.{kind}: not a valid Lambda function ARN or http(s) URL"
    )


def _threshold(parameters: Mapping[str, object]) -> float:
    unknown = set(parameters) - {"callback", "condition"}
    if unknown:
        raise errors.InvalidRequest(f"deviceMethodParameters: unknown members {sorted(unknown)}")
    condition = parameters.get("condition", {"remainingLifeLowerThan": DEFAULT_HEALTH_THRESHOLD})
    value = condition.get("remainingLifeLowerThan") if isinstance(condition, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 100:
        raise errors.InvalidRequest(
            "deviceMethodParameters.condition.remainingLifeLowerThan: a number in (0, 100]"
        )
    return float(value)


def _crossed(device: DeviceRow, life: float) -> bool:
    """The click took remaining life below the owner's threshold (it fires once per crossing)."""
    monitor = device.settings.get("healthMonitor")
    if not isinstance(monitor, dict):
        return False
    threshold = monitor["condition"]["remainingLifeLowerThan"]
    before = device.remaining_life
    return bool(life < threshold and (before is None or before >= threshold))
