"""The Devices API as the AWS SDKs model it: routes, and typed, validated input.

The model is the SDK's own (``data/``, vendored from botocore 1.35.90, the last
release that ships it), so the backend, the OpenAPI document and the conformance
checks accept exactly what the SDKs send. Nothing here is written per operation:
routes come from ``http.requestUri``, types and bounds from the shapes.

On the wire, as botocore's rest-json serializer writes it:

* a URI label is percent-encoded whole (``safe='-._~'``), so a resource ARN is one
  path segment (``arn%3Aaws%3Aiot1click%3A...%3Adevices%2FG030...``);
* a list in the query string is the parameter repeated (``tagKeys=a&tagKeys=b``);
  ``+`` in the query string is a plus, not a space (as SigV4 reads it);
* a timestamp in the query string is ISO 8601 (``2024-05-01T12:00:00Z``, with
  ``.%fZ`` when it has microseconds);
* the body is a JSON object of the body members, ``{}`` or nothing when none is set.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from typing import Any, Final, Literal
from urllib.parse import unquote

SERVICE_FILE: Final = "iot1click-devices-2018-05-14.service.json"
PAGINATORS_FILE: Final = "iot1click-devices-2018-05-14.paginators.json"

Location = Literal["uri", "querystring", "body"]

# The model bounds a claim code to 12..40 characters where the service answers with
# one (ClaimDevicesByClaimCodeResponse) but leaves the request's unbounded; a code
# out of those bounds can never be valid, so the request takes the same shape.
_REFINEMENTS: Final = {("ClaimDevicesByClaimCodeRequest", "ClaimCode"): "__stringMin12Max40"}

_TEXT_TYPES: Final = frozenset({"string", "integer", "long", "boolean", "timestamp"})
_TYPES: Final = _TEXT_TYPES | {"double", "float", "structure", "list", "map"}
_LABEL: Final = re.compile(r"\{([^{}+]+)\}")
_INTEGER: Final = re.compile(r"-?[0-9]{1,20}")
_ISO8601: Final = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"T(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?"
    r"(?:Z|(?P<sign>[+-])(?P<zone_hours>\d{2}):?(?P<zone_minutes>\d{2}))",
    re.ASCII,
)
_SHOWN: Final = 60


class InvalidInput(ValueError):
    """Input that the model rejects; the message is one line and names the member."""


@dataclass(frozen=True)
class Member:
    """One member of an operation's input: where it travels and under which name."""

    name: str
    shape: str
    location: Location
    location_name: str
    required: bool


@dataclass(frozen=True)
class OperationSpec:
    name: str
    method: str
    uri: str
    status: int
    inputs: tuple[Member, ...]
    output_shape: str | None
    errors: tuple[str, ...]


@dataclass(frozen=True)
class _Route:
    segments: tuple[str | None, ...]  # a literal segment, or None for a label
    labels: tuple[str, ...]
    spec: OperationSpec


class ServiceModel:
    """The operations and shapes of a rest-json service model, and its routing."""

    def __init__(self, service: Mapping[str, Any]) -> None:
        self.metadata: Mapping[str, str] = dict(service["metadata"])
        shapes: Mapping[str, Mapping[str, Any]] = service["shapes"]
        for name, shape in shapes.items():
            if shape["type"] not in _TYPES:
                raise ValueError(f"shape {name}: type {shape['type']!r} is not supported")
        self.shapes: Mapping[str, Mapping[str, Any]] = shapes
        self.operations: Mapping[str, OperationSpec] = {
            name: _operation(op, shapes) for name, op in service["operations"].items()
        }
        routes = [_route(spec) for spec in self.operations.values()]
        # A literal segment wins over a label where two templates could both match.
        routes.sort(key=lambda route: -sum(segment is not None for segment in route.segments))
        self._routes: tuple[_Route, ...] = tuple(routes)

    def match(self, method: str, path: str) -> tuple[OperationSpec, dict[str, str]] | None:
        """The operation for a raw (percent-encoded) path, with its labels decoded.

        A label must be one non-empty segment. It is decoded as UTF-8, with bytes that
        are not UTF-8 kept as surrogates for ``parse_input`` to reject with a message.
        """
        segments = _split(path)
        if segments is None:
            return None
        for route in self._routes:
            if route.spec.method == method:
                params = _bind(route, segments)
                if params is not None:
                    return route.spec, params
        return None

    def methods_for(self, path: str) -> frozenset[str]:
        """The methods some operation takes at this path (for ``Allow`` and 405)."""
        segments = _split(path)
        if segments is None:
            return frozenset()
        return frozenset(
            route.spec.method for route in self._routes if _bind(route, segments) is not None
        )


