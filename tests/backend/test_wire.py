"""The backend's wire, byte for byte: raw HTTP requests, signed by hand with SigV4.

No SDK here: each request is built, signed with ``simulator.api.sigv4.sign`` (or left
unsigned, skewed, malformed on purpose) and sent with ``simulator.api.http_client``,
so that what is checked is what goes over the socket: status, headers, bodies.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

import pytest

from simulator.api import sigv4
from simulator.api.http_client import HttpReply, send
from simulator.api.model import load_model
from simulator.backend.accounts import Account
from simulator.backend.server import BackendConfig, ReferenceBackend
from simulator.resources import load_profile
from simulator.runtime.fleet import Fleet
from simulator.workspace import CaFolder, create_fleet
from tests.backend.conftest import ALICE, BOB, CLAIM_CODE, BackendThread

ADMIN_TOKEN: Final = "test-admin-token"  # the backend_config fixture's
DEVICE: Final = "G030PM0000000001"
"""A device id for routing only; tests that need a device of the inventory take the fleet's."""
ARN: Final = f"arn:aws:iot1click:us-east-1:{ALICE.account_id}:devices/{DEVICE}"

PATHS: Final[dict[str, set[str]]] = {
    "/claims/C-ABCDEFGHIJKL": {"PUT"},
    "/devices": {"GET"},
    f"/devices/{DEVICE}": {"GET"},
    f"/devices/{DEVICE}/events": {"GET"},
    f"/devices/{DEVICE}/finalize-claim": {"PUT"},
    f"/devices/{DEVICE}/initiate-claim": {"PUT"},
    f"/devices/{DEVICE}/methods": {"GET", "POST"},
    f"/devices/{DEVICE}/state": {"PUT"},
    f"/devices/{DEVICE}/unclaim": {"PUT"},
    f"/tags/{quote(ARN, safe='')}": {"DELETE", "GET", "POST"},
}
"""One concrete path per path template of the API model, with the methods it takes."""


