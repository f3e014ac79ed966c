"""The Devices API client of the scenario runner: any backend, every answer returned.

A request goes out as botocore 1.35.90's rest-json serializer writes it (the tests
compare the two on every operation), signed with SigV4. Unlike an SDK, the client
does not check values against the model and raises for no status: testing a backend
includes sending what it must refuse and reading how it refuses. Only getting no
HTTP response at all raises (``ApiUnreachable``).

``DevicesClient.request`` sends what no operation would: a method, a path (with its
query string, as written), headers and a body given by hand, signed, unsigned or
signed wrongly on purpose (``Signing``), for conformance checks of how a backend
refuses. Both build their ``ApiReply`` in one place (``_api_reply``).

Parameters go by wire name, as in the API reference (``deviceId``, ``tagKeys``);
for the ARN label both ``resource-arn`` (its wire name) and ``resourceArn`` work.
Conveniences, none of which changes what a valid botocore call would send:

* ``None`` leaves a parameter out, as botocore does;
* a ``datetime`` in the path or query string is written as botocore writes
  timestamps (UTC, ISO 8601, ``.%fZ`` with microseconds); any other value, an ISO
  string included, is sent as given (``True`` as ``true``);
* a mapping or list given for a string body member (``deviceMethodParameters``)
  is JSON-encoded into that string.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal
from urllib.parse import SplitResult, quote, urlsplit

from simulator import __version__
from simulator.api.http_client import HttpClientError, HttpReply, display_url, send
from simulator.api.model import Member, OperationSpec, ServiceModel, load_model
from simulator.api.sigv4 import Credentials, Request
from simulator.api.sigv4 import sign as sign_request

_LABEL: Final = re.compile(r"\{([^{}]+)\}")
_USER_AGENT: Final = f"clicksim/{__version__}"
_ISO8601: Final = "%Y-%m-%dT%H:%M:%SZ"
_ISO8601_MICRO: Final = "%Y-%m-%dT%H:%M:%S.%fZ"

REQUEST: Final = "request"
"""The operation of an ``ApiReply`` to a request written by hand (``DevicesClient.request``)."""
SKEW_S: Final = 20 * 60.0
"""How far in the past a ``skewed`` request is signed: beyond SigV4's 15 minutes."""

Signing = Literal["sigv4", "none", "bad-signature", "skewed"]
"""How ``DevicesClient.request`` signs: SigV4 as the client's caller; not at all (no
``Authorization``); SigV4 with the signature then altered; SigV4 at a time ``SKEW_S``
in the past."""
SIGNINGS: Final[tuple[Signing, ...]] = ("sigv4", "none", "bad-signature", "skewed")


@dataclass(frozen=True)
class SentRequest:
    """What went out, for reports: no headers, so no ``Authorization``."""

    operation: str
    method: str
    url: str
    body: str


@dataclass(frozen=True)
class ApiReply:
    operation: str
    status: int
    body: Any
    """The parsed JSON; None when empty, the text itself when not JSON."""
    error_code: str | None
    """For a status outside 2xx: ``X-Amzn-ErrorType``, else the body's ``code``
    (``Code``, ``__type``), without botocore's ``:...`` and ``ns#`` parts; else None."""
    request_id: str | None
    request: SentRequest
    elapsed_s: float
    headers: Mapping[str, str] = field(default_factory=dict)
    """The reply's headers, names lower-cased; of a repeated one, the last value."""


class ApiUnreachable(Exception):
    """No HTTP response: refused, unresolvable, TLS failure, timeout, or not HTTP."""

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(f"cannot reach {url}: {cause}")
        self.url = url
        self.cause = cause


def known_params(operation: str, model: ServiceModel | None = None) -> list[str]:
    """The parameter names ``DevicesClient.call`` takes for ``operation``, in model order."""
    return list(_names(_spec(model or load_model(), operation)))


