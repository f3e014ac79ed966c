"""DevicesClient on the wire: the same bytes as botocore, and every answer returned.

A scripted server (tests/http_receiver.py) records what the client sends and answers
as told. Against the reference backend: tests/backend/test_client.py.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final
from urllib.parse import urlsplit

import botocore.auth
import botocore.credentials
import botocore.serialize
import botocore.session
import pytest
from botocore.awsrequest import AWSRequest, prepare_request_dict
from freezegun import freeze_time

from simulator.api.client import ApiReply, ApiUnreachable, DevicesClient, known_params
from simulator.api.model import OperationSpec, load_model
from simulator.api.sigv4 import Credentials, Request, SignatureError, verify
from tests.http_receiver import Answer, Received, Receiver
from tests.support import free_port

NOW: Final = datetime(2024, 3, 1, 12, 30, 45, tzinfo=UTC)
KEYS: Final = Credentials(access_key="AKIDEXAMPLE", secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEX")
TEMPORARY: Final = Credentials(
    access_key="ASIAEXAMPLE", secret_key="temporary-secret-000000", session_token="FQoG//+="
)
OK: Final = Answer(200)
ARN: Final = "arn:aws:iot1click:us-east-1:123456789012:devices/G030PM0000000001"
METHOD: Final = {"deviceType": "button", "methodName": "setOnClickCallback"}
CALLBACK: Final = {"callback": {"url": "https://example.com/hook?a=1", "note": "ü"}}

# (operation, params by wire name): every operation, with values that need encoding.
CASES: Final = [
    pytest.param("ClaimDevicesByClaimCode", {"claimCode": "C-ABC/DEF GHI+ü"}, id="claim-code"),
    pytest.param("DescribeDevice", {"deviceId": "G030PM0000000001"}, id="describe"),
    pytest.param("DescribeDevice", {"deviceId": "a b:c/d~e_f.g-h%20?#"}, id="describe-odd-id"),
    pytest.param(
        "FinalizeDeviceClaim",
        {"deviceId": "G030PM0000000001", "tags": {"room": "kitchen", "ü": 'say "hi"'}},
        id="finalize-tags",
    ),
    pytest.param("FinalizeDeviceClaim", {"deviceId": "G030PM0000000001"}, id="finalize-empty"),
    pytest.param("GetDeviceMethods", {"deviceId": "G030PM0000000001"}, id="get-methods"),
    pytest.param("InitiateDeviceClaim", {"deviceId": "G030PM0000000001"}, id="initiate"),
    pytest.param(
        "InvokeDeviceMethod",
        {"deviceMethodParameters": CALLBACK, "deviceId": "G1", "deviceMethod": METHOD},
        id="invoke-dict-parameters",
    ),
    pytest.param(
        "InvokeDeviceMethod",
        {"deviceId": "G1", "deviceMethod": METHOD, "deviceMethodParameters": ""},
        id="invoke-string-parameters",
    ),
    pytest.param(
        "ListDeviceEvents",
        {
            "deviceId": "G030PM0000000001",
            "fromTimeStamp": datetime(2024, 1, 2, 3, 4, 5, 123000, timezone(timedelta(hours=2))),
            "toTimeStamp": datetime(2024, 1, 3),
            "maxResults": 10,
            "nextToken": "a/b+c==",
        },
        id="list-events",
    ),
    pytest.param(
        "ListDeviceEvents",
        {"deviceId": "G1", "fromTimeStamp": "2024-01-02T03:04:05Z", "toTimeStamp": NOW},
        id="list-events-iso-string",
    ),
    pytest.param("ListDevices", {}, id="list-devices"),
    pytest.param(
        "ListDevices",
        {"deviceType": "button", "maxResults": 2, "nextToken": "x y&z"},
        id="list-devices-page",
    ),
    pytest.param("ListTagsForResource", {"resource-arn": ARN}, id="list-tags"),
    pytest.param("ListTagsForResource", {"resourceArn": ARN}, id="list-tags-camel"),
    pytest.param("TagResource", {"resourceArn": ARN, "tags": {"a": "1", "b": ""}}, id="tag"),
    pytest.param("UnclaimDevice", {"deviceId": "G030PM0000000001"}, id="unclaim"),
    pytest.param(
        "UntagResource", {"resource-arn": ARN, "tagKeys": ["a", "b c", "d+e", "ü"]}, id="untag"
    ),
    pytest.param("UpdateDeviceState", {"deviceId": "G1", "enabled": False}, id="disable"),
    pytest.param("UpdateDeviceState", {"deviceId": "G1", "enabled": True}, id="enable"),
    pytest.param("UpdateDeviceState", {"deviceId": "G1"}, id="state-empty"),
]


def _botocore_params(spec: OperationSpec, params: Mapping[str, object]) -> dict[str, object]:
    """The same call as botocore takes it: member names, a JSON string for the parameters."""
    model = load_model()
    by_wire = {m.location_name: m for m in spec.inputs} | {
        m.name[:1].lower() + m.name[1:]: m for m in spec.inputs
    }
    found: dict[str, object] = {}
    for name, value in params.items():
        member = by_wire[name]
        shape = model.shapes[member.shape]
        if shape["type"] == "structure" and isinstance(value, Mapping):
            wire = {m.get("locationName", n): n for n, m in shape["members"].items()}
            value = {wire[key]: item for key, item in value.items()}
        elif shape["type"] == "string" and isinstance(value, Mapping):
            value = json.dumps(value)
        found[member.name] = value
    return found


def _botocore_request(operation: str, params: Mapping[str, object], endpoint: str) -> AWSRequest:
    """botocore's request for the call, validated by botocore and signed at NOW."""
    service = botocore.session.get_session().get_service_model("iot1click-devices")
    op = service.operation_model(operation)
    serializer = botocore.serialize.create_serializer("rest-json", include_validation=True)
    request = serializer.serialize_to_request(_botocore_params(_spec(operation), params), op)
    prepare_request_dict(request, endpoint_url=endpoint)
    aws_request = AWSRequest(method=request["method"], url=request["url"], data=request["body"])
    for name, value in request["headers"].items():
        aws_request.headers[name] = value
    auth = botocore.auth.SigV4Auth(
        botocore.credentials.Credentials(KEYS.access_key, KEYS.secret_key), "iot1click", "us-east-1"
    )
    with freeze_time(NOW):
        auth.add_auth(aws_request)
    return aws_request


