"""AWS Signature Version 4, both sides: clicksim's client signs, the backend verifies.

Pure: the caller passes the time (``now``, an aware datetime) and the raw request as
it is on the wire; nothing reads a clock, a socket or a global cache. The canonical
form is botocore's for non-S3 services, so that requests signed by the AWS SDKs and
CLI for ``iot1click`` verify here byte for byte:

* the path is taken as sent (already percent-encoded), dot segments and empty
  segments are removed, then it is percent-encoded once more (``%3A`` -> ``%253A``);
* query pairs are decoded, re-encoded with ``quote(safe='-_.~')`` and sorted by
  encoded name, then encoded value;
* header names are lower-cased, values trimmed with inner runs of spaces collapsed,
  repeated headers joined with ``,``;
* the payload hash is the hex SHA-256 of the body (botocore sends no
  ``X-Amz-Content-Sha256`` for this service).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal
from urllib.parse import quote, unquote_to_bytes

ALGORITHM: Final = "AWS4-HMAC-SHA256"
DEFAULT_SERVICE: Final = "iot1click"
TIMESTAMP_FORMAT: Final = "%Y%m%dT%H%M%SZ"

# botocore never signs these: proxies and retries may change them.
_UNSIGNED_HEADERS: Final = frozenset({"authorization", "expect", "user-agent", "x-amzn-trace-id"})
# What sign() sets itself, so a re-sign (a retry) replaces rather than repeats them.
_REPLACED_HEADERS: Final = frozenset({"authorization", "x-amz-date", "x-amz-security-token"})
_TIMESTAMP_RE: Final = re.compile(r"\d{8}T\d{6}Z")
_DATE_RE: Final = re.compile(r"\d{8}")
_SIGNATURE_RE: Final = re.compile(r"[0-9a-f]{64}")

SignatureErrorCode = Literal[
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
]

Headers = Mapping[str, str] | Sequence[tuple[str, str]]


@dataclass(frozen=True, kw_only=True, slots=True)
class Credentials:
    """An access key pair, with the session token of temporary credentials."""

    access_key: str
    # Kept out of repr, so out of logs and tracebacks.
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class Request:
    """A request as it is on the wire: raw path and query, headers in any case, repeats kept."""

    method: str
    path: str
    query: str = ""
    headers: Headers = ()
    body: bytes = b""


@dataclass(frozen=True, kw_only=True, slots=True)
class VerifiedCaller:
    """Who signed a request that verified, and for which region."""

    access_key: str
    region: str


class SignatureError(Exception):
    """A request failed authentication; ``code`` is the error name AWS returns."""

    def __init__(self, code: SignatureErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code: SignatureErrorCode = code
        self.message = message


def signing_key(secret_key: str, *, date: str, region: str, service: str) -> bytes:
    """The key for one day, region and service: kSecret -> kDate -> kRegion -> kService."""
    key = _hmac(f"AWS4{secret_key}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def canonical_uri(path: str) -> str:
    """The path as botocore signs it for non-S3 services: normalised, encoded again."""
    return quote(_remove_dot_segments(path) or "/", safe="/~")


def canonical_query(query: str) -> str:
    """Pairs decoded, re-encoded the AWS way and sorted; empty pieces (``a=1&``) dropped."""
    pairs = []
    for piece in query.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        pairs.append((_encode(name), _encode(value)))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def canonical_request(request: Request, signed_headers: Sequence[str], payload_hash: str) -> str:
    """The canonical request over ``signed_headers`` (lower-case, in the order given)."""
    values = _header_values(request.headers)
    lines = [
        request.method.upper(),
        canonical_uri(request.path),
        canonical_query(request.query),
        *(f"{name}:{','.join(_trim(v) for v in values.get(name, []))}" for name in signed_headers),
        "",
        ";".join(signed_headers),
        payload_hash,
    ]
    return "\n".join(lines)


def string_to_sign(timestamp: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"


def sign(
    request: Request,
    credentials: Credentials,
    *,
    region: str,
    service: str,
    now: datetime,
) -> list[tuple[str, str]]:
    """The headers to add to ``request`` to sign it: ``X-Amz-Date``, the token, ``Authorization``.

    Every header of the request is signed but those botocore leaves out, so the request
    must carry its ``Host`` header. ``Authorization``, ``X-Amz-Date`` and
    ``X-Amz-Security-Token`` already on the request are taken as replaced, as on a retry.
    """
    timestamp = _utc(now).strftime(TIMESTAMP_FORMAT)
    added = [("X-Amz-Date", timestamp)]
    if credentials.session_token is not None:
        added.append(("X-Amz-Security-Token", credentials.session_token))
    kept = [(n, v) for n, v in _header_pairs(request.headers) if n.lower() not in _REPLACED_HEADERS]
    signed = Request(
        method=request.method,
        path=request.path,
        query=request.query,
        headers=kept + added,
        body=request.body,
    )
    values = _header_values(signed.headers)
    if "host" not in values:
        raise ValueError("a request to sign needs its Host header")
    names = sorted(name for name in values if name not in _UNSIGNED_HEADERS)
    payload = values.get("x-amz-content-sha256", [_payload_hash(request.body)])[0]
    date = timestamp[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    key = signing_key(credentials.secret_key, date=date, region=region, service=service)
    to_sign = string_to_sign(timestamp, scope, canonical_request(signed, names, payload))
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return [*added, ("Authorization", authorization)]


def verify(
    request: Request,
    *,
    now: datetime,
    lookup: Callable[[str], Credentials | None],
    region: str | None = None,
    service: str = DEFAULT_SERVICE,
    max_skew: timedelta = timedelta(minutes=15),
) -> VerifiedCaller:
    """Check a signed request as AWS would; raise :class:`SignatureError` if it fails.

    ``lookup`` maps an access key to its credentials (``None``: unknown). With
    ``region`` given, a request scoped to another region is refused. Messages follow
    AWS's wording and never carry the secret key.
    """
    values = _header_values(request.headers)
    authorization = values.get("authorization", [])
    if not authorization:
        raise SignatureError("MissingAuthenticationTokenException", "Missing Authentication Token")
    if len(authorization) > 1:
        raise SignatureError("IncompleteSignatureException", "More than one Authorization header")
    scheme, _, rest = authorization[0].strip().partition(" ")
    if scheme != ALGORITHM:
        raise SignatureError(
            "MissingAuthenticationTokenException",
            f"Authorization header must use {ALGORITHM}",
        )
    params = _parse_authorization(rest)
    access_key, date, scope_region, scope_service = _parse_scope(params["Credential"])
    signed_headers = params["SignedHeaders"].split(";")
    signature = params["Signature"]
    _check_signed_headers(signed_headers, values)
    if not _SIGNATURE_RE.fullmatch(signature):
        raise SignatureError("IncompleteSignatureException", "Signature must be 64 hex digits")
    timestamp = _parse_timestamp(values)

    if date != timestamp[:8]:
        raise SignatureError(
            "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{date}' != '{timestamp[:8]}', from '{timestamp}'.",
        )
    if scope_service != service:
        raise SignatureError(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{service}'.",
        )
    if region is not None and scope_region != region:
        raise SignatureError(
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region, not '{scope_region}'.",
        )

    credentials = lookup(access_key)
    if credentials is None:
        raise SignatureError(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    token = values.get("x-amz-security-token", [""])[0]
    if not hmac.compare_digest(token.encode(), (credentials.session_token or "").encode()):
        raise SignatureError(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )

    payload = _payload_hash(request.body)
    claimed = values.get("x-amz-content-sha256")
    if claimed is not None and claimed[0].strip() != payload:
        raise SignatureError(
            "InvalidSignatureException",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    scope = f"{date}/{scope_region}/{scope_service}/aws4_request"
    to_sign = string_to_sign(timestamp, scope, canonical_request(request, signed_headers, payload))
    key = signing_key(credentials.secret_key, date=date, region=scope_region, service=scope_service)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise SignatureError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. "
            "Consult the service documentation for details.",
        )

    _check_skew(timestamp, _utc(now), max_skew)
    return VerifiedCaller(access_key=access_key, region=scope_region)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _encode(raw: str) -> str:
    # Decode to bytes first: lossless for any escape, and re-encoding is then canonical.
    return quote(unquote_to_bytes(raw), safe="-_.~")


def _trim(value: str) -> str:
    return " ".join(value.split())


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 dot-segment removal, also dropping empty segments, as botocore does."""
    if not path:
        return ""
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment and segment != ".":
            kept.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and kept else ""
    return first + "/".join(kept) + last


