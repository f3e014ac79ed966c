"""Conformance checks made from the AWS service model: each says what the model says.

Every check is derived from the model's data, never from a list of operations: the
operations and their success status (``http.responseCode``), their input members
(where each travels, which are required, numeric bounds), their modelled errors with
each error's status (``error.httpStatusCode``), their output shapes, and the
paginators. What the model cannot say is stated once, apart from any operation:

* ``_VALUES``: a valid value for each input member, by wire name;
* the claim flow (initiate, click, finalize), by which a setup makes a device the
  caller's where a call needs one.

The rules, as check ids ``model/<Operation>/<rule>``:

``valid-call``
    Every operation, called with valid input (a device claimed first where it needs
    one), answers its modelled success status and, where it has an output shape, a
    body of that shape (``expect: {shape: true}``).
``unknown-device``
    An operation with a ``deviceId`` URI member that models ResourceNotFoundException
    answers that error, with its modelled status, for a well-formed device id that no
    inventory holds.
``missing-<member>``
    A required member that is not in the URI (body or query string), left out of an
    otherwise valid request, gets InvalidRequestException where the operation
    models it.
``<member>-below-min``, ``<member>-above-max``, ``<member>-within-bounds``
    A numeric member with a ``min`` / ``max`` (``maxResults``): one below and one
    above is InvalidRequestException (where modelled); the bounds themselves succeed.
``paginate``
    Every paginator: paging with the smallest page size (the limit's ``min``) yields
    each item once (``paginate: true`` fails on an item or a token seen twice); the
    items are the fleet's claimed devices (a listing across devices) or the clicks of
    one device (a listing of one device), made in the setup.

Checks share one backend: they assert on their own fleet's devices only. The text of
each is YAML (a mapping dumped by a ``yaml.SafeDumper``) with a ``conformance: {kind: model}``
header, readable in reports.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import yaml

from simulator.api.model import Member, OperationSpec, ServiceModel, paginators

KIND: Final = "model"
PROFILE: Final = "aws-iot-enterprise-button"
UNKNOWN_DEVICE: Final = "G030PM0000000000"
"""A device id in ``PROFILE``'s format (prefix ``G030PM``, 16 characters) that no fleet
holds: the tail of ten zeros is one id in 34**10, and it reads as made up."""
PAGED_ITEMS: Final = 3
"""How many items a pagination check makes, so that the smallest page size takes
several pages."""

NOT_FOUND: Final = "ResourceNotFoundException"
INVALID: Final = "InvalidRequestException"
DEVICE_ID: Final = "deviceId"
RESOURCE_ARN: Final = "resource-arn"

# The claim flow: how a device becomes the caller's, and what a setup uses.
INITIATE: Final = "InitiateDeviceClaim"
FINALIZE: Final = "FinalizeDeviceClaim"
DESCRIBE: Final = "DescribeDevice"
CLAIM_BY_CODE: Final = "ClaimDevicesByClaimCode"
_CLAIMING: Final = frozenset({INITIATE, FINALIZE, CLAIM_BY_CODE})
"""Operations that make a device the caller's: their setups must not claim it first."""

_DEVICE: Final = "${devices[0]}"
_ARN_VARIABLE: Final = "arn"
_WINDOW_END: Final = "window_end"

_VALUES: Final[Mapping[str, object]] = {
    DEVICE_ID: _DEVICE,
    RESOURCE_ARN: "${" + _ARN_VARIABLE + "}",
    "claimCode": "${claim_code}",
    "tags": {"conformance": "model"},
    "tagKeys": ["conformance"],
    "fromTimeStamp": "${start}",
    "toTimeStamp": "${now+1h}",
    "enabled": True,
    "deviceMethod": {"deviceType": "device", "methodName": "getDeviceHealthParameters"},
}
"""A valid value of each input member, by wire name (a device member: the fleet's
first device, claimed in the setup; the ARN: saved from DescribeDevice)."""

_ALWAYS_SENT: Final = frozenset({"enabled", "deviceMethod"})
"""Optional in the model, but a request without them does nothing (UpdateDeviceState)
or names no method (InvokeDeviceMethod): a valid request carries them."""

_NUMERIC: Final = frozenset({"integer", "long", "float", "double"})

_STEP_KINDS: Final = ("call", "click", "repeat", "for_each", "set", "check")
_FLOW_WIDTH: Final = 72
_TEXT_WIDTH: Final = 88
_Step = dict[str, object]
"""A step of the scenario, as its YAML mapping."""


@dataclass(frozen=True)
class GeneratedCheck:
    """One check: its id (``model/DescribeDevice/unknown-device``) and scenario YAML."""

    id: str
    text: str