def _spec(operation: str) -> OperationSpec:
    return load_model().operations[operation]


def _client(url: str, credentials: Credentials = KEYS, **options: Any) -> DevicesClient:
    return DevicesClient(url, credentials, clock=NOW.timestamp, **options)


def _exchange(
    operation: str,
    params: Mapping[str, object],
    answer: Answer = OK,
    *,
    path: str = "",
    credentials: Credentials = KEYS,
) -> tuple[Received, ApiReply, str]:
    """Call once against a receiver answering ``answer``; the request, reply and endpoint."""

    async def respond(_request: Received) -> Answer:
        return answer

    async def main() -> tuple[Received, ApiReply, str]:
        async with Receiver(respond) as receiver:
            endpoint = receiver.url(path) if path else receiver.url().rstrip("/")
            reply = await _client(endpoint, credentials).call(operation, params)
        [request] = receiver.requests
        return request, reply, endpoint

    return asyncio.run(main())


def test_the_cases_cover_every_operation() -> None:
    covered = {case.values[0] for case in CASES}
    assert covered == set(load_model().operations)


@pytest.mark.parametrize("path", ["", "/stage", "/stage/"])
@pytest.mark.parametrize(("operation", "params"), CASES)
def test_requests_are_botocores_byte_for_byte(
    operation: str, params: dict[str, object], path: str
) -> None:
    received, reply, endpoint = _exchange(operation, params, path=path)
    expected = _botocore_request(operation, params, endpoint)

    url = urlsplit(expected.url)
    target = url.path + (f"?{url.query}" if url.query else "")
    assert (received.method, received.target) == (expected.method, target)
    assert received.body == (expected.body or b"")
    assert received.header("content-type") == expected.headers.get("Content-Type")
    assert received.header("authorization") == expected.headers["Authorization"]
    assert reply.request.url == expected.url
    assert reply.request.body == (expected.body or b"").decode()