def _operation(op: Mapping[str, Any], shapes: Mapping[str, Mapping[str, Any]]) -> OperationSpec:
    inputs: list[Member] = []
    if "input" in op:
        shape = shapes[op["input"]["shape"]]
        required = set(shape.get("required", ()))
        for name, member in shape["members"].items():
            location = member.get("location", "body")
            if location not in ("uri", "querystring", "body") or (
                location != "body" and _text_type(shapes, member["shape"], location) is None
            ):
                raise ValueError(f"{op['name']}.{name}: cannot be read from {location}")
            inputs.append(
                Member(
                    name=name,
                    shape=member["shape"],
                    location=location,
                    location_name=member.get("locationName", name),
                    required=name in required,
                )
            )
    return OperationSpec(
        name=op["name"],
        method=op["http"]["method"],
        uri=op["http"]["requestUri"],
        status=op["http"].get("responseCode", 200),
        inputs=tuple(inputs),
        output_shape=op["output"]["shape"] if "output" in op else None,
        errors=tuple(error["shape"] for error in op.get("errors", ())),
    )


def _text_type(shapes: Mapping[str, Mapping[str, Any]], name: str, location: str) -> str | None:
    """The scalar type a URI label or query parameter holds (a query list: its items')."""
    shape = shapes[name]
    if shape["type"] == "list" and location == "querystring":
        shape = shapes[shape["member"]["shape"]]
    return shape["type"] if shape["type"] in _TEXT_TYPES else None


def _route(spec: OperationSpec) -> _Route:
    if "?" in spec.uri or "+}" in spec.uri:
        raise ValueError(f"{spec.name}: request URI {spec.uri!r} is not supported")
    segments: list[str | None] = []
    labels: list[str] = []
    for segment in spec.uri.split("/")[1:]:
        label = _LABEL.fullmatch(segment)
        segments.append(None if label else segment)
        if label:
            labels.append(label.group(1))
    return _Route(tuple(segments), tuple(labels), spec)


def _split(path: str) -> list[str] | None:
    if not path.startswith("/"):
        return None
    return [unquote(segment, errors="surrogateescape") for segment in path.split("/")[1:]]


def _bind(route: _Route, segments: Sequence[str]) -> dict[str, str] | None:
    if len(segments) != len(route.segments):
        return None
    values: list[str] = []
    for template, segment in zip(route.segments, segments, strict=True):
        if template is None:
            if not segment:
                return None
            values.append(segment)
        elif template != segment:
            return None
    return dict(zip(route.labels, values, strict=True))


@functools.cache
def load_model() -> ServiceModel:
    """The vendored Devices API model (read once), with ``_REFINEMENTS`` applied."""
    service = json.loads(_data(SERVICE_FILE))
    for (shape_name, member_name), target in _REFINEMENTS.items():
        service["shapes"][shape_name]["members"][member_name]["shape"] = target
    return ServiceModel(service)


@functools.cache
def paginators() -> Mapping[str, Mapping[str, str]]:
    """Each paginated operation's ``input_token``, ``limit_key``, ``output_token`` and
    ``result_key``, as wire names (``nextToken``, not the model's ``NextToken``)."""
    model = load_model()
    found: dict[str, Mapping[str, str]] = {}
    for name, config in json.loads(_data(PAGINATORS_FILE))["pagination"].items():
        spec = model.operations[name]
        wire = {member.name: member.location_name for member in spec.inputs}
        if spec.output_shape is not None:
            for member_name, member in model.shapes[spec.output_shape]["members"].items():
                wire[member_name] = member.get("locationName", member_name)
        found[name] = {key: wire[value] for key, value in config.items()}
    return found


def _data(name: str) -> str:
    return resources.files("simulator.api").joinpath("data", name).read_text(encoding="utf-8")