def call(
    backend: ReferenceBackend,
    method: str,
    path: str,
    *,
    query: str = "",
    body: bytes = b"",
    account: Account | None = ALICE,
    now: datetime | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> HttpReply:
    """One raw request, signed as ``account`` (``None``: unsigned) at ``now``.

    Every answer must carry a request id and the CORS headers, whatever it is.
    """
    host = urlsplit(backend.api_url).netloc
    sent = [("Host", host), *headers]
    if body:
        sent.append(("Content-Type", "application/json"))
    if account is not None:
        request = sigv4.Request(method=method, path=path, query=query, headers=sent, body=body)
        sent += sigv4.sign(
            request,
            account.credentials,
            region="us-east-1",
            service="iot1click",
            now=now or datetime.now(UTC),
        )
    url = f"{backend.api_url}{path}" + (f"?{query}" if query else "")
    reply = asyncio.run(send(url, method=method, headers=sent, body=body))
    assert reply.header("x-amzn-requestid"), f"{method} {path}: no x-amzn-RequestId"
    assert reply.header("access-control-allow-origin") == "*"
    return reply


def admin(
    backend: ReferenceBackend, method: str, endpoint: str, *, token: str | None, body: bytes = b""
) -> HttpReply:
    headers = [] if token is None else [("Authorization", f"Bearer {token}")]
    return call(backend, method, f"/_clicksim/{endpoint}", body=body, account=None, headers=headers)


def body_of(reply: HttpReply) -> Any:
    assert reply.header("content-type") == "application/json"
    return json.loads(reply.body)


def assert_error(reply: HttpReply, status: int, code: str) -> str:
    """The AWS error shape; returns the message."""
    assert reply.status == status, reply.body
    assert reply.header("x-amzn-errortype") == code
    document = body_of(reply)
    assert set(document) == {"code", "message"}
    assert document["code"] == code
    assert isinstance(document["message"], str)
    assert document["message"]
    message: str = document["message"]
    return message


# ------------------------------------------------------------------- preflight, OpenAPI


def test_the_paths_here_are_every_path_of_the_model() -> None:
    templates = {spec.uri for spec in load_model().operations.values()}
    assert len(templates) == len(PATHS)
    model = load_model()
    for path, methods in PATHS.items():
        assert model.methods_for(path) == methods


def test_options_preflight_on_every_api_path(backend: ReferenceBackend) -> None:
    for path, methods in PATHS.items():
        reply = call(
            backend,
            "OPTIONS",
            path,
            account=None,
            headers=[
                ("Origin", "https://console.example"),
                ("Access-Control-Request-Method", sorted(methods)[0]),
                ("Access-Control-Request-Headers", "authorization,x-amz-date,content-type"),
            ],
        )
        assert reply.status == 200, path
        allowed = {method.strip() for method in (reply.header("allow") or "").split(",")}
        assert allowed == {*methods, "OPTIONS"}, path
        cors_methods = reply.header("access-control-allow-methods") or ""
        assert {method.strip() for method in cors_methods.split(",")} == allowed
        cors_headers = reply.header("access-control-allow-headers") or ""
        assert {"authorization", "x-amz-date", "content-type"} <= {
            name.strip() for name in cors_headers.split(",")
        }
        assert reply.body == b""
    assert_error(
        call(backend, "OPTIONS", "/no/such/path", account=None), 404, "UnknownOperationException"
    )


def test_openapi_document_is_served_with_the_13_operations(backend: ReferenceBackend) -> None:
    reply = call(backend, "GET", "/openapi.json", account=None)
    assert reply.status == 200
    document = body_of(reply)
    assert document["openapi"].startswith("3.")
    operations = [
        operation["operationId"]
        for methods in document["paths"].values()
        for operation in methods.values()
    ]
    assert len(operations) == 13
    assert sorted(operations) == sorted(load_model().operations)


# ------------------------------------------------------------------------- answers, errors


def first_device(fleet: Fleet) -> str:
    return sorted(record.device_id for record in fleet.manifest.devices)[0]


def test_success_answers_carry_a_fresh_request_id(
    backend: ReferenceBackend, backend_fleet: Fleet
) -> None:
    replies = [call(backend, "GET", "/devices") for _ in range(3)]
    assert [reply.status for reply in replies] == [200, 200, 200]
    assert body_of(replies[0]) == {"devices": []}
    ids = {reply.header("x-amzn-requestid") for reply in replies}
    assert len(ids) == 3
    claimed = call(backend, "PUT", f"/claims/{CLAIM_CODE}")
    assert (claimed.status, body_of(claimed)) == (200, {"claimCode": CLAIM_CODE, "total": 5})
    arn = f"arn:aws:iot1click:us-east-1:{ALICE.account_id}:devices/{first_device(backend_fleet)}"
    tagged = call(backend, "POST", f"/tags/{quote(arn, safe='')}", body=b'{"tags": {"k": "v"}}')
    assert (tagged.status, tagged.body) == (204, b"")
    listed = call(backend, "GET", f"/tags/{quote(arn, safe='')}")
    assert (listed.status, body_of(listed)) == (200, {"tags": {"k": "v"}})


def test_an_unsigned_request_is_403_missing_authentication_token(
    backend: ReferenceBackend,
) -> None:
    assert_error(
        call(backend, "GET", "/devices", account=None), 403, "MissingAuthenticationTokenException"
    )


@pytest.mark.parametrize(
    ("skew", "wording"),
    [(timedelta(minutes=-20), "Signature expired"), (timedelta(minutes=20), "Signature not yet")],
)
def test_a_clock_skew_over_15_minutes_is_403_invalid_signature(
    backend: ReferenceBackend, skew: timedelta, wording: str
) -> None:
    reply = call(backend, "GET", "/devices", now=datetime.now(UTC) + skew)
    message = assert_error(reply, 403, "InvalidSignatureException")
    assert message.startswith(wording)
    # 14 minutes off is inside the window
    assert call(backend, "GET", "/devices", now=datetime.now(UTC) + skew * 0.7).status == 200


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"[true]", b'"enabled"'])
def test_a_body_that_is_not_a_json_object_is_400(
    backend: ReferenceBackend, backend_fleet: Fleet, body: bytes
) -> None:
    device = first_device(backend_fleet)
    assert call(backend, "PUT", f"/claims/{CLAIM_CODE}").status == 200
    reply = call(backend, "PUT", f"/devices/{device}/state", body=body)
    assert_error(reply, 400, "InvalidRequestException")
    described = body_of(call(backend, "GET", f"/devices/{device}"))
    assert described["deviceDescription"]["enabled"] is False  # nothing changed


def test_an_unknown_path_is_404_and_a_wrong_method_405(backend: ReferenceBackend) -> None:
    for account in (None, ALICE):
        assert_error(
            call(backend, "GET", "/no-such-thing", account=account),
            404,
            "UnknownOperationException",
        )
        assert_error(
            call(backend, "GET", f"/devices/{DEVICE}/state/extra", account=account),
            404,
            "UnknownOperationException",
        )
        refused = call(backend, "DELETE", "/devices", account=account)
        assert_error(refused, 405, "MethodNotAllowedException")
        assert refused.header("allow") == "GET, OPTIONS"
        assert_error(
            call(backend, "POST", f"/devices/{DEVICE}/state", account=account),
            405,
            "MethodNotAllowedException",
        )


def test_a_modelled_error_is_the_aws_shape(backend: ReferenceBackend) -> None:
    message = assert_error(
        call(backend, "GET", "/devices/NO-SUCH-DEVICE"), 404, "ResourceNotFoundException"
    )
    assert "NO-SUCH-DEVICE" in message