def test_timestamp_strings_are_sent_as_given() -> None:
    received, _, _ = _exchange(
        "ListDeviceEvents", {"deviceId": "G1", "fromTimeStamp": "yesterday", "toTimeStamp": "1"}
    )
    assert received.target == "/devices/G1/events?fromTimeStamp=yesterday&toTimeStamp=1"


def test_values_the_model_refuses_are_sent_anyway() -> None:
    received, _, _ = _exchange("ListDevices", {"maxResults": 0, "nextToken": ""})
    assert received.target == "/devices?maxResults=0&nextToken="
    received, _, _ = _exchange("UpdateDeviceState", {"deviceId": "G1", "enabled": "yes"})
    assert received.body == b'{"enabled": "yes"}'


@pytest.mark.parametrize("credentials", [KEYS, TEMPORARY], ids=["keys", "session"])
def test_the_request_verifies_at_the_clocks_time(credentials: Credentials) -> None:
    received, reply, _ = _exchange(
        "TagResource", {"resourceArn": ARN, "tags": {"a": "1"}}, credentials=credentials
    )
    path, _, query = received.target.partition("?")
    wire = Request(
        method=received.method, path=path, query=query, headers=received.headers, body=received.body
    )
    lookup = {credentials.access_key: credentials}.get
    caller = verify(wire, now=NOW, lookup=lookup, region="us-east-1")
    assert caller.access_key == credentials.access_key
    assert received.header("x-amz-date") == "20240301T123045Z"
    assert received.header("x-amz-security-token") == credentials.session_token
    assert (received.header("user-agent") or "").startswith("clicksim/")
    assert "Authorization" not in repr(reply.request)
    assert credentials.secret_key not in repr(reply)


@pytest.mark.parametrize(
    ("answer", "body", "error_code"),
    [
        pytest.param(
            Answer(
                404,
                (
                    ("Content-Type", "application/json"),
                    ("X-Amzn-ErrorType", "ResourceNotFoundException:http://internal.amazon.com/"),
                ),
                b'{"code": "Other", "message": "no such device"}',
            ),
            {"code": "Other", "message": "no such device"},
            "ResourceNotFoundException",
            id="header-wins",
        ),
        pytest.param(
            Answer(400, body=b'{"code": "InvalidRequestException", "message": "m"}'),
            {"code": "InvalidRequestException", "message": "m"},
            "InvalidRequestException",
            id="body-code",
        ),
        pytest.param(
            Answer(400, body=b'{"Code": "ns#Bad:x"}'), {"Code": "ns#Bad:x"}, "Bad", id="body-Code"
        ),
        pytest.param(
            Answer(429, body=b'{"__type": "com.amazonaws#ThrottlingException"}'),
            {"__type": "com.amazonaws#ThrottlingException"},
            "ThrottlingException",
            id="body-type",
        ),
        pytest.param(
            Answer(502, body=b"<html>Bad Gateway</html>"),
            "<html>Bad Gateway</html>",
            None,
            id="html",
        ),
        pytest.param(Answer(500, body=b'{"code": 7}'), {"code": 7}, None, id="code-not-text"),
        pytest.param(Answer(503, body=b"\xff\xfe{"), "\ufffd\ufffd{", None, id="not-utf8"),
        pytest.param(Answer(204), None, None, id="no-content"),
        pytest.param(Answer(200, (("X-Amzn-ErrorType", "Odd"),), b"[1, 2]"), [1, 2], None, id="ok"),
    ],
)
def test_every_status_is_a_reply(answer: Answer, body: object, error_code: str | None) -> None:
    answer = Answer(answer.status, (*answer.headers, ("x-amzn-RequestId", "req-1")), answer.body)
    _, reply, _ = _exchange("ListDevices", {}, answer)
    assert (reply.operation, reply.status, reply.body) == ("ListDevices", answer.status, body)
    assert (reply.error_code, reply.request_id) == (error_code, "req-1")
    assert reply.elapsed_s > 0
    assert reply.request.method == "GET"


