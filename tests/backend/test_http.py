"""The h11 server over real sockets on 127.0.0.1: framing, limits, failures, concurrency.

Responses are read with a small parser of this file's own, not h11, so that the
server's bytes are checked by something other than the library that wrote them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import pytest

from simulator.backend.http import HttpRequest, HttpResponse, HttpServer

TIMEOUT: Final = 5.0


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


async def read_reply(reader: asyncio.StreamReader, *, head: bool = False) -> Reply:
    """One response; its body by Content-Length (none for HEAD, 1xx, 204)."""
    block = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = block[:-4].decode("latin-1").split("\r\n")
    version, status, *_ = status_line.split(" ", 2)
    assert version == "HTTP/1.1"
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        assert name.lower() not in headers, f"repeated header {name}"
        headers[name.lower()] = value.strip()
    code = int(status)
    length = 0 if head or code < 200 or code == 204 else int(headers["content-length"])
    return Reply(code, headers, await reader.readexactly(length))


def request(method: str = "GET", target: str = "/", body: bytes = b"", headers: str = "") -> bytes:
    framing = f"content-length: {len(body)}\r\n" if body else ""
    return f"{method} {target} HTTP/1.1\r\nhost: t\r\n{framing}{headers}\r\n".encode() + body


class Client:
    """One connection to the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self, *, head: bool = False) -> Reply:
        return await asyncio.wait_for(read_reply(self.reader, head=head), TIMEOUT)

    async def closed_by_server(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), TIMEOUT) == b""

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


async def echo(request: HttpRequest) -> HttpResponse:
    summary = {
        "method": request.method,
        "target": request.target,
        "path": request.path,
        "query": request.query,
        "headers": [list(pair) for pair in request.headers],
        "body": request.body.decode("latin-1"),
        "peer": request.peer,
    }
    return HttpResponse(200, (("content-type", "application/json"),), json.dumps(summary).encode())


def run(
    handler: Handler, scenario: Callable[[HttpServer], Awaitable[None]], *, max_body: int = 1 << 20
) -> None:
    async def main() -> None:
        async with HttpServer(handler, max_body=max_body) as server:
            await scenario(server)

    asyncio.run(main())


def test_a_request_reaches_the_handler_as_received() -> None:
    async def scenario(server: HttpServer) -> None:
        assert server.port != 0
        client = await Client.connect(server.port)
        await client.send(
            request(
                "POST",
                "/tags/arn%3Aa%2Fb?tagKeys=a&tagKeys=b%20c",
                b'{"x": 1}',
                "X-Amz-Date: 1\r\n",
            )
        )
        reply = await client.reply()
        await client.close()
        assert reply.status == 200
        assert reply.headers["content-length"] == str(len(reply.body))
        seen = reply.json()
        assert isinstance(seen, dict)
        assert seen["method"] == "POST"
        assert seen["target"] == "/tags/arn%3Aa%2Fb?tagKeys=a&tagKeys=b%20c"
        assert seen["path"] == "/tags/arn%3Aa%2Fb"
        assert seen["query"] == "tagKeys=a&tagKeys=b%20c"
        assert seen["headers"] == [["host", "t"], ["content-length", "8"], ["x-amz-date", "1"]]
        assert seen["body"] == '{"x": 1}'
        assert str(seen["peer"]).startswith("127.0.0.1:")

    run(echo, scenario)


def test_keep_alive_serves_requests_one_after_another_on_one_connection() -> None:
    async def scenario(server: HttpServer) -> None:
        client = await Client.connect(server.port)
        for n in range(3):
            await client.send(request("PUT", f"/n/{n}", b"x" * n))
            reply = await client.reply()
            assert reply.json() == {**_summary(reply), "path": f"/n/{n}", "body": "x" * n}
        await client.close()

    run(echo, scenario)


def _summary(reply: Reply) -> dict[str, object]:
    found = reply.json()
    assert isinstance(found, dict)
    return found


def test_pipelined_requests_get_their_responses_in_order() -> None:
    async def scenario(server: HttpServer) -> None:
        client = await Client.connect(server.port)
        await client.send(
            request(target="/1") + request("POST", "/2", b"two") + request(target="/3")
        )
        paths = [_summary(await client.reply())["path"] for _ in range(3)]
        assert paths == ["/1", "/2", "/3"]
        await client.close()

    run(echo, scenario)


