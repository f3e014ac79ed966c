"""A small HTTP/1.1 client on h11 and asyncio: one request, one connection.

Used for the backend's callback POSTs and as the transport of clicksim's Devices API
client, so it is general (any method, any headers) but keeps no pool: a fresh
connection per call costs little at these rates and leaves no state to go stale.

Every failure to get a complete, well-formed response (refused, unresolvable, TLS,
timeout, garbage, a body over ``max_body``) is one ``HttpClientError`` whose message
is one line naming the URL without its query string, which may carry secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, urlsplit

import h11

DEFAULT_MAX_BODY: Final = 16 << 20
"""The largest response body read before giving up (16 MiB)."""

_READ_SIZE: Final = 64 << 10
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# The body's framing is ours to set, from the bytes actually sent.
_FRAMING_HEADERS: Final = frozenset({b"content-length", b"transfer-encoding"})
# RFC 9110 8.6: no Content-Length on a bodiless request whose method expects none.
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})


class HttpClientError(Exception):
    """No complete, well-formed HTTP response came back."""

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(f"{url}: {cause}")
        self.url = url
        """The URL without userinfo, query string or fragment."""
        self.cause = cause
        """What went wrong, without the URL (e.g. ``connection refused``)."""


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    headers: tuple[tuple[str, str], ...]
    """As received, names lower-case."""
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)


def display_url(url: str) -> str:
    """``url`` fit for logs and messages: no userinfo, query string or fragment."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return SplitResult(parts.scheme, host, parts.path, "", "").geturl()


async def send(
    url: str,
    *,
    method: str = "POST",
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    timeout: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
    max_body: int = DEFAULT_MAX_BODY,
) -> HttpReply:
    """Send one request and read its whole response within ``timeout`` seconds.

    ``Host`` is set from the URL unless ``headers`` has one (a signer may have put
    it there); ``Content-Length`` is always set from ``body`` and may not be passed.
    ``ssl_context`` is for https URLs (default: the system's trust store, verified).
    Any status is a reply; only a missing or malformed one raises ``HttpClientError``.
    """
    shown = display_url(url)
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise HttpClientError(shown, "not an http:// or https:// URL with a host")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise HttpClientError(shown, "the port is not a number in 0..65535") from None
    tls = (ssl_context or ssl.create_default_context()) if parts.scheme == "https" else None
    try:
        request = _request(parts, method, headers, body)
        async with asyncio.timeout(timeout):
            return await _exchange(parts.hostname, port, tls, request, body, max_body)
    except TimeoutError:
        raise HttpClientError(shown, f"no complete response within {timeout:g} s") from None
    except ConnectionRefusedError:
        raise HttpClientError(shown, "connection refused") from None
    except socket.gaierror as exc:
        raise HttpClientError(shown, f"cannot resolve {parts.hostname}: {exc.strerror}") from None
    except ssl.SSLError as exc:
        raise HttpClientError(shown, f"TLS failed: {exc.reason or exc}") from None
    except OSError as exc:
        raise HttpClientError(shown, exc.strerror or str(exc) or type(exc).__name__) from None
    except h11.RemoteProtocolError as exc:
        raise HttpClientError(shown, f"malformed response: {exc}") from None
    except (h11.LocalProtocolError, UnicodeError) as exc:
        raise HttpClientError(shown, f"cannot send to this URL: {exc}") from None
    except _BodyTooLarge:
        raise HttpClientError(shown, f"response body over {max_body} bytes") from None


class _BodyTooLarge(Exception):
    pass


def _request(
    parts: SplitResult, method: str, headers: Iterable[tuple[str, str]], body: bytes
) -> h11.Request:
    given = [(name.encode("ascii").lower(), value.encode("latin-1")) for name, value in headers]
    if any(name in _FRAMING_HEADERS for name, _ in given):
        raise ValueError("send() sets Content-Length itself: do not pass framing headers")
    names = {name for name, _ in given}
    extra: list[tuple[bytes, bytes]] = []
    if b"host" not in names:
        extra.append((b"host", parts.netloc.rpartition("@")[2].encode("idna")))
    if body or method.upper() in _BODY_METHODS:
        extra.append((b"content-length", str(len(body)).encode("ascii")))
    if b"connection" not in names:
        extra.append((b"connection", b"close"))
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return h11.Request(method=method, target=target, headers=[*extra, *given])


async def _exchange(
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
    request: h11.Request,
    body: bytes,
    max_body: int,
) -> HttpReply:
    reader, writer = await asyncio.open_connection(host, port, ssl=tls)
    try:
        connection = h11.Connection(h11.CLIENT)
        writer.write(connection.send(request))
        if body:
            writer.write(connection.send(h11.Data(data=body)))
        writer.write(connection.send(h11.EndOfMessage()))
        # A server may answer (413, 401) and close before reading all of a large
        # body: its reply, if it made it, is still worth reading.
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        return await _read_reply(connection, reader, max_body)
    finally:
        # The reply is complete or abandoned and the connection is never reused:
        # abort() frees the socket now, where a TLS close could wait on the peer.
        writer.transport.abort()
        with contextlib.suppress(OSError):  # the reset that ended it is reported already
            await writer.wait_closed()


async def _read_reply(
    connection: h11.Connection, reader: asyncio.StreamReader, max_body: int
) -> HttpReply:
    response: h11.Response | None = None
    chunks: list[bytes] = []
    size = 0
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(_READ_SIZE)
            if not data and response is None:
                raise h11.RemoteProtocolError("connection closed before a response")
            connection.receive_data(data)
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > max_body:
                raise _BodyTooLarge
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            assert response is not None  # h11 orders the events
            return HttpReply(
                status=response.status_code,
                headers=tuple(
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in response.headers
                ),
                body=b"".join(chunks),
            )
        # Otherwise an InformationalResponse (1xx): the final response follows. A
        # truncated body makes h11 raise; ConnectionClosed comes only after the end.