def model_checks(
    model: ServiceModel, pages: Mapping[str, Mapping[str, str]] | None = None
) -> list[GeneratedCheck]:
    """The checks the model implies, grouped by operation (in the model's order).

    ``pages``: each paginated operation's ``input_token``, ``limit_key``,
    ``output_token`` and ``result_key`` as wire names; default the vendored
    paginators (``simulator.api.model.paginators``).
    """
    if pages is None:
        pages = paginators()
    checks: list[GeneratedCheck] = []
    for spec in model.operations.values():
        maker = _Maker(model, spec)
        checks.append(maker.valid_call())
        if maker.member(DEVICE_ID, "uri") is not None and NOT_FOUND in spec.errors:
            checks.append(maker.unknown_device())
        if INVALID in spec.errors:
            for member in spec.inputs:
                if member.required and member.location != "uri":
                    checks.append(maker.missing(member))
            for member in spec.inputs:
                checks.extend(maker.bounds(member))
        if spec.name in pages:
            checks.append(maker.paginate(pages[spec.name]))
    return checks


class _Maker:
    """The checks of one operation."""

    def __init__(self, model: ServiceModel, spec: OperationSpec) -> None:
        self.model = model
        self.spec = spec

    # --- the rules --------------------------------------------------------------------

    def valid_call(self) -> GeneratedCheck:
        spec = self.spec
        expect: dict[str, object] = {"status": spec.status}
        if spec.output_shape is not None:
            expect["shape"] = True
        shaped = " with its output shape" if spec.output_shape is not None else ""
        steps: list[_Step] = [
            *self.setup(listed=True),
            {
                "name": f"{spec.name} with valid input answers {spec.status}{shaped}",
                "call": spec.name,
                "with": self.params(),
                "expect": expect,
            },
        ]
        return self.check(
            "valid-call",
            f"{spec.name} with valid input answers its modelled status {spec.status}"
            + (
                f" and a body of its output shape {spec.output_shape}."
                if spec.output_shape is not None
                else " (the model has no output shape)."
            ),
            steps,
        )

    def unknown_device(self) -> GeneratedCheck:
        spec = self.spec
        status = self.error_status(NOT_FOUND)
        params = self.params()
        params[DEVICE_ID] = UNKNOWN_DEVICE
        return self.check(
            "unknown-device",
            f"{spec.name} on a well-formed device id that no inventory holds answers "
            f"{status} {NOT_FOUND}, as the model's error says.",
            [
                {
                    "name": f"{spec.name} on an unknown device answers {status} {NOT_FOUND}",
                    "call": spec.name,
                    "with": params,
                    "expect": {"status": status, "error": NOT_FOUND},
                }
            ],
        )

    def missing(self, member: Member) -> GeneratedCheck:
        spec = self.spec
        status = self.error_status(INVALID)
        where = "query string" if member.location == "querystring" else "body"
        params = self.params()
        del params[member.location_name]
        return self.check(
            f"missing-{member.location_name}",
            f"{spec.name} without {member.location_name} (required, in the {where}) answers "
            f"{status} {INVALID}; the rest of the request is valid.",
            [
                *self.setup(),
                {
                    "name": f"{spec.name} without {member.location_name} answers {status} "
                    f"{INVALID}",
                    "call": spec.name,
                    "with": params,
                    "expect": {"status": status, "error": INVALID},
                },
            ],
        )

    def bounds(self, member: Member) -> list[GeneratedCheck]:
        spec = self.spec
        shape = self.model.shapes[member.shape]
        low, high = shape.get("min"), shape.get("max")
        if shape["type"] not in _NUMERIC or (low is None and high is None):
            return []
        name = member.location_name
        status = self.error_status(INVALID)
        rejected = {"status": status, "error": INVALID}
        checks: list[GeneratedCheck] = []
        for rule, value, side in (
            ("below-min", None if low is None else low - 1, f"one below its minimum {low}"),
            ("above-max", None if high is None else high + 1, f"one above its maximum {high}"),
        ):
            if value is None:
                continue
            checks.append(
                self.check(
                    f"{name}-{rule}",
                    f"{spec.name} with {name} {value} ({side}) answers {status} {INVALID}.",
                    [
                        *self.setup(),
                        {
                            "name": f"{spec.name} with {name} {value} answers {status} {INVALID}",
                            "call": spec.name,
                            "with": {**self.params(), name: value},
                            "expect": rejected,
                        },
                    ],
                )
            )
        within = [value for value in (low, high) if value is not None]
        checks.append(
            self.check(
                f"{name}-within-bounds",
                f"{spec.name} takes {name} at its bounds "
                f"({' and '.join(map(str, within))}), answering {spec.status}.",
                [
                    *self.setup(),
                    *(self.call_with(name, value) for value in within),
                ],
            )
        )
        return checks

    def paginate(self, paginator: Mapping[str, str]) -> GeneratedCheck:
        spec = self.spec
        limit = paginator["limit_key"]
        result = paginator["result_key"]
        member = self.member(limit, "querystring") or self.member(limit, "body")
        if member is None:
            raise ValueError(f"{spec.name}: the paginator's limit {limit} is not an input")
        shape = self.model.shapes[member.shape]
        smallest = shape.get("min", 1)
        largest = shape.get("max")
        params = self.params()
        per_device = self.member(DEVICE_ID, "uri") is not None
        if per_device and "toTimeStamp" in params:
            # Every page must be the same query: the window may not move between pages.
            params["toTimeStamp"] = "${" + _WINDOW_END + "}"
        paged: _Step = {
            "name": f"page through {spec.name} with {limit} {smallest}",
            "call": spec.name,
            "with": {**params, limit: smallest},
            "paginate": True,
            "expect": {
                "status": spec.status,
                "body": {"pages": {"ge": PAGED_ITEMS}, result: {"length": {"ge": PAGED_ITEMS}}},
            },
            "save": {"paged": result},
        }
        if per_device:
            # A listing of one device: its items are the device's events, made by clicks;
            # nobody else's items can be among them, so the pages must add up to one page.
            one_page: _Step = {
                "name": f"{spec.name} in one page ({limit} {largest})",
                "call": spec.name,
                "with": params if largest is None else {**params, limit: largest},
                "expect": {
                    "status": spec.status,
                    "body": {paginator["output_token"]: {"exists": False}},
                },
                "save": {"whole": result},
            }
            steps: list[_Step] = [
                *self.setup(),
                {
                    "name": f"press the button {PAGED_ITEMS} more times",
                    "repeat": PAGED_ITEMS,
                    "steps": [{"name": "press the button", "click": _DEVICE}],
                },
                {"name": "fix the end of the time window", "set": {_WINDOW_END: "${now+1h}"}},
                one_page,
                paged,
                {
                    "name": f"the pages hold the {result} of one page, each once, in order",
                    "check": "${paged}",
                    "expect": {"equals": "${whole}"},
                },
            ]
            fleet = 1
            items = f"the {result} of one device ({PAGED_ITEMS} clicks and more)"
        elif self.items_have(result, DEVICE_ID):
            # A listing across devices: other checks' devices may be listed too.
            steps = [
                {
                    "name": "claim each device (initiate, press, finalize)",
                    "for_each": "device",
                    "steps": _claim("${device}"),
                },
                paged,
                {
                    "name": "each device is on a page",
                    "for_each": "device",
                    "steps": [
                        {
                            "name": "${device} is on a page",
                            "check": "${paged}",
                            "expect": {"contains": {DEVICE_ID: "${device}"}},
                        }
                    ],
                },
            ]
            fleet = PAGED_ITEMS
            items = f"the {result} of the account, {PAGED_ITEMS} of them claimed by the check"
        else:
            raise ValueError(f"{spec.name}: cannot make items of {result} to page through")
        return self.check(
            "paginate",
            f"Paging through {spec.name} with the smallest page size ({limit} {smallest}) "
            f"yields every item once; the items are {items}.",
            steps,
            fleet=fleet,
        )

    # --- parts ------------------------------------------------------------------------

    def check(
        self, rule: str, description: str, steps: list[_Step], *, fleet: int = 1
    ) -> GeneratedCheck:
        check_id = f"{KIND}/{self.spec.name}/{rule}"
        document = {
            "name": check_id,
            "description": _Wrapped(textwrap.fill(description, _TEXT_WIDTH)),
            "conformance": {"kind": KIND, "operations": [self.spec.name]},
            "fleet": {"profile": PROFILE, "count": fleet},
            "accounts": ["owner"],
            "steps": steps,
        }
        return GeneratedCheck(id=check_id, text=_dump(document))

    def setup(self, *, listed: bool = False) -> list[_Step]:
        """Steps that make a valid call of the operation succeed, on the first device;
        ``listed``: claim it for a listing of devices too, so that it lists one."""
        name = self.spec.name
        if name == FINALIZE:
            return _claim(_DEVICE)[:-1]
        if name in _CLAIMING:
            return []
        steps: list[_Step] = []
        uses_arn = self.member(RESOURCE_ARN, "uri") is not None
        if (
            self.member(DEVICE_ID, "uri") is not None
            or uses_arn
            or (listed and self.lists_devices())
        ):
            steps += _claim(_DEVICE)
        if uses_arn:
            steps.append(
                {
                    "name": "read the device's ARN",
                    "call": DESCRIBE,
                    "with": {DEVICE_ID: _DEVICE},
                    "expect": {"status": self.model.operations[DESCRIBE].status},
                    "save": {_ARN_VARIABLE: "deviceDescription.arn"},
                }
            )
        return steps

    def call_with(self, name: str, value: object) -> _Step:
        """A valid call but for ``name``, which is ``value``; it must succeed."""
        return {
            "name": f"{self.spec.name} with {name} {value} answers {self.spec.status}",
            "call": self.spec.name,
            "with": {**self.params(), name: value},
            "expect": {"status": self.spec.status},
        }

    def params(self) -> dict[str, object]:
        """A valid request: the required members and ``_ALWAYS_SENT``, by wire name."""
        params: dict[str, object] = {}
        for member in self.spec.inputs:
            name = member.location_name
            if member.required or name in _ALWAYS_SENT:
                if name not in _VALUES:
                    raise ValueError(f"{self.spec.name}: no valid value known for {name}")
                params[name] = _VALUES[name]
        return params

    def member(self, wire_name: str, location: str) -> Member | None:
        for member in self.spec.inputs:
            if member.location_name == wire_name and member.location == location:
                return member
        return None

    def error_status(self, error: str) -> int:
        status: int = self.model.shapes[error]["error"]["httpStatusCode"]
        return status

    def lists_devices(self) -> bool:
        """The output holds a list of items with a device id (ListDevices)."""
        if self.spec.output_shape is None:
            return False
        members = self.model.shapes[self.spec.output_shape]["members"]
        return any(
            self.items_have(member.get("locationName", name), DEVICE_ID)
            for name, member in members.items()
        )

    def items_have(self, result: str, wire_name: str) -> bool:
        """Whether the output's list ``result`` holds structures with ``wire_name``."""
        if self.spec.output_shape is None:
            return False
        for name, member in self.model.shapes[self.spec.output_shape]["members"].items():
            if member.get("locationName", name) != result:
                continue
            listed = self.model.shapes[member["shape"]]
            if listed["type"] != "list":
                return False
            item: Mapping[str, Any] = self.model.shapes[listed["member"]["shape"]]
            return item["type"] == "structure" and any(
                inner.get("locationName", inner_name) == wire_name
                for inner_name, inner in item["members"].items()
            )
        return False