def _header_pairs(headers: Headers) -> Iterable[tuple[str, str]]:
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def _header_values(headers: Headers) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for name, value in _header_pairs(headers):
        values.setdefault(name.strip().lower(), []).append(value)
    return values


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return now.astimezone(UTC)


def _parse_authorization(rest: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            params[name.strip()] = value.strip()
    for required in ("Credential", "SignedHeaders", "Signature"):
        if not params.get(required):
            raise SignatureError(
                "IncompleteSignatureException",
                f"Authorization header requires '{required}' parameter.",
            )
    return params


def _parse_scope(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if (
        len(parts) != 5
        or not all(parts)
        or parts[4] != "aws4_request"
        or not _DATE_RE.fullmatch(parts[1])
    ):
        raise SignatureError(
            "IncompleteSignatureException",
            "Credential must have the form <key>/<YYYYMMDD>/<region>/<service>/aws4_request, "
            f"got '{credential}'.",
        )
    return parts[0], parts[1], parts[2], parts[3]


def _check_signed_headers(signed: Sequence[str], values: Mapping[str, list[str]]) -> None:
    if "host" not in signed:
        raise SignatureError(
            "IncompleteSignatureException", "'Host' must be a 'SignedHeader' in the Authorization."
        )
    for name in signed:
        if name != name.lower() or not name.strip():
            raise SignatureError(
                "IncompleteSignatureException", f"Signed header name '{name}' is not lower-case."
            )
        if name not in values:
            raise SignatureError(
                "IncompleteSignatureException", f"Signed header '{name}' is not in the request."
            )


def _parse_timestamp(values: Mapping[str, list[str]]) -> str:
    dates = values.get("x-amz-date")
    if not dates:
        raise SignatureError(
            "IncompleteSignatureException",
            "Authorization header requires existence of a 'X-Amz-Date' header.",
        )
    timestamp = dates[0].strip()
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise SignatureError(
            "IncompleteSignatureException",
            f"X-Amz-Date must be ISO-8601 basic, YYYYMMDD'T'HHMMSS'Z', not '{timestamp}'.",
        )
    try:
        datetime.strptime(timestamp, TIMESTAMP_FORMAT)
    except ValueError:
        raise SignatureError(
            "IncompleteSignatureException", f"X-Amz-Date '{timestamp}' is not a valid time."
        ) from None
    return timestamp


def _check_skew(timestamp: str, now: datetime, max_skew: timedelta) -> None:
    signed_at = datetime.strptime(timestamp, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    window = f"{max_skew.total_seconds() / 60:g} min."
    now_text = now.strftime(TIMESTAMP_FORMAT)
    if signed_at < now - max_skew:
        earliest = (now - max_skew).strftime(TIMESTAMP_FORMAT)
        raise SignatureError(
            "InvalidSignatureException",
            f"Signature expired: {timestamp} is now earlier than {earliest} "
            f"({now_text} - {window})",
        )
    if signed_at > now + max_skew:
        latest = (now + max_skew).strftime(TIMESTAMP_FORMAT)
        raise SignatureError(
            "InvalidSignatureException",
            f"Signature not yet current: {timestamp} is still later than {latest} "
            f"({now_text} + {window})",
        )
