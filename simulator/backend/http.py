"""A small asyncio HTTP/1.1 server on h11: one handler, keep-alive, bounded bodies.

The backend needs no framework: one coroutine turns a request into a response.
h11 does the protocol (framing, keep-alive, pipelining); this module does the
sockets and the rules a server must keep for clients it does not trust:

* a request that is not HTTP gets 400 (431 for an oversized header block) and the
  connection is closed; a body over ``max_body`` gets 413 and the same;
* a handler that raises gets 500 with an AWS-shaped JSON error, one log line, and
  the server goes on serving;
* every response carries ``Content-Length`` (except 204 and 304, which by RFC 9110
  carry no body and must not); a handler's own framing headers are replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Final

import h11

_READ_SIZE: Final = 65536
_LINGER_SECONDS: Final = 1.0
_MESSAGE_MAX: Final = 200
_NO_BODY: Final = frozenset({204, 304})
_FRAMING: Final = frozenset({"content-length", "transfer-encoding"})


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request as received: the target, path and query still percent-encoded."""

    method: str
    target: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]  # names lower-case, in the order received
    body: bytes
    peer: str


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class _Reject(Exception):
    """A request the server answers itself, then closes the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HttpServer:
    """Serves ``handler`` on ``host``:``port`` while the context is open.

    ``port`` 0 takes a free port; ``self.port`` is the bound one once entered. On
    exit, the listener and every connection are closed, in-flight handlers cancelled.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body: int = 1 << 20,
        log: logging.Logger = logging.getLogger("clicksim.http"),  # noqa: B008
    ) -> None:
        self.port = port
        self._handler = handler
        self._host = host
        self._max_body = max_body
        self._log = log
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> HttpServer:
        self._server = await asyncio.start_server(self._accept, self._host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        connections = list(self._connections)
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._server is None:  # accepted just before the server closed
            writer.close()
            return
        self._connections.add(task)
        try:
            await _Connection(self._handler, self._max_body, self._log, reader, writer).serve()
        except OSError as exc:
            self._log.debug("connection from %s lost: %s", _peer(writer), exc)
        except asyncio.CancelledError:
            # Only __aexit__ cancels this task, which asyncio owns: on 3.11 it would
            # log a callback error for a connection task that ends cancelled.
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class _Connection:
    """One client connection: requests in order, one response each."""

    def __init__(
        self,
        handler: Handler,
        max_body: int,
        log: logging.Logger,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self._handler = handler
        self._max_body = max_body
        self._log = log
        self._reader = reader
        self._writer = writer
        self._h11 = h11.Connection(h11.SERVER)
        self._peer = _peer(writer)

    async def serve(self) -> None:
        while True:
            try:
                request = await self._receive()
            except h11.RemoteProtocolError as exc:
                await self._reject(exc.error_status_hint, f"malformed HTTP request: {exc}")
                return
            except _Reject as exc:
                await self._reject(exc.status, str(exc))
                return
            if request is None:
                return
            await self._send(request.method, await self._respond(request))
            if self._h11.our_state is not h11.DONE or self._h11.their_state is not h11.DONE:
                return
            self._h11.start_next_cycle()

    async def _receive(self) -> HttpRequest | None:
        """The next request with its whole body; None once the client has closed."""
        event = await self._next_event()
        if isinstance(event, h11.ConnectionClosed):
            return None
        assert isinstance(event, h11.Request)
        limit = self._max_body
        for name, value in event.headers:
            if name == b"content-length" and int(value) > limit:
                raise _Reject(413, f"request body over {limit} bytes")
        if self._h11.they_are_waiting_for_100_continue:
            await self._write(
                self._h11.send(h11.InformationalResponse(status_code=100, headers=[]))
            )
        body = bytearray()
        while not isinstance(chunk := await self._next_event(), h11.EndOfMessage):
            assert isinstance(chunk, h11.Data)
            body += chunk.data
            if len(body) > limit:
                raise _Reject(413, f"request body over {limit} bytes")
        target = event.target.decode("ascii")
        path, _, query = target.partition("?")
        return HttpRequest(
            method=event.method.decode("ascii"),
            target=target,
            path=path,
            query=query,
            headers=tuple(
                (name.decode("ascii"), value.decode("latin-1")) for name, value in event.headers
            ),
            body=bytes(body),
            peer=self._peer,
        )

    async def _next_event(self) -> object:
        """h11's next event, reading from the socket until it has one."""
        while True:
            event = self._h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            self._h11.receive_data(await self._reader.read(_READ_SIZE))

    async def _respond(self, request: HttpRequest) -> HttpResponse:
        try:
            response = await self._handler(request)
            _h11_response(response)  # a response h11 refuses is the handler's failure
        except Exception as exc:
            self._log.error(
                "%s %s from %s: handler failed: %s: %s",
                request.method,
                request.target,
                self._peer,
                type(exc).__name__,
                exc,
                exc_info=self._log.isEnabledFor(logging.DEBUG),
            )
            return _error(500, "InternalFailureException", "internal failure")
        return response

    async def _send(self, method: str, response: HttpResponse) -> None:
        data = self._h11.send(_h11_response(response))
        if method != "HEAD" and response.body:
            data += self._h11.send(h11.Data(data=response.body))
        data += self._h11.send(h11.EndOfMessage())
        await self._write(data)

    async def _reject(self, status: int, message: str) -> None:
        """Answer a request the handler never sees, then let the client read it.

        Closing a socket with unread input resets it, and the client may lose the
        answer: so shut our side, then read what is still coming for a moment.
        """
        message = message if len(message) <= _MESSAGE_MAX else message[:_MESSAGE_MAX] + "..."
        self._log.info("%s: %d %s", self._peer, status, message)
        if self._h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        response = _error(status, "InvalidRequestException", message)
        response = HttpResponse(
            response.status, (*response.headers, ("connection", "close")), response.body
        )
        await self._send("", response)
        if self._writer.can_write_eof():
            self._writer.write_eof()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_LINGER_SECONDS):
                while await self._reader.read(_READ_SIZE):
                    pass

    async def _write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()


def _h11_response(response: HttpResponse) -> h11.Response:
    if response.status in _NO_BODY and response.body:
        raise ValueError(f"a {response.status} response has no body")
    headers = [(name, value) for name, value in response.headers if name.lower() not in _FRAMING]
    if response.status not in _NO_BODY:
        headers.append(("content-length", str(len(response.body))))
    return h11.Response(
        status_code=response.status, headers=headers, reason=_reason(response.status)
    )


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


def _error(status: int, code: str, message: str) -> HttpResponse:
    body = json.dumps({"code": code, "message": message}).encode()
    headers = (
        ("content-type", "application/json"),
        ("x-amzn-errortype", code),
        ("x-amzn-requestid", str(uuid.uuid4())),
    )
    return HttpResponse(status, headers, body)


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else str(peer[0])
        return f"{host}:{peer[1]}"
    return str(peer)
