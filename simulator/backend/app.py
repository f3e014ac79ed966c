"""The HTTP face of the reference backend: wire in, service call, wire out.

moto's adapter layer. Per request: CORS preflight or the backend's own pages
(``/openapi.json``, the admin endpoint), else match the path against the API model,
verify the SigV4 signature, parse and type-check the input from the model, call the
service as the signing account, and answer in rest-json: 200 (or the operation's
204) with lowerCamel JSON, or ``{"code", "message"}`` with the ``X-Amzn-ErrorType``
header that the SDKs read to pick the exception class. Every answer carries an
``x-amzn-RequestId``. One log line per request, without the signature or secrets.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from simulator.api import sigv4
from simulator.api.model import InvalidInput, OperationSpec, load_model, parse_input
from simulator.api.openapi import openapi_document
from simulator.backend import errors
from simulator.backend.accounts import Accounts
from simulator.backend.http import HttpRequest, HttpResponse
from simulator.backend.service import DevicesService

ADMIN_PREFIX: Final = "/_clicksim/"
"""The backend's own endpoints live outside the API's paths."""

_CORS_HEADERS: Final = (
    ("access-control-allow-origin", "*"),
    ("access-control-expose-headers", "x-amzn-requestid, x-amzn-errortype"),
)
_PREFLIGHT_HEADERS: Final = (
    (
        "access-control-allow-headers",
        "authorization, content-type, x-amz-date, x-amz-security-token, x-amz-user-agent",
    ),
    ("access-control-max-age", "86400"),
)

log = logging.getLogger("clicksim.api")

_T = TypeVar("_T")

Params = Mapping[str, object]
_Call = Callable[[DevicesService, str, Params], dict[str, object] | None]


def _text(params: Params, name: str) -> str:
    return _typed(params.get(name), str)


def _maybe_text(params: Params, name: str) -> str | None:
    value = params.get(name)
    return None if value is None else _typed(value, str)


def _maybe_int(params: Params, name: str) -> int | None:
    value = params.get(name)
    return None if value is None else _typed(value, int)


def _maybe_bool(params: Params, name: str) -> bool | None:
    value = params.get(name)
    return None if value is None else _typed(value, bool)


def _maybe_map(params: Params, name: str) -> dict[str, Any] | None:
    value = params.get(name)
    return None if value is None else _typed(value, dict)


def _time(params: Params, name: str) -> datetime:
    return _typed(params.get(name), datetime)


def _texts(params: Params, name: str) -> list[str]:
    return [_typed(value, str) for value in _typed(params.get(name), list)]


def _typed(value: object, kind: type[_T]) -> _T:
    """What the model parser produced; anything else is a bug in the parser."""
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, got {value!r}")
    return value


_OPERATIONS: Final[dict[str, _Call]] = {
    "ClaimDevicesByClaimCode": lambda s, c, p: s.claim_devices_by_claim_code(
        c, _text(p, "claimCode")
    ),
    "DescribeDevice": lambda s, c, p: s.describe_device(c, _text(p, "deviceId")),
    "FinalizeDeviceClaim": lambda s, c, p: s.finalize_device_claim(
        c, _text(p, "deviceId"), _maybe_map(p, "tags")
    ),
    "GetDeviceMethods": lambda s, c, p: s.get_device_methods(c, _text(p, "deviceId")),
    "InitiateDeviceClaim": lambda s, c, p: s.initiate_device_claim(c, _text(p, "deviceId")),
    "InvokeDeviceMethod": lambda s, c, p: s.invoke_device_method(
        c,
        _text(p, "deviceId"),
        method=_maybe_map(p, "deviceMethod"),
        parameters=_maybe_text(p, "deviceMethodParameters"),
    ),
    "ListDeviceEvents": lambda s, c, p: s.list_device_events(
        c,
        _text(p, "deviceId"),
        from_time=_time(p, "fromTimeStamp"),
        to_time=_time(p, "toTimeStamp"),
        max_results=_maybe_int(p, "maxResults"),
        next_token=_maybe_text(p, "nextToken"),
    ),
    "ListDevices": lambda s, c, p: s.list_devices(
        c,
        device_type=_maybe_text(p, "deviceType"),
        max_results=_maybe_int(p, "maxResults"),
        next_token=_maybe_text(p, "nextToken"),
    ),
    "ListTagsForResource": lambda s, c, p: s.list_tags_for_resource(c, _text(p, "resource-arn")),
    "TagResource": lambda s, c, p: s.tag_resource(
        c, _text(p, "resource-arn"), _typed(p.get("tags"), dict)
    ),
    "UnclaimDevice": lambda s, c, p: s.unclaim_device(c, _text(p, "deviceId")),
    "UntagResource": lambda s, c, p: s.untag_resource(
        c, _text(p, "resource-arn"), _texts(p, "tagKeys")
    ),
    "UpdateDeviceState": lambda s, c, p: s.update_device_state(
        c, _text(p, "deviceId"), _maybe_bool(p, "enabled")
    ),
}
"""Each operation of the model, from its parsed wire members to the service call."""


AdminHandler = Callable[[HttpRequest], HttpResponse]


class ApiApp:
    """The request handler the HTTP server runs for the reference backend."""

    def __init__(
        self,
        service: DevicesService,
        accounts: Accounts,
        *,
        admin: Mapping[str, AdminHandler] | None = None,
    ) -> None:
        self.service = service
        self.accounts = accounts
        self.model = load_model()
        self._admin = dict(admin or {})
        self._openapi = json.dumps(openapi_document(self.model)).encode()
        missing = set(self.model.operations) ^ set(_OPERATIONS)
        assert not missing, f"operations without a handler or model: {missing}"

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        exchange = _Exchange()
        try:
            response = self._handle(request, exchange)
        except errors.ApiError as exc:
            response = _error(exc.status, exc.code, exc.message)
        except sigv4.SignatureError as exc:
            response = _error(403, exc.code, exc.message)
        except Exception:
            log.exception("request %s %s failed", request.method, request.path)
            response = _error(500, "InternalFailureException", "internal failure")
        log.info(
            "%s %s %s %d %.1fms %s %s",
            request.peer,
            request.method,
            request.path,
            response.status,
            (time.perf_counter() - started) * 1000,
            exchange.operation,
            exchange.caller,
        )
        return HttpResponse(
            status=response.status,
            headers=(*response.headers, ("x-amzn-requestid", request_id), *_CORS_HEADERS),
            body=response.body,
        )

    def _handle(self, request: HttpRequest, exchange: _Exchange) -> HttpResponse:
        if request.path.startswith(ADMIN_PREFIX):
            exchange.operation = "admin"
            handler = self._admin.get(request.path.removeprefix(ADMIN_PREFIX))
            if handler is None:
                raise _NotFound(f"no such endpoint {request.path}")
            return handler(request)
        if request.path == "/openapi.json" and request.method in ("GET", "HEAD"):
            return _json(200, self._openapi)
        if request.method == "OPTIONS":
            return self._preflight(request)
        matched = self.model.match(request.method, request.path)
        if matched is None:
            if methods := self.model.methods_for(request.path):
                refused = _error(
                    405,
                    "MethodNotAllowedException",
                    f"{request.method} is not allowed on {request.path}",
                )
                allow = ("allow", ", ".join(sorted({*methods, "OPTIONS"})))
                return dataclasses.replace(refused, headers=(*refused.headers, allow))
            raise _NotFound(f"no operation at {request.path}")
        operation, path_params = matched
        exchange.operation = operation.name
        exchange.caller = self._authenticate(request)
        try:
            params = parse_input(operation, path_params, request.query, request.body, self.model)
        except InvalidInput as exc:
            raise errors.InvalidRequest(str(exc)) from None
        result = _OPERATIONS[operation.name](self.service, exchange.caller, params)
        return _success(operation, result)

    def _authenticate(self, request: HttpRequest) -> str:
        caller = sigv4.verify(
            sigv4.Request(
                method=request.method,
                path=request.path,
                query=request.query,
                headers=request.headers,
                body=request.body,
            ),
            now=datetime.now(UTC),  # real time, whatever the service's clock says
            lookup=self.accounts.credentials,
        )
        account = self.accounts.by_access_key(caller.access_key)
        assert account is not None
        return account.account_id

    def _preflight(self, request: HttpRequest) -> HttpResponse:
        methods = self.model.methods_for(request.path)
        if not methods:
            raise _NotFound(f"no operation at {request.path}")
        allowed = ", ".join(sorted({*methods, "OPTIONS"}))
        return HttpResponse(
            status=200,
            headers=(
                ("allow", allowed),
                ("access-control-allow-methods", allowed),
                *_PREFLIGHT_HEADERS,
                ("content-length", "0"),
            ),
        )


@dataclass(slots=True)
class _Exchange:
    """What the request log says of one request, filled in as it is understood."""

    operation: str = "-"
    caller: str = "-"


class _NotFound(errors.ApiError):
    """A path the API does not have (not a missing device: that is the model's 404)."""

    code = "UnknownOperationException"
    status = 404


def _success(operation: OperationSpec, result: dict[str, object] | None) -> HttpResponse:
    if operation.status == 204:
        return HttpResponse(status=204)
    return _json(operation.status, json.dumps(result or {}).encode())


def _json(status: int, body: bytes) -> HttpResponse:
    return HttpResponse(status=status, headers=(("content-type", "application/json"),), body=body)


def _error(status: int, code: str, message: str) -> HttpResponse:
    body = json.dumps({"code": code, "message": message}).encode()
    return HttpResponse(
        status=status,
        headers=(("content-type", "application/json"), ("x-amzn-errortype", code)),
        body=body,
    )