class DevicesClient:
    """Calls one Devices API endpoint as one caller; one connection per call."""

    def __init__(
        self,
        endpoint: str,
        credentials: Credentials,
        *,
        region: str = "us-east-1",
        model: ServiceModel | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` gives the signing time (a scenario may run on a moved clock)."""
        parts = parse_endpoint(endpoint)
        self.endpoint = endpoint
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._host = parts.netloc
        self._prefix = parts.path
        self._credentials = credentials
        self._region = region
        self._model = model or load_model()
        self._service = self._model.metadata.get(
            "signingName", self._model.metadata["endpointPrefix"]
        )
        self._timeout = timeout
        self._clock = clock

    async def call(self, operation: str, params: Mapping[str, object]) -> ApiReply:
        """Send one operation and return whatever came back.

        Raises ``ValueError`` for an unknown operation or parameter, or a missing
        path parameter (no request can be formed), and ``ApiUnreachable``.
        """
        spec = _spec(self._model, operation)
        path, query, body = _serialize(spec, params, self._model)
        headers = [("Host", self._host), ("User-Agent", _USER_AGENT)]
        if body:
            headers.append(("Content-Type", "application/json"))
        return await self._exchange(spec.name, spec.method, path, query, headers, body, "sigv4")

    async def request(
        self,
        method: str,
        target: str,
        *,
        body: bytes = b"",
        headers: Mapping[str, str | None] | None = None,
        sign: Signing = "sigv4",
    ) -> ApiReply:
        """Send a request written by hand (``target``: a path, maybe with ``?query``, sent
        as written) and return whatever came back, as an ``ApiReply`` of operation
        ``"request"``.

        ``headers`` are added to ``Host``, ``User-Agent`` and (with a body)
        ``Content-Type: application/json``, replacing those of the same name (any case);
        ``None`` leaves one out. ``sign`` says how it is signed (see ``Signing``).
        Raises ``ValueError`` for a target that is not a path, and ``ApiUnreachable``.
        """
        if sign not in SIGNINGS:
            raise ValueError(f"sign {sign!r}: expected one of {', '.join(SIGNINGS)}")
        if not target.startswith("/"):
            raise ValueError(f"{target!r}: a request's target is a path starting with /")
        path, _, query = target.partition("?")
        defaults = [("Host", self._host), ("User-Agent", _USER_AGENT)]
        if body:
            defaults.append(("Content-Type", "application/json"))
        given = headers or {}
        replaced = {name.lower() for name in given}
        sent = [(name, value) for name, value in defaults if name.lower() not in replaced]
        sent += [(name, value) for name, value in given.items() if value is not None]
        return await self._exchange(REQUEST, method, path, query, sent, body, sign)

    async def _exchange(
        self,
        operation: str,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        sign: Signing,
    ) -> ApiReply:
        """Sign (as ``sign`` says), send, and read the reply of one request."""
        path = _join(self._prefix, path)
        if sign != "none":
            now = self._clock() - (SKEW_S if sign == "skewed" else 0.0)
            added = sign_request(
                Request(method=method, path=path, query=query, headers=headers, body=body),
                self._credentials,
                region=self._region,
                service=self._service,
                now=datetime.fromtimestamp(now, UTC),
            )
            if sign == "bad-signature":
                added = [(name, _tamper(value)) for name, value in added]
            headers = headers + added
        url = self._origin + path + (f"?{query}" if query else "")
        sent = SentRequest(operation=operation, method=method, url=url, body=_text_of(body))
        started = time.perf_counter()
        try:
            reply = await send(
                url, method=method, headers=headers, body=body, timeout=self._timeout
            )
        except HttpClientError as exc:
            raise ApiUnreachable(exc.url, exc.cause) from None
        return _api_reply(operation, reply, sent, elapsed_s=time.perf_counter() - started)


def _api_reply(
    operation: str, reply: HttpReply, sent: SentRequest, *, elapsed_s: float
) -> ApiReply:
    """An ``ApiReply`` from what came back over HTTP: the body parsed, the error code found."""
    parsed = _parse(reply.body)
    return ApiReply(
        operation=operation,
        status=reply.status,
        body=parsed,
        error_code=_error_code(reply, parsed),
        request_id=reply.header("x-amzn-requestid") or reply.header("x-amz-request-id"),
        request=sent,
        elapsed_s=elapsed_s,
        headers={name.lower(): value for name, value in reply.headers},
    )


def _tamper(value: str) -> str:
    """An ``Authorization`` value whose signature is wrong (its last digit changed)."""
    head, marker, signature = value.rpartition("Signature=")
    if not marker or not signature:
        return value
    last = "0" if signature[-1] != "0" else "1"
    return f"{head}{marker}{signature[:-1]}{last}"


def _text_of(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def parse_endpoint(endpoint: str) -> SplitResult:
    """An API endpoint's parts; ``ValueError`` naming it when it is not plain http(s)."""
    parts = urlsplit(endpoint)
    if not _plain_http(parts):
        raise ValueError(
            f"endpoint {display_url(endpoint)!r}: expected http(s)://host[:port][/path], "
            "without credentials, query or fragment"
        )
    return parts


def _plain_http(parts: SplitResult) -> bool:
    try:
        _ = parts.port  # raises ValueError when out of range
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and "@" not in parts.netloc
        and not parts.query
        and not parts.fragment
    )


def _spec(model: ServiceModel, operation: str) -> OperationSpec:
    spec = model.operations.get(operation)
    if spec is None:
        raise ValueError(
            f"unknown operation {operation!r}; known: {', '.join(sorted(model.operations))}"
        )
    return spec


def _names(spec: OperationSpec) -> dict[str, Member]:
    """Each member by its wire name and, where that differs, its lowerCamel name."""
    names: dict[str, Member] = {}
    for member in spec.inputs:
        names[member.location_name] = member
        names.setdefault(member.name[:1].lower() + member.name[1:], member)
    return names


def _serialize(
    spec: OperationSpec, params: Mapping[str, object], model: ServiceModel
) -> tuple[str, str, bytes]:
    """The path, the query string and the body, as botocore's RestJSONSerializer writes them."""
    names = _names(spec)
    given: dict[str, str] = {}  # member name -> the parameter name used
    labels: dict[str, str] = {}
    query: list[str] = []
    document: dict[str, object] = {}
    for name, value in params.items():
        member = names.get(name)
        if member is None:
            raise ValueError(
                f"{spec.name}: unknown parameter {name!r}; known: {', '.join(names) or 'none'}"
            )
        if member.name in given:
            raise ValueError(f"{spec.name}: {given[member.name]!r} and {name!r} are one parameter")
        given[member.name] = name
        if value is None:
            continue
        wire = member.location_name
        if member.location == "uri":
            labels[wire] = _text(value)
        elif member.location == "querystring":
            items = value if isinstance(value, list | tuple) else [value]
            query += (f"{_encode(wire)}={_encode(_text(item))}" for item in items)
        else:
            document[wire] = _body_value(f"{spec.name}: {name}", model.shapes[member.shape], value)

    def label(match: re.Match[str]) -> str:
        wire = match.group(1)
        if wire not in labels:
            raise ValueError(f"{spec.name}: {wire!r} is required (it is part of the path)")
        return _encode(labels[wire])

    path = _LABEL.sub(label, spec.uri)
    if document:
        body = json.dumps(document).encode()
    elif any(member.location == "body" for member in spec.inputs):
        body = b"{}"
    else:
        body = b""
    return path, "&".join(query), body


def _text(value: object) -> str:
    if isinstance(value, datetime):
        stamp = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return stamp.strftime(_ISO8601_MICRO if stamp.microsecond else _ISO8601)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _encode(text: str) -> str:
    return quote(text, safe="-._~")


def _body_value(where: str, shape: Mapping[str, Any], value: object) -> object:
    if shape["type"] == "string" and isinstance(value, Mapping | list):
        value = json.dumps(value)
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: cannot be sent as JSON ({exc})") from None
    return value


def _join(prefix: str, path: str) -> str:
    """The endpoint's path followed by the operation's, as botocore's ``_urljoin``."""
    return prefix[:-1] + path if prefix.endswith("/") else prefix + path


def _parse(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return raw.decode("utf-8", errors="replace")


def _error_code(reply: HttpReply, body: object) -> str | None:
    """For a status outside 2xx: ``X-Amzn-ErrorType``, else the body's ``code`` (``Code``,
    ``__type``), without botocore's ``:...`` and ``ns#`` parts; else None."""
    if 200 <= reply.status < 300:
        return None
    code = reply.header("x-amzn-errortype")
    if code is None and isinstance(body, dict):
        found = next((body[key] for key in ("code", "Code", "__type") if key in body), None)
        code = found if isinstance(found, str) else None
    code = (code or "").split(":", 1)[0].rsplit("#", 1)[-1].strip()
    return code or None
