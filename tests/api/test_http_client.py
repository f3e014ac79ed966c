"""simulator.api.http_client against a real server on 127.0.0.1 (and some bad ones)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from simulator.api.http_client import HttpClientError, HttpReply, display_url, send
from simulator.workspace import CaFolder
from tests.http_receiver import Answer, Received, Receiver
from tests.support import free_port


def test_post_sends_body_host_length_and_reads_the_reply() -> None:
    async def respond(request: Received) -> Answer:
        return Answer(201, headers=(("X-Reply", "yes"),), body=b'{"ok":true}')

    async def main() -> tuple[Receiver, HttpReply]:
        async with Receiver(respond) as receiver:
            reply = await send(
                receiver.url("/hook/a?x=1&y=%2F"),
                headers=[("Content-Type", "application/json")],
                body=b'{"a":1}',
            )
        return receiver, reply

    receiver, reply = asyncio.run(main())
    assert (reply.status, reply.body, reply.header("x-reply")) == (201, b'{"ok":true}', "yes")
    [request] = receiver.requests
    assert (request.method, request.target, request.body) == (
        "POST",
        "/hook/a?x=1&y=%2F",
        b'{"a":1}',
    )
    assert request.header("host") == f"127.0.0.1:{receiver.port}"
    assert request.header("content-length") == "7"
    assert request.header("content-type") == "application/json"


def test_get_without_body_sends_no_content_length_and_keeps_a_given_host() -> None:
    async def main() -> Receiver:
        async with Receiver() as receiver:
            reply = await send(receiver.url(), method="GET", headers=[("Host", "api.example")])
            assert reply.status == 200
        return receiver

    [request] = asyncio.run(main()).requests
    assert (request.method, request.target) == ("GET", "/")
    assert request.header("content-length") is None
    assert [value for name, value in request.headers if name == "host"] == ["api.example"]


def test_framing_headers_are_refused() -> None:
    with pytest.raises(ValueError, match="Content-Length"):
        asyncio.run(send("http://127.0.0.1:1/", headers=[("Content-Length", "3")], body=b"abc"))


def test_https_with_a_private_ca(ca_folder: CaFolder) -> None:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(*ca_folder.identity_files("server"))
    trusting = ssl.create_default_context(cafile=ca_folder.certificate)

    async def main() -> tuple[int, str]:
        async with Receiver(tls=server_tls) as receiver:
            reply = await send(receiver.url("/h"), ssl_context=trusting, timeout=5)
            with pytest.raises(HttpClientError) as refused:
                await send(receiver.url("/h"), timeout=5)  # the system store does not know it
        return reply.status, refused.value.cause

    status, cause = asyncio.run(main())
    assert status == 200
    assert cause.startswith("TLS failed: CERTIFICATE_VERIFY_FAILED")


def _error(url: str) -> HttpClientError:
    with pytest.raises(HttpClientError) as caught:
        asyncio.run(send(url))
    return caught.value


def test_refused_names_the_url_without_query_or_userinfo() -> None:
    port = free_port()
    error = _error(f"http://user:secret@127.0.0.1:{port}/hook?token=secret")
    assert str(error) == f"http://127.0.0.1:{port}/hook: connection refused"
    assert "\n" not in str(error)


@contextlib.asynccontextmanager
async def _raw_server(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    """A TCP server that runs ``handle`` and then closes the connection."""
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handle(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/x"
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def _error_from(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    *,
    timeout: float = 10.0,
) -> HttpClientError:
    async def main() -> HttpClientError:
        async with _raw_server(handle) as url:
            with pytest.raises(HttpClientError) as caught:
                await send(url, timeout=timeout)
        return caught.value

    return asyncio.run(main())


def test_timeout_when_the_server_never_answers() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    error = _error_from(silent, timeout=0.2)
    assert error.cause == "no complete response within 0.2 s"


def test_garbage_response_is_malformed() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SMTP ready, not HTTP\r\n\r\n")
        await writer.drain()

    assert _error_from(garbage).cause.startswith("malformed response: ")


def test_close_before_a_response_is_malformed() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")

    assert _error_from(hang_up).cause == "malformed response: connection closed before a response"


def test_truncated_body_is_malformed() -> None:
    async def truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()

    assert _error_from(truncated).cause.startswith("malformed response: ")


def test_chunked_and_informational_responses_are_read_whole() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        await writer.drain()

    async def main() -> HttpReply:
        async with _raw_server(chunked) as url:
            return await send(url, method="GET")

    reply = asyncio.run(main())
    assert (reply.status, reply.body) == (200, b"abcde")


def test_a_body_over_max_body_is_refused() -> None:
    async def big(request: Received) -> Answer:
        return Answer(200, body=b"x" * 100)

    async def main() -> HttpClientError:
        async with Receiver(big) as receiver:
            assert (await send(receiver.url(), max_body=100)).body == b"x" * 100
            with pytest.raises(HttpClientError) as caught:
                await send(receiver.url(), max_body=99)
        return caught.value

    assert asyncio.run(main()).cause == "response body over 99 bytes"


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("ftp://127.0.0.1/x", "not an http:// or https:// URL with a host"),
        ("http:///x", "not an http:// or https:// URL with a host"),
        ("http://127.0.0.1:99999/x", "the port is not a number in 0..65535"),
        ("http://nonexistent.invalid/x", "cannot resolve nonexistent.invalid: "),
    ],
)
def test_unusable_urls(url: str, cause: str) -> None:
    assert _error(url).cause.startswith(cause)


def test_display_url() -> None:
    assert display_url("https://u:p@h.example:8443/a/b?token=x#f") == "https://h.example:8443/a/b"
