"""SigV4 against botocore, the signer the AWS SDKs and CLI use, and every way to fail."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import botocore.auth
import botocore.credentials
import botocore.session
import pytest
from botocore.awsrequest import AWSRequest, AWSResponse
from freezegun import freeze_time

from simulator.api.sigv4 import (
    Credentials,
    Request,
    SignatureError,
    VerifiedCaller,
    canonical_uri,
    sign,
    signing_key,
    verify,
)

ACCESS_KEY: Final = "AKIDEXAMPLE"
SECRET_KEY: Final = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN: Final = "FQoGZXIvYXdzEXAMPLETOKEN//+="
REGION: Final = "us-east-1"
SERVICE: Final = "iot1click"
ENDPOINT: Final = "https://devices.iot1click.us-east-1.amazonaws.com"
NOW: Final = datetime(2024, 3, 1, 12, 30, 45, tzinfo=UTC)
DEVICE_ARN: Final = "arn%3Aaws%3Aiot1click%3Aus-east-1%3A123456789012%3Adevices%2FG030PM0000000001"

PLAIN: Final = Credentials(access_key=ACCESS_KEY, secret_key=SECRET_KEY)
TEMPORARY: Final = Credentials(access_key=ACCESS_KEY, secret_key=SECRET_KEY, session_token=TOKEN)

# (method, path and query as on the wire, headers, body): iot1click-like calls.
CALLS: Final = [
    pytest.param("GET", "/devices?maxResults=10&nextToken=a%2Fb", {}, b"", id="list-devices"),
    pytest.param("PUT", "/claims/C-ABCDEFGHIJ12", {}, b"", id="claim"),
    pytest.param(
        "POST",
        f"/tags/{DEVICE_ARN}",
        {"Content-Type": "application/json"},
        b'{"tags": {"room": "kitchen  east"}}',
        id="tag-resource",
    ),
    pytest.param(
        "DELETE",
        f"/tags/{DEVICE_ARN}?tagKeys=room&tagKeys=a%20b&tagKeys=floor",
        {},
        b"",
        id="untag-resource",
    ),
    pytest.param(
        "GET",
        "/devices/G030PM0000000001/../G030PM0000000001//events?toTimeStamp=2020-01-02T00%3A00%3A00Z",
        {"X-Custom": "  spaced   out  "},
        b"",
        id="dot-segments-and-spaced-header",
    ),
]


def _botocore_signed(
    method: str, target: str, headers: dict[str, str], body: bytes, credentials: Credentials
) -> tuple[Request, str]:
    """Sign with botocore at NOW; return the request as sent, and its Authorization."""
    aws_request = AWSRequest(
        method=method, url=ENDPOINT + target, headers={**headers, "User-Agent": "clicksim"}
    )
    aws_request.data = body
    auth = botocore.auth.SigV4Auth(
        botocore.credentials.Credentials(
            credentials.access_key, credentials.secret_key, credentials.session_token
        ),
        SERVICE,
        REGION,
    )
    with freeze_time(NOW):
        auth.add_auth(aws_request)
    wire = _wire(aws_request.prepare())
    authorization = dict(wire.headers)["Authorization"]
    return wire, authorization


def _wire(prepared: Any) -> Request:
    """What the HTTP client puts on the wire, including the Host header it adds."""
    url = urlsplit(prepared.url)
    headers = [("Host", url.netloc)]
    for name, value in prepared.headers.items():
        headers.append((name, value.decode() if isinstance(value, bytes) else value))
    body = prepared.body or b""
    return Request(
        method=prepared.method,
        path=url.path,
        query=url.query,
        headers=headers,
        body=body.encode() if isinstance(body, str) else body,
    )


def _lookup(credentials: Credentials) -> Callable[[str], Credentials | None]:
    return lambda key: credentials if key == credentials.access_key else None


@pytest.mark.parametrize("credentials", [PLAIN, TEMPORARY], ids=["keys", "session"])
@pytest.mark.parametrize(("method", "target", "headers", "body"), CALLS)
def test_botocore_signed_requests_verify(
    method: str, target: str, headers: dict[str, str], body: bytes, credentials: Credentials
) -> None:
    wire, _ = _botocore_signed(method, target, headers, body, credentials)

    caller = verify(wire, now=NOW, lookup=_lookup(credentials), region=REGION)

    assert caller == VerifiedCaller(access_key=ACCESS_KEY, region=REGION)


@pytest.mark.parametrize("credentials", [PLAIN, TEMPORARY], ids=["keys", "session"])
@pytest.mark.parametrize(("method", "target", "headers", "body"), CALLS)
def test_sign_matches_botocore(
    method: str, target: str, headers: dict[str, str], body: bytes, credentials: Credentials
) -> None:
    _, expected = _botocore_signed(method, target, headers, body, credentials)
    path, _, query = target.partition("?")
    unsigned = Request(
        method=method,
        path=path,
        query=query,
        headers=[("Host", urlsplit(ENDPOINT).netloc), ("User-Agent", "clicksim"), *headers.items()],
        body=body,
    )

    added = sign(unsigned, credentials, region=REGION, service=SERVICE, now=NOW)

    assert dict(added)["Authorization"] == expected
    assert dict(added)["X-Amz-Date"] == "20240301T123045Z"
    assert dict(added).get("X-Amz-Security-Token") == credentials.session_token


def test_sdk_client_requests_verify() -> None:
    """The whole SDK path, as boto3 and the CLI send it; nothing leaves the process."""
    sent: list[Any] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, {}, _EmptyJson())

    client = botocore.session.get_session().create_client(
        "iot1click-devices",
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=TOKEN,
    )
    client.meta.events.register("before-send", capture)
    arn = "arn:aws:iot1click:us-east-1:123456789012:devices/G030PM0000000001"
    with freeze_time(NOW):
        client.list_device_events(
            DeviceId="G030PM0000000001",
            FromTimeStamp=datetime(2020, 1, 1, tzinfo=UTC),
            ToTimeStamp=datetime(2020, 1, 2, tzinfo=UTC),
            MaxResults=10,
            NextToken="a/b c",
        )
        client.tag_resource(ResourceArn=arn, Tags={"room": "kitchen"})
        client.untag_resource(ResourceArn=arn, TagKeys=["room", "a b"])
        client.claim_devices_by_claim_code(ClaimCode="C-ABCDEFGHIJ12")

    assert len(sent) == 4
    for prepared in sent:
        wire = _wire(prepared)
        headers = {name.lower() for name, _ in _pairs(wire)}
        assert "x-amz-content-sha256" not in headers  # botocore sends none for iot1click
        assert verify(wire, now=NOW, lookup=_lookup(TEMPORARY)).region == REGION
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token," in (
        sent[1].headers["Authorization"].decode()
    )


class _EmptyJson:
    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
        yield b"{}"


def test_signing_key_matches_the_aws_documentation_example() -> None:
    key = signing_key(SECRET_KEY, date="20120215", region="us-east-1", service="iam")

    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_path_is_encoded_twice_as_for_non_s3_services() -> None:
    assert canonical_uri(f"/tags/{DEVICE_ARN}") == f"/tags/{DEVICE_ARN.replace('%', '%25')}"
    assert canonical_uri("") == "/"
    assert canonical_uri("/a/./b/../c//d/") == "/a/c/d/"


# --- failures ---------------------------------------------------------------------------


def _signed(**changes: Any) -> Request:
    """A tag-resource request signed at NOW with the long-term keys."""
    request = Request(
        method="POST",
        path=f"/tags/{DEVICE_ARN}",
        query="a=1&b=2",
        headers=[
            ("Host", "devices.iot1click.us-east-1.amazonaws.com"),
            ("Content-Type", "application/json"),
        ],
        body=b'{"tags": {"room": "kitchen"}}',
    )
    added = sign(request, PLAIN, region=REGION, service=SERVICE, now=NOW)
    signed = dataclasses.replace(request, headers=[*_pairs(request), *added])
    return dataclasses.replace(signed, **changes)


def _with_header(request: Request, name: str, value: str | None) -> Request:
    """``request`` with header ``name`` set to ``value``, or removed for ``None``."""
    headers = [(n, v) for n, v in _pairs(request) if n.lower() != name.lower()]
    if value is not None:
        headers.append((name, value))
    return dataclasses.replace(request, headers=headers)


def _authorization(request: Request) -> str:
    return dict(_pairs(request))["Authorization"]


def _pairs(request: Request) -> list[tuple[str, str]]:
    headers = request.headers
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


def _check(request: Request, now: datetime = NOW) -> VerifiedCaller:
    return verify(request, now=now, lookup=_lookup(PLAIN), region=REGION)


def test_the_baseline_verifies() -> None:
    assert _check(_signed()) == VerifiedCaller(access_key=ACCESS_KEY, region=REGION)


def _failures() -> list[Any]:
    good = _signed()
    auth = _authorization(good)
    return [
        pytest.param(
            _with_header(good, "Authorization", None),
            "MissingAuthenticationTokenException",
            id="no-authorization",
        ),
        pytest.param(
            _with_header(good, "Authorization", auth.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1")),
            "MissingAuthenticationTokenException",
            id="wrong-algorithm",
        ),
        pytest.param(
            _with_header(good, "Authorization", auth.split(", Signature=")[0]),
            "IncompleteSignatureException",
            id="no-signature",
        ),
        pytest.param(
            _with_header(good, "Authorization", auth.replace("SignedHeaders=", "Signed=")),
            "IncompleteSignatureException",
            id="no-signed-headers",
        ),
        pytest.param(
            _with_header(good, "Authorization", auth.replace("/aws4_request", "/aws3_request")),
            "IncompleteSignatureException",
            id="bad-scope",
        ),
        pytest.param(
            _with_header(
                good, "Authorization", auth.replace("content-type;host;", "content-type;")
            ),
            "IncompleteSignatureException",
            id="host-not-signed",
        ),
        pytest.param(
            _with_header(good, "X-Amz-Date", None),
            "IncompleteSignatureException",
            id="no-date",
        ),
        pytest.param(
            _with_header(good, "X-Amz-Date", "2024-03-01T12:30:45Z"),
            "IncompleteSignatureException",
            id="malformed-date",
        ),
        pytest.param(
            _with_header(good, "Authorization", auth.replace(ACCESS_KEY, "AKIDUNKNOWN")),
            "UnrecognizedClientException",
            id="unknown-key",
        ),
        pytest.param(
            _with_header(good, "X-Amz-Security-Token", "forged"),
            "UnrecognizedClientException",
            id="unexpected-token",
        ),
        pytest.param(
            dataclasses.replace(good, body=b'{"tags": {"room": "attic"}}'),
            "InvalidSignatureException",
            id="tampered-body",
        ),
        pytest.param(
            dataclasses.replace(good, query="a=1&b=3"),
            "InvalidSignatureException",
            id="tampered-query",
        ),
        pytest.param(
            _with_header(good, "Content-Type", "text/plain"),
            "InvalidSignatureException",
            id="tampered-signed-header",
        ),
        pytest.param(
            dataclasses.replace(good, path="/tags/arn%3Aaws%3Aother"),
            "InvalidSignatureException",
            id="tampered-path",
        ),
        pytest.param(
            _with_header(good, "Authorization", auth.replace("/iot1click/", "/iot/")),
            "InvalidSignatureException",
            id="wrong-service",
        ),
        pytest.param(
            _with_header(good, "Authorization", auth.replace("/us-east-1/", "/eu-west-1/")),
            "InvalidSignatureException",
            id="wrong-region",
        ),
        pytest.param(
            _with_header(good, "X-Amz-Date", "20240301T123046Z"),
            "InvalidSignatureException",
            id="tampered-date",
        ),
    ]


@pytest.mark.parametrize(("request_", "code"), _failures())
def test_each_failure_has_its_aws_error_code(request_: Request, code: str) -> None:
    with pytest.raises(SignatureError) as caught:
        _check(request_)

    assert caught.value.code == code
    assert SECRET_KEY not in str(caught.value)
    assert SECRET_KEY not in repr(caught.value)


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        pytest.param(timedelta(minutes=16), "Signature expired: 20240301T123045Z", id="old"),
        pytest.param(
            -timedelta(minutes=16), "Signature not yet current: 20240301T123045Z", id="future"
        ),
    ],
)
def test_a_skew_over_15_minutes_is_refused(offset: timedelta, message: str) -> None:
    with pytest.raises(SignatureError, match=message) as caught:
        _check(_signed(), now=NOW + offset)

    assert caught.value.code == "InvalidSignatureException"
    assert SECRET_KEY not in str(caught.value)


@pytest.mark.parametrize("minutes", [-15, -14, 14, 15])
def test_a_skew_within_15_minutes_is_accepted(minutes: int) -> None:
    assert _check(_signed(), now=NOW + timedelta(minutes=minutes)).access_key == ACCESS_KEY


def test_a_session_token_must_be_sent_and_match() -> None:
    request = Request(
        method="GET", path="/devices", headers={"Host": "devices.iot1click.us-east-1.amazonaws.com"}
    )
    added = sign(request, TEMPORARY, region=REGION, service=SERVICE, now=NOW)
    signed = dataclasses.replace(request, headers=[*_pairs(request), *added])
    lookup = _lookup(TEMPORARY)

    assert verify(signed, now=NOW, lookup=lookup).access_key == ACCESS_KEY
    with pytest.raises(SignatureError) as caught:
        verify(_with_header(signed, "X-Amz-Security-Token", "stale"), now=NOW, lookup=lookup)
    assert caught.value.code == "UnrecognizedClientException"
    with pytest.raises(SignatureError) as caught:
        verify(_with_header(signed, "X-Amz-Security-Token", None), now=NOW, lookup=lookup)
    assert caught.value.code == "IncompleteSignatureException"  # it was a signed header


def test_repeated_headers_are_signed_joined_in_order() -> None:
    request = Request(
        method="GET",
        path="/devices",
        headers=[("Host", "h"), ("X-Tag", "one"), ("x-tag", " two  2 ")],
    )
    added = sign(request, PLAIN, region=REGION, service=SERVICE, now=NOW)
    signed = dataclasses.replace(request, headers=[*_pairs(request), *added])
    swapped = dataclasses.replace(
        signed, headers=[("Host", "h"), ("x-tag", "two 2"), ("X-Tag", "one"), *added]
    )

    assert _check(signed).access_key == ACCESS_KEY
    assert "SignedHeaders=host;x-amz-date;x-tag," in dict(added)["Authorization"]
    with pytest.raises(SignatureError) as caught:
        _check(swapped)
    assert caught.value.code == "InvalidSignatureException"


def test_the_secret_stays_out_of_reprs() -> None:
    assert SECRET_KEY not in repr(TEMPORARY)
    assert TOKEN not in repr(TEMPORARY)


def test_signing_needs_a_host_and_an_aware_time() -> None:
    request = Request(method="GET", path="/devices")
    with pytest.raises(ValueError, match="Host"):
        sign(request, PLAIN, region=REGION, service=SERVICE, now=NOW)
    with pytest.raises(ValueError, match="aware"):
        _check(_signed(), now=NOW.replace(tzinfo=None))