def test_reply_headers_are_lower_cased_and_the_last_value_wins() -> None:
    answer = Answer(200, (("X-Thing", "one"), ("x-thing", "two"), ("Cache-Control", "no-store")))
    _, reply, _ = _exchange("ListDevices", {}, answer)
    assert reply.headers["x-thing"] == "two"
    assert reply.headers["cache-control"] == "no-store"
    assert all(name == name.lower() for name in reply.headers)


def _raw(
    method: str,
    target: str,
    *,
    answer: Answer = OK,
    path: str = "",
    **options: Any,
) -> tuple[Received, ApiReply, str]:
    """``DevicesClient.request`` once against a receiver; the request, reply and endpoint."""

    async def respond(_request: Received) -> Answer:
        return answer

    async def main() -> tuple[Received, ApiReply, str]:
        async with Receiver(respond) as receiver:
            endpoint = receiver.url(path) if path else receiver.url().rstrip("/")
            reply = await _client(endpoint).request(method, target, **options)
        [request] = receiver.requests
        return request, reply, endpoint

    return asyncio.run(main())


def _wire(received: Received) -> Request:
    path, _, query = received.target.partition("?")
    return Request(
        method=received.method, path=path, query=query, headers=received.headers, body=received.body
    )


def test_a_raw_request_goes_as_written_and_signed() -> None:
    received, reply, endpoint = _raw(
        "PUT",
        "/claims/C-0123456789?b=2&a=%2F",
        body=b"{not json",
        headers={"X-Extra": "yes"},
        answer=Answer(400, (("X-Amzn-ErrorType", "InvalidRequestException"),), b'{"m": 1}'),
    )
    assert (received.method, received.target, received.body) == (
        "PUT",
        "/claims/C-0123456789?b=2&a=%2F",
        b"{not json",
    )
    assert received.header("content-type") == "application/json"
    assert received.header("x-extra") == "yes"
    caller = verify(_wire(received), now=NOW, lookup={KEYS.access_key: KEYS}.get)
    assert caller.access_key == KEYS.access_key
    assert (reply.operation, reply.status, reply.error_code) == (
        "request",
        400,
        "InvalidRequestException",
    )
    assert reply.body == {"m": 1}
    assert reply.request.url == f"{endpoint}/claims/C-0123456789?b=2&a=%2F"
    assert reply.request.body == "{not json"
    assert reply.request.operation == "request"


def test_a_raw_request_joins_the_endpoints_path() -> None:
    received, _, _ = _raw("GET", "/devices", path="/prefix/")
    assert received.target == "/prefix/devices"
    verify(_wire(received), now=NOW, lookup={KEYS.access_key: KEYS}.get)


def test_a_raw_requests_headers_replace_or_drop_the_defaults() -> None:
    received, _, _ = _raw(
        "POST", "/x", body=b"a", headers={"content-type": "text/plain", "User-Agent": None}
    )
    assert received.header("content-type") == "text/plain"
    assert [name for name, _ in received.headers].count("content-type") == 1
    assert received.header("user-agent") is None
    verify(_wire(received), now=NOW, lookup={KEYS.access_key: KEYS}.get)


def test_an_unsigned_raw_request_has_no_authorization() -> None:
    received, _, _ = _raw("GET", "/devices", sign="none")
    assert received.header("authorization") is None
    assert received.header("x-amz-date") is None
    with pytest.raises(SignatureError) as caught:
        verify(_wire(received), now=NOW, lookup={KEYS.access_key: KEYS}.get)
    assert caught.value.code == "MissingAuthenticationTokenException"


def test_a_bad_signature_is_well_formed_but_wrong() -> None:
    received, _, _ = _raw("GET", "/devices", sign="bad-signature")
    authorization = received.header("authorization") or ""
    assert re.fullmatch(r".*Signature=[0-9a-f]{64}", authorization), authorization
    with pytest.raises(SignatureError) as caught:
        verify(_wire(received), now=NOW, lookup={KEYS.access_key: KEYS}.get)
    assert caught.value.code == "InvalidSignatureException"
    assert "does not match" in str(caught.value)