# ---------------------------------------------------------------------------- admin


@pytest.fixture
def second_fleet(ca_folder: CaFolder, tmp_path: Path) -> Fleet:
    out = tmp_path / "second-fleet.json"
    create_fleet(
        load_profile("aws-iot-enterprise-button"),
        ca_folder=ca_folder,
        count=3,
        seed="wire-second-fleet",
        claim_code="C-WIRESECOND01",
        out=out,
    )
    return Fleet.open(out)


def test_the_admin_endpoint_adds_a_fleet_while_running(
    backend: ReferenceBackend, second_fleet: Fleet
) -> None:
    manifest = second_fleet.path.read_bytes()
    code = second_fleet.manifest.claim_code
    assert_error(call(backend, "PUT", f"/claims/{code}"), 403, "ForbiddenException")
    for token in (None, "wrong-token", f"{ADMIN_TOKEN}x", ADMIN_TOKEN[:-1]):
        denied = admin(backend, "POST", "fleets", token=token, body=manifest)
        assert_error(denied, 401, "UnauthorizedException")
        assert_error(admin(backend, "GET", "status", token=token), 401, "UnauthorizedException")
    assert body_of(admin(backend, "GET", "status", token=ADMIN_TOKEN))["devices"] == 5

    added = admin(backend, "POST", "fleets", token=ADMIN_TOKEN, body=manifest)
    assert (added.status, body_of(added)) == (200, {"added": 3, "devices": 8})
    again = admin(backend, "POST", "fleets", token=ADMIN_TOKEN, body=manifest)
    assert body_of(again) == {"added": 0, "devices": 8}
    bad = admin(backend, "POST", "fleets", token=ADMIN_TOKEN, body=b'{"format": "nope"}')
    assert_error(bad, 400, "InvalidRequestException")
    assert_error(
        admin(backend, "GET", "fleets", token=ADMIN_TOKEN), 405, "MethodNotAllowedException"
    )

    claimed = call(backend, "PUT", f"/claims/{code}", account=BOB)
    assert (claimed.status, body_of(claimed)) == (200, {"claimCode": code, "total": 3})
    listed = body_of(call(backend, "GET", "/devices", account=BOB))["devices"]
    assert sorted(d["deviceId"] for d in listed) == sorted(
        record.device_id for record in second_fleet.manifest.devices
    )
    status = admin(backend, "GET", "status", token=ADMIN_TOKEN)
    assert status.status == 200
    assert body_of(status) == {
        "devices": 8,
        "events": 0,
        "pendingCallbacks": 0,
        "ingest": {"stored": 0, "duplicates": 0, "rejected": {}},
    }


# --------------------------------------------------------------------------- secrets


def test_no_secret_ever_reaches_the_logs(
    backend_config: BackendConfig, caplog: pytest.LogCaptureFixture, second_fleet: Fleet
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = {
        "alice": ALICE.credentials.secret_key,
        "bob": BOB.credentials.secret_key,
        "admin token": ADMIN_TOKEN,
    }
    forger = Account(
        account_id=ALICE.account_id,
        credentials=sigv4.Credentials(
            access_key=ALICE.credentials.access_key, secret_key=BOB.credentials.secret_key
        ),
    )
    with BackendThread(backend_config) as backend:
        for account in (ALICE, BOB):
            call(backend, "GET", "/devices", account=account)
            call(backend, "GET", "/devices/NO-SUCH-DEVICE", account=account)
            an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
            call(backend, "GET", "/devices", account=account, now=an_hour_ago)
        assert call(backend, "PUT", f"/claims/{CLAIM_CODE}", account=ALICE).status == 200
        call(backend, "PUT", f"/claims/{CLAIM_CODE}", account=BOB)
        device = first_device(Fleet.open(backend_config.fleets[0]))
        call(backend, "PUT", f"/devices/{device}/state", account=ALICE, body=b"{oops")
        call(backend, "PUT", f"/devices/{device}/state", account=ALICE, body=b'{"enabled": true}')
        forged = call(backend, "GET", "/devices", account=forger)
        assert_error(forged, 403, "InvalidSignatureException")
        admin(backend, "POST", "fleets", token=ADMIN_TOKEN, body=second_fleet.path.read_bytes())
        admin(backend, "GET", "status", token="not-the-token")

    api_lines = [r for r in caplog.records if r.name == "clicksim.api"]
    assert len(api_lines) >= 12  # the requests were logged: there was something to leak
    assert any(ALICE.account_id in r.getMessage() for r in api_lines)
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for name, secret in secrets.items():
            assert secret not in text, f"the {name} is in a log line: {record.getMessage()}"
    for name, secret in secrets.items():
        assert secret not in caplog.text, f"the {name} is in the log"