def parse_input(
    op: OperationSpec,
    path_params: Mapping[str, str],
    query: str,
    body: bytes,
    model: ServiceModel,
) -> dict[str, object]:
    """The operation's input, by wire name, typed per its shapes; absent members left out.

    Query parameters and body members that the operation does not model are ignored,
    as AWS does; so is the body of an operation without body members. Raises
    ``InvalidInput`` for anything the model rejects.
    """
    found: dict[str, object] = {}
    queried: dict[str, list[str]] = {}
    for pair in filter(None, query.split("&")):
        # "+" stays a plus, as SigV4 canonicalizes it (botocore sends spaces as %20).
        key, _, text = (unquote(part, errors="surrogateescape") for part in pair.partition("="))
        queried.setdefault(key, []).append(text)
    body_members = [member for member in op.inputs if member.location == "body"]
    document = _document(body) if body_members else {}
    for member in op.inputs:
        name = member.location_name
        shape = model.shapes[member.shape]
        value: object
        if member.location == "uri":
            if name not in path_params:
                raise InvalidInput(f"{name}: required but missing")
            value = _from_text(name, shape, path_params[name])
        elif member.location == "querystring":
            texts = queried.get(name)
            if texts is None:
                if member.required:
                    raise InvalidInput(f"{name}: required but missing")
                continue
            if shape["type"] == "list":
                item = model.shapes[shape["member"]["shape"]]
                value = [_from_text(f"{name}[{i}]", item, text) for i, text in enumerate(texts)]
            elif len(texts) > 1:
                raise InvalidInput(f"{name}: given {len(texts)} times, expected once")
            else:
                value = _from_text(name, shape, texts[0])
        else:
            if document.get(name) is None:
                if member.required:
                    raise InvalidInput(f"{name}: required but missing")
                continue
            value = _from_json(name, member.shape, document[name], model)
        found[name] = value
    return found


def _document(body: bytes) -> dict[str, object]:
    if not body:
        return {}
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"body: not valid JSON ({_first_line(exc)})") from None
    if not isinstance(document, dict):
        raise InvalidInput(f"body: must be a JSON object, got {_json_kind(document)}")
    return document


def _reject_constant(constant: str) -> object:
    raise ValueError(f"{constant} is not JSON")


def _from_text(name: str, shape: Mapping[str, Any], text: str) -> object:
    """A scalar from a URI label or a query parameter (the types ``_TEXT_TYPES`` allows)."""
    kind = shape["type"]
    if kind == "string":
        return _string(name, shape, text, repr(text))
    if kind in ("integer", "long"):
        number = int(text) if _INTEGER.fullmatch(text) else None
        return _integer(name, shape, number, _shown(repr(text)))
    if kind == "boolean":
        if text not in ("true", "false"):
            raise InvalidInput(f"{name}: must be true or false, got {_shown(repr(text))}")
        return text == "true"
    return _iso8601(name, text, _shown(repr(text)))


def _from_json(name: str, shape_name: str, value: object, model: ServiceModel) -> object:
    """A body member: checked against its shape, nested members too."""
    shape = model.shapes[shape_name]
    kind = shape["type"]
    shown = _shown(json.dumps(value))
    if kind == "structure":
        if not isinstance(value, dict):
            raise InvalidInput(f"{name}: must be a JSON object, got {shown}")
        required = set(shape.get("required", ()))
        found: dict[str, object] = {}
        for member_name, member in shape["members"].items():
            wire = member.get("locationName", member_name)
            if value.get(wire) is None:
                if member_name in required:
                    raise InvalidInput(f"{name}.{wire}: required but missing")
                continue
            found[wire] = _from_json(f"{name}.{wire}", member["shape"], value[wire], model)
        return found
    if kind == "map":
        if not isinstance(value, dict):
            raise InvalidInput(f"{name}: must be a JSON object, got {shown}")
        key_shape = model.shapes[shape["key"]["shape"]]
        return {
            _string(f"{name} key", key_shape, key, repr(key)): _from_json(
                f"{name}[{key!r}]", shape["value"]["shape"], item, model
            )
            for key, item in value.items()
        }
    if kind == "list":
        if not isinstance(value, list):
            raise InvalidInput(f"{name}: must be a JSON array, got {shown}")
        item_shape = shape["member"]["shape"]
        return [_from_json(f"{name}[{i}]", item_shape, item, model) for i, item in enumerate(value)]
    if kind == "string":
        if not isinstance(value, str):
            raise InvalidInput(f"{name}: must be a string, got {shown}")
        return _string(name, shape, value, shown)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidInput(f"{name}: must be true or false, got {shown}")
        return value
    if kind in ("integer", "long"):
        number = value if isinstance(value, int) and not isinstance(value, bool) else None
        return _integer(name, shape, number, shown)
    if kind == "timestamp":
        if shape.get("timestampFormat") == "iso8601":
            if not isinstance(value, str):
                raise InvalidInput(f"{name}: must be an ISO 8601 string, got {shown}")
            return _iso8601(name, value, shown)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise InvalidInput(f"{name}: must be seconds since the epoch, got {shown}")
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, int | float) or isinstance(value, bool):  # double, float
        raise InvalidInput(f"{name}: must be a number, got {shown}")
    return float(value)