def test_a_skewed_request_is_signed_twenty_minutes_early() -> None:
    received, _, _ = _raw("GET", "/devices", sign="skewed")
    assert received.header("x-amz-date") == "20240301T121045Z"
    wire = _wire(received)
    early = NOW - timedelta(minutes=20)
    verify(wire, now=early, lookup={KEYS.access_key: KEYS}.get)  # a good signature, then
    with pytest.raises(SignatureError) as caught:
        verify(wire, now=NOW, lookup={KEYS.access_key: KEYS}.get)
    assert caught.value.code == "InvalidSignatureException"


@pytest.mark.parametrize(
    ("target", "sign", "message"),
    [
        ("devices", "sigv4", "'devices': a request's target is a path starting with /"),
        ("/devices", "maybe", "sign 'maybe': expected one of sigv4, none, bad-signature, skewed"),
    ],
)
def test_raw_requests_that_cannot_be_formed_raise_value_error(
    target: str, sign: Any, message: str
) -> None:
    client = _client("http://127.0.0.1:9")
    with pytest.raises(ValueError, match=re.escape(message)):
        asyncio.run(client.request("GET", target, sign=sign))


def test_an_endpoint_nobody_listens_on_is_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ApiUnreachable) as caught:
        asyncio.run(_client(url).call("ListDevices", {"nextToken": "secret-ish"}))
    message = str(caught.value)
    assert message == f"cannot reach {url}/devices: connection refused"
    assert caught.value.url == f"{url}/devices"


def test_an_endpoint_that_never_answers_is_unreachable() -> None:
    async def hold(_request: Received) -> Answer:
        await asyncio.Event().wait()
        raise AssertionError("never answered")

    async def main() -> None:
        async with Receiver(hold) as receiver:
            await _client(receiver.url(), timeout=0.2).call("ListDevices", {})

    with pytest.raises(ApiUnreachable, match=r"^cannot reach http://127\.0\.0\.1:\d+/devices: no"):
        asyncio.run(main())


def test_known_params_are_wire_names_and_aliases_in_model_order() -> None:
    assert known_params("TagResource") == ["resource-arn", "resourceArn", "tags"]
    assert known_params("ListDevices") == ["deviceType", "maxResults", "nextToken"]
    assert known_params("ClaimDevicesByClaimCode") == ["claimCode"]
    with pytest.raises(
        ValueError, match="unknown operation 'Nope'; known: ClaimDevicesByClaimCode"
    ):
        known_params("Nope")


@pytest.mark.parametrize(
    ("operation", "params", "message"),
    [
        (
            "DescribeDevice",
            {"deviceId": "G1", "DeviceID": "G1"},
            "DescribeDevice: unknown parameter 'DeviceID'; known: deviceId",
        ),
        ("Unknown", {}, "unknown operation 'Unknown'; known: ClaimDevicesByClaimCode, "),
        (
            "ListTagsForResource",
            {"resource-arn": ARN, "resourceArn": ARN},
            "ListTagsForResource: 'resource-arn' and 'resourceArn' are one parameter",
        ),
        ("DescribeDevice", {}, "DescribeDevice: 'deviceId' is required .it is part of the path."),
        ("DescribeDevice", {"deviceId": None}, "DescribeDevice: 'deviceId' is required"),
        (
            "TagResource",
            {"resourceArn": ARN, "tags": {"at": NOW}},
            "TagResource: tags: cannot be sent as JSON",
        ),
    ],
)
def test_calls_that_cannot_be_formed_raise_value_error(
    operation: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{message}"):
        asyncio.run(_client("http://127.0.0.1:1").call(operation, params))


@pytest.mark.parametrize(
    "endpoint",
    [
        "127.0.0.1:8080",
        "ftp://host",
        "http://",
        "http://h:99999",
        "http://u:p@host",
        "http://h/?x=1",
        "http://h/#f",
    ],
)
def test_endpoints_that_are_not_plain_http_urls_are_refused(endpoint: str) -> None:
    with pytest.raises(ValueError, match=r"^endpoint") as caught:
        DevicesClient(endpoint, KEYS)
    assert ":p@" not in str(caught.value)
