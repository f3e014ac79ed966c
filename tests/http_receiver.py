"""A scripted HTTP/1.1 server for client-side tests: records requests, answers as told.

Deliberately independent of the backend's own server, so that the client and the
webhook deliverer are tested against a second implementation of the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

import h11


@dataclass(frozen=True, slots=True)
class Received:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    """Names lower-case, in the order sent."""
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


Respond = Callable[[Received], Awaitable[Answer]]


async def _ok(_request: Received) -> Answer:
    return Answer(200)


@dataclass
class Receiver:
    """``async with Receiver(respond) as r``: serve on 127.0.0.1, one request per connection.

    Every request is appended to ``requests`` before ``respond`` is awaited, so a test
    sees a request that ``respond`` holds. Exit cancels the held ones.
    """

    respond: Respond = _ok
    port: int = 0
    tls: ssl.SSLContext | None = None
    requests: list[Received] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _connections: set[asyncio.Task[None]] = field(default_factory=set)

    def url(self, path: str = "/") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._connections:
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            connection = h11.Connection(h11.SERVER)
            request = await _read_request(connection, reader)
            if request is None:
                return
            self.requests.append(request)
            answer = await self.respond(request)
            headers = [
                ("content-length", str(len(answer.body))),
                ("connection", "close"),
                *answer.headers,
            ]
            writer.write(connection.send(h11.Response(status_code=answer.status, headers=headers)))
            writer.write(connection.send(h11.Data(data=answer.body)))
            writer.write(connection.send(h11.EndOfMessage()))
            await writer.drain()
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _read_request(
    connection: h11.Connection, reader: asyncio.StreamReader
) -> Received | None:
    request: h11.Request | None = None
    body = bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            return Received(
                method=request.method.decode(),
                target=request.target.decode(),
                headers=tuple((k.decode(), v.decode()) for k, v in request.headers),
                body=bytes(body),
            )
        else:  # the client went away
            return None