def _string(name: str, shape: Mapping[str, Any], value: str, shown: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{name}: not valid UTF-8, got {_shown(shown)}") from None
    low: int | None = shape.get("min")
    high: int | None = shape.get("max")
    if (low is not None and len(value) < low) or (high is not None and len(value) > high):
        raise InvalidInput(
            f"{name}: must be {_bounds(low, high)} characters long, "
            f"got {len(value)}: {_shown(shown)}"
        )
    return value


def _integer(name: str, shape: Mapping[str, Any], number: int | None, shown: str) -> int:
    low: int | None = shape.get("min")
    high: int | None = shape.get("max")
    if number is None or (low is not None and number < low) or (high is not None and number > high):
        bounds = f" in {_bounds(low, high)}" if low is not None or high is not None else ""
        raise InvalidInput(f"{name}: must be an integer{bounds}, got {shown}")
    return number


def _iso8601(name: str, text: str, shown: str) -> datetime:
    """An ISO 8601 date-time with its zone (``Z`` or an offset), as an aware UTC datetime.

    A stamp without a zone is refused: whose local time it would be is anyone's guess.
    """
    parts = _ISO8601.fullmatch(text)
    try:
        if parts is None:
            raise ValueError(text)
        offset = timedelta(0)
        if parts["sign"] is not None:
            offset = timedelta(hours=int(parts["zone_hours"]), minutes=int(parts["zone_minutes"]))
            offset = -offset if parts["sign"] == "-" else offset
        year, month, day, hour, minute, second = (int(part) for part in parts.groups()[:6])
        micro = int((parts["fraction"] or "0").ljust(6, "0")[:6])
        stamp = datetime(year, month, day, hour, minute, second, micro, timezone(offset))
    except ValueError:
        raise InvalidInput(
            f"{name}: must be an ISO 8601 date-time with its time zone, such as "
            f"2024-05-01T12:00:00Z, got {shown}"
        ) from None
    try:
        return stamp.astimezone(UTC)
    except OverflowError:
        # A valid stamp such as 0001-01-01T00:00:00+01:00 lies outside what datetime holds in
        # UTC; as a bound of a time window it means "before (after) everything": clamp.
        return (datetime.min if stamp.year == 1 else datetime.max).replace(tzinfo=UTC)


def _bounds(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"{low}..{high}"
    return f"at least {low}" if low is not None else f"at most {high}"


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    return "null" if value is None else "a number"


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def validate_output(spec: OperationSpec, body: object, model: ServiceModel) -> list[str]:
    """What in a 2xx reply's parsed JSON body does not fit the operation's output shape.

    One line per problem, naming the member by its path of wire names
    (``devices[0].enabled: must be true or false, got "yes"``); empty when it fits.
    Checked: each member's type (a timestamp as its ``timestampFormat`` says, else as
    rest-json writes one in a body: seconds since the epoch), required members,
    enum values, the model's ``min``/``max`` bounds, and members the model does not
    have ("not in the model"). A member that is ``null`` counts as absent, as the
    SDKs read it. An empty body stands for ``{}``; so does an operation without an
    output shape, whose body must then hold nothing.
    """
    problems: list[str] = []
    document = {} if body is None else body
    if spec.output_shape is None:
        if document != {}:
            problems.append(f"body: {spec.name} has no output in the model, got {_show(document)}")
        return problems
    _check_output("", spec.output_shape, document, model, problems)
    return problems


def _check_output(
    path: str, shape_name: str, value: object, model: ServiceModel, problems: list[str]
) -> None:
    shape = model.shapes[shape_name]
    kind = shape["type"]
    where = path or "body"
    if value is None:
        problems.append(f"{where}: null, expected {_expected(shape)}")
        return
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{where}: must be a JSON object, got {_show(value)}")
            return
        known: dict[str, tuple[str, str]] = {}  # wire name -> (member name, shape)
        for member_name, member in shape["members"].items():
            if member.get("location", "body") == "body":
                known[member.get("locationName", member_name)] = (member_name, member["shape"])
        required = set(shape.get("required", ()))
        for wire, (member_name, member_shape) in known.items():
            if value.get(wire) is None:
                if member_name in required:
                    problems.append(f"{_join_path(path, wire)}: required but missing")
                continue
            _check_output(_join_path(path, wire), member_shape, value[wire], model, problems)
        problems.extend(
            f"{_join_path(path, str(key))}: not in the model" for key in value if key not in known
        )
        return
    if kind == "list":
        if not isinstance(value, list):
            problems.append(f"{where}: must be a JSON array, got {_show(value)}")
            return
        for index, item in enumerate(value):
            _check_output(f"{path}[{index}]", shape["member"]["shape"], item, model, problems)
        _check_bounds(where, shape, len(value), "items", problems)
        return
    if kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{where}: must be a JSON object, got {_show(value)}")
            return
        key_shape = model.shapes[shape["key"]["shape"]]
        for key, item in value.items():
            if "enum" in key_shape and key not in key_shape["enum"]:
                problems.append(
                    f"{where}: key {key!r} is not one of {', '.join(key_shape['enum'])}"
                )
            _check_bounds(f"{where}: key {key!r}", key_shape, len(key), "characters", problems)
            _check_output(
                f"{where}[{json.dumps(key)}]", shape["value"]["shape"], item, model, problems
            )
        _check_bounds(where, shape, len(value), "entries", problems)
        return
    problem = _scalar_problem(shape, value)
    if problem is not None:
        problems.append(f"{where}: {problem}")


def _scalar_problem(shape: Mapping[str, Any], value: object) -> str | None:
    kind = shape["type"]
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        if not isinstance(value, str):
            return f"must be a string, got {_show(value)}"
        if "enum" in shape and value not in shape["enum"]:
            return f"{_show(value)} is not one of {', '.join(shape['enum'])}"
        return _bounds_problem(shape, len(value), "characters")
    if kind == "boolean":
        return None if isinstance(value, bool) else f"must be true or false, got {_show(value)}"
    if kind in ("integer", "long"):
        if not number or not isinstance(value, int):
            return f"must be an integer, got {_show(value)}"
        return _bounds_problem(shape, value, "")
    if kind in ("double", "float"):
        if not number:
            return f"must be a number, got {_show(value)}"
        assert isinstance(value, int | float)
        return _bounds_problem(shape, value, "")
    # A timestamp: rest-json writes one in a body as epoch seconds unless the shape says.
    if shape.get("timestampFormat") == "iso8601":
        if not isinstance(value, str) or _ISO8601.fullmatch(value) is None:
            return f"must be an ISO 8601 date-time string, got {_show(value)}"
        return None
    if not number:
        return f"must be a timestamp in seconds since the epoch (a number), got {_show(value)}"
    return None


def _check_bounds(
    where: str, shape: Mapping[str, Any], size: int, unit: str, problems: list[str]
) -> None:
    problem = _bounds_problem(shape, size, unit)
    if problem is not None:
        problems.append(f"{where}: {problem}")


def _bounds_problem(shape: Mapping[str, Any], size: float, unit: str) -> str | None:
    low: int | None = shape.get("min")
    high: int | None = shape.get("max")
    if (low is not None and size < low) or (high is not None and size > high):
        what = f"{unit} long" if unit in ("characters",) else unit
        return f"must be {_bounds(low, high)}{' ' + what if what else ''}, got {size:g}"
    return None


def _expected(shape: Mapping[str, Any]) -> str:
    return {
        "structure": "a JSON object",
        "map": "a JSON object",
        "list": "a JSON array",
        "string": "a string",
        "boolean": "true or false",
        "integer": "an integer",
        "long": "an integer",
        "timestamp": "a timestamp",
    }.get(shape["type"], "a number")


def _join_path(path: str, key: str) -> str:
    if re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$-]*", key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def _show(value: object) -> str:
    return _shown(json.dumps(value, ensure_ascii=False))