def test_connections_are_served_concurrently() -> None:
    """Each handler waits until all three are in flight: served one at a time, none would finish."""
    in_flight = 0
    all_in = asyncio.Event()

    async def gather_then_answer(request: HttpRequest) -> HttpResponse:
        nonlocal in_flight
        in_flight += 1
        if in_flight == 3:
            all_in.set()
        await all_in.wait()
        return HttpResponse(200, body=request.path.encode())

    async def scenario(server: HttpServer) -> None:
        clients = [await Client.connect(server.port) for _ in range(3)]
        for n, client in enumerate(clients):
            await client.send(request(target=f"/{n}"))
        replies = await asyncio.gather(*(client.reply() for client in clients))
        assert [reply.body for reply in replies] == [b"/0", b"/1", b"/2"]
        for client in clients:
            await client.close()

    run(gather_then_answer, scenario)


@pytest.mark.parametrize(
    "garbage",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: a\r\ncontent-length: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"GET / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_malformed_http_gets_400_and_the_connection_closes(
    garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[HttpRequest] = []

    async def record(request: HttpRequest) -> HttpResponse:
        calls.append(request)
        return HttpResponse(200)

    async def scenario(server: HttpServer) -> None:
        client = await Client.connect(server.port)
        await client.send(garbage)
        reply = await client.reply()
        assert reply.status == 400
        assert reply.headers["connection"] == "close"
        assert reply.headers["x-amzn-errortype"] == "InvalidRequestException"
        assert reply.headers["x-amzn-requestid"]
        assert _summary(reply)["code"] == "InvalidRequestException"
        assert await client.closed_by_server()
        await client.close()

    with caplog.at_level(logging.INFO, logger="clicksim.http"):
        run(record, scenario)
    assert calls == []
    assert not any(record.exc_info for record in caplog.records)


def test_a_header_block_too_large_gets_431() -> None:
    async def scenario(server: HttpServer) -> None:
        client = await Client.connect(server.port)
        await client.send(request(headers=f"x-big: {'a' * 70_000}\r\n"))
        assert (await client.reply()).status == 431
        await client.close()

    run(echo, scenario)


def test_a_declared_body_over_the_limit_gets_413_before_it_is_sent() -> None:
    async def scenario(server: HttpServer) -> None:
        client = await Client.connect(server.port)
        await client.send(b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 101\r\n\r\n")
        reply = await client.reply()
        assert reply.status == 413
        assert reply.headers["connection"] == "close"
        assert "100 bytes" in str(_summary(reply)["message"])
        assert await client.closed_by_server()
        await client.close()

    run(echo, scenario, max_body=100)


def test_a_chunked_body_over_the_limit_gets_413() -> None:
    async def scenario(server: HttpServer) -> None:
        client = await Client.connect(server.port)
        chunks = b"".join(b"40\r\n" + b"z" * 64 + b"\r\n" for _ in range(3)) + b"0\r\n\r\n"
        await client.send(
            b"POST / HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n" + chunks
        )
        assert (await client.reply()).status == 413
        assert await client.closed_by_server()
        await client.close()

    run(echo, scenario, max_body=100)


def test_a_body_of_exactly_the_limit_is_served_chunked_or_not() -> None:
    async def scenario(server: HttpServer) -> None:
        client = await Client.connect(server.port)
        await client.send(request("POST", "/", b"y" * 100))
        assert _summary(await client.reply())["body"] == "y" * 100
        await client.send(
            b"POST / HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
            b"32\r\n" + b"a" * 50 + b"\r\n32\r\n" + b"b" * 50 + b"\r\n0\r\n\r\n"
        )
        assert _summary(await client.reply())["body"] == "a" * 50 + "b" * 50
        await client.close()

    run(echo, scenario, max_body=100)


def test_a_failing_handler_gets_500_one_log_line_and_the_server_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def flaky(request: HttpRequest) -> HttpResponse:
        if request.path == "/boom":
            raise RuntimeError("kaput")
        return await echo(request)

    async def scenario(server: HttpServer) -> None:
        client = await Client.connect(server.port)
        await client.send(request(target="/boom"))
        reply = await client.reply()
        assert reply.status == 500
        assert reply.headers["x-amzn-errortype"] == "InternalFailureException"
        assert reply.headers["x-amzn-requestid"]
        assert reply.headers["content-type"] == "application/json"
        assert reply.json() == {"code": "InternalFailureException", "message": "internal failure"}
        # The same connection, then a new one, are still served.
        await client.send(request(target="/after"))
        assert _summary(await client.reply())["path"] == "/after"
        await client.close()
        other = await Client.connect(server.port)
        await other.send(request(target="/again"))
        assert (await other.reply()).status == 200
        await other.close()

    with caplog.at_level(logging.INFO, logger="clicksim.http"):
        run(flaky, scenario)
    (line,) = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert line.getMessage().startswith("GET /boom from 127.0.0.1:")
    assert line.getMessage().endswith("handler failed: RuntimeError: kaput")
    assert not line.exc_info


@pytest.mark.parametrize(
    "bad",
    [
        HttpResponse(204, body=b"no body allowed"),
        HttpResponse(200, (("bad header", "x"),)),
        HttpResponse(101),
    ],
)
def test_a_response_h11_refuses_is_the_handlers_failure(bad: HttpResponse) -> None:
    async def answer(request: HttpRequest) -> HttpResponse:
        return bad

    async def scenario(server: HttpServer) -> None:
        client = await Client.connect(server.port)
        await client.send(request())
        assert (await client.reply()).status == 500
        await client.close()

    run(answer, scenario)


def test_content_length_is_the_servers_and_is_on_every_response_with_a_body() -> None:
    responses = {
        "/empty": HttpResponse(200),
        "/lying": HttpResponse(200, (("Content-Length", "99"), ("x-a", "1")), b"abc"),
        "/none": HttpResponse(204),
    }

    async def answer(request: HttpRequest) -> HttpResponse:
        return responses[request.path]

    async def scenario(server: HttpServer) -> None:
        client = await Client.connect(server.port)
        await client.send(
            request(target="/empty") + request(target="/lying") + request(target="/none")
        )
        empty, lying, none = [await client.reply() for _ in range(3)]
        assert (empty.headers["content-length"], empty.body) == ("0", b"")
        assert (lying.headers["content-length"], lying.headers["x-a"], lying.body) == (
            "3",
            "1",
            b"abc",
        )
        assert none.status == 204
        assert "content-length" not in none.headers
        # HEAD: the length of the body a GET would get, and no body.
        await client.send(request("HEAD", "/lying"))
        head = await client.reply(head=True)
        assert head.headers["content-length"] == "3"
        await client.send(request(target="/empty"))
        assert (await client.reply()).status == 200  # nothing stray was left in between
        await client.close()

    run(answer, scenario)


def test_expect_100_continue_is_answered_before_the_body() -> None:
    async def scenario(server: HttpServer) -> None:
        client = await Client.connect(server.port)
        await client.send(
            b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 4\r\nexpect: 100-continue\r\n\r\n"
        )
        assert (await client.reply()).status == 100
        await client.send(b"data")
        assert _summary(await client.reply())["body"] == "data"
        await client.close()

    run(echo, scenario)


def test_connection_close_and_http_1_0_end_the_connection_after_the_response() -> None:
    async def scenario(server: HttpServer) -> None:
        for data in (request(headers="connection: close\r\n"), b"GET / HTTP/1.0\r\n\r\n"):
            client = await Client.connect(server.port)
            await client.send(data)
            reply = await asyncio.wait_for(client.reader.read(), TIMEOUT)
            assert reply.startswith((b"HTTP/1.1 200 ", b"HTTP/1.0 200 "))
            await client.close()

    run(echo, scenario)


def test_a_client_that_vanishes_mid_request_harms_no_one() -> None:
    async def scenario(server: HttpServer) -> None:
        client = await Client.connect(server.port)
        await client.send(b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 50\r\n\r\nonly part")
        await client.close()
        other = await Client.connect(server.port)
        await other.send(request())
        assert (await other.reply()).status == 200
        await other.close()

    run(echo, scenario)


def test_exit_closes_idle_connections_and_cancels_handlers_in_flight() -> None:
    cancelled = asyncio.Event()
    entered = asyncio.Event()

    async def forever(request: HttpRequest) -> HttpResponse:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    async def main() -> None:
        async with HttpServer(forever) as server:
            idle = await Client.connect(server.port)
            busy = await Client.connect(server.port)
            await busy.send(request())
            await asyncio.wait_for(entered.wait(), TIMEOUT)
            await asyncio.sleep(0)  # let the idle connection be accepted
        assert cancelled.is_set()
        assert await idle.closed_by_server()
        assert await busy.closed_by_server()
        await idle.close()
        await busy.close()
        with pytest.raises(OSError, match=r"Connect call failed|refused"):
            await Client.connect(server.port)

    asyncio.run(main())