class _Wrapped(str):
    """Text wrapped at ``_TEXT_WIDTH``, written as a literal block (``|-``)."""


class _Dumper(yaml.SafeDumper):
    """Block style, with a list indented under its key (``steps:`` then ``  - name:``)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_mapping(dumper: _Dumper, data: Mapping[str, object]) -> yaml.Node:
    """A mapping of plain values in flow style (``{status: 404, error: ...}``), unless it
    is a step, which reads better as a block; anything bigger as a block."""
    flat = all(not isinstance(value, dict | list) for value in data.values())
    flat = flat and sum(len(f"{key}: {value}, ") for key, value in data.items()) <= _FLOW_WIDTH
    is_step = any(kind in data for kind in _STEP_KINDS)
    return dumper.represent_mapping(
        "tag:yaml.org,2002:map", data.items(), flow_style=flat and not is_step and bool(data)
    )


def _represent_list(dumper: _Dumper, data: list[object]) -> yaml.Node:
    flat = all(not isinstance(value, dict | list) for value in data)
    flat = flat and sum(len(f"{value}, ") for value in data) <= _FLOW_WIDTH
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


def _represent_wrapped(dumper: _Dumper, data: _Wrapped) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="|")


_Dumper.add_representer(_Wrapped, _represent_wrapped)
_Dumper.add_representer(dict, _represent_mapping)
_Dumper.add_representer(list, _represent_list)


def _dump(document: Mapping[str, object]) -> str:
    """The scenario's YAML, with a blank line between top-level steps."""
    text = yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)
    lines = text.splitlines()
    steps = lines.index("steps:")
    spaced = lines[: steps + 1]
    for line in lines[steps + 1 :]:
        if line.startswith("  - ") and spaced[-1] != "steps:":
            spaced.append("")
        spaced.append(line)
    return "\n".join(spaced) + "\n"


def _claim(device: str) -> list[_Step]:
    """Make ``device`` the acting account's: initiate, press the button, finalize."""
    return [
        {
            "name": f"initiate the claim of {device}",
            "call": INITIATE,
            "with": {DEVICE_ID: device},
        },
        {"name": "press the button (proof of possession)", "click": device},
        {"name": "finalize the claim", "call": FINALIZE, "with": {DEVICE_ID: device}},
    ]
