"""The webhook deliverer against a real HTTP receiver and an in-memory outbox."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from simulator.backend.webhooks import Backoff, Deliverer, Delivery
from tests.http_receiver import Answer, Received, Receiver
from tests.support import free_port

FAST: Backoff = Backoff(first=0.02, factor=2, max=0.1)


class MemoryOutbox:
    """The ``Outbox`` contract in memory; refuses to settle anything but a head."""

    def __init__(self) -> None:
        self.pending: dict[int, Delivery] = {}
        self.next_at: dict[int, float] = {}
        self.failures: list[tuple[int, str, float]] = []
        """(delivery id, error, next_at) per retry_later, in order."""
        self.fail_next_due = False
        self._ids = itertools.count(1)

    def add(self, device_id: str, url: str, body: bytes, *, at: float | None = None) -> int:
        delivery = Delivery(next(self._ids), device_id, url, body, attempts=0)
        self.pending[delivery.id] = delivery
        self.next_at[delivery.id] = time.time() if at is None else at
        return delivery.id

    def _heads(self) -> list[Delivery]:
        heads: dict[str, Delivery] = {}
        for delivery in self.pending.values():  # in id order
            heads.setdefault(delivery.device_id, delivery)
        return list(heads.values())

    def due(self, now: float, limit: int) -> list[Delivery]:
        if self.fail_next_due:
            self.fail_next_due = False
            raise OSError("disk I/O error")
        ready = [head for head in self._heads() if self.next_at[head.id] <= now]
        return sorted(ready, key=lambda head: (self.next_at[head.id], head.id))[:limit]

    def next_due_at(self, after: float) -> float | None:
        later = [self.next_at[head.id] for head in self._heads()]
        return min((at for at in later if at > after), default=None)

    def delivered(self, delivery_id: int) -> None:
        assert delivery_id in {head.id for head in self._heads()}
        del self.pending[delivery_id]

    def retry_later(self, delivery_id: int, *, next_at: float, error: str) -> None:
        assert delivery_id in {head.id for head in self._heads()}
        delivery = self.pending[delivery_id]
        self.pending[delivery_id] = replace(delivery, attempts=delivery.attempts + 1)
        self.next_at[delivery_id] = next_at
        self.failures.append((delivery_id, error, next_at))


async def eventually(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def bodies(receiver: Receiver, path: str) -> list[bytes]:
    return [request.body for request in receiver.requests if request.target.startswith(path)]


def test_delivered_once_on_200_as_json_from_clicksim() -> None:
    outbox = MemoryOutbox()

    async def main() -> Receiver:
        async with Receiver() as receiver, Deliverer(outbox, backoff=FAST):
            outbox.add("G030A1", receiver.url("/hook?k=v"), b'{"n":1}')
            await eventually(lambda: not outbox.pending)
            await asyncio.sleep(0.05)  # nothing more comes
        return receiver

    [request] = asyncio.run(main()).requests
    assert (request.method, request.target, request.body) == ("POST", "/hook?k=v", b'{"n":1}')
    assert request.header("content-type") == "application/json"
    assert (request.header("user-agent") or "").startswith("clicksim")
    assert outbox.failures == []


def test_500_then_200_is_retried_after_the_backoff(caplog: pytest.LogCaptureFixture) -> None:
    outbox = MemoryOutbox()
    seen: list[float] = []

    async def flaky(request: Received) -> Answer:
        seen.append(time.time())
        return Answer(500 if len(seen) == 1 else 200)

    async def main() -> None:
        async with Receiver(flaky) as receiver, Deliverer(outbox, backoff=FAST):
            outbox.add("G030A1", receiver.url("/hook?token=secret"), b'{"secret":"body"}')
            await eventually(lambda: not outbox.pending)

    with caplog.at_level(logging.WARNING, logger="clicksim.webhooks"):
        asyncio.run(main())
    assert len(seen) == 2
    [(_, error, next_at)] = outbox.failures
    assert error == "HTTP 500"
    assert seen[1] >= next_at >= seen[0] + FAST.first
    [line] = caplog.messages
    assert "/hook (device G030A1, attempt 1) failed: HTTP 500; retrying in 0.02 s" in line
    assert "secret" not in line


def test_refused_until_the_receiver_starts() -> None:
    outbox = MemoryOutbox()
    port = free_port()

    async def main() -> Receiver:
        async with Deliverer(outbox, backoff=FAST):
            outbox.add("G030A1", f"http://127.0.0.1:{port}/hook", b"{}")
            await eventually(lambda: len(outbox.failures) >= 2)
            async with Receiver(port=port) as receiver:
                await eventually(lambda: not outbox.pending)
        return receiver

    assert len(asyncio.run(main()).requests) == 1
    assert {error for _, error, _ in outbox.failures} == {"connection refused"}
    attempts = [next_at for _, _, next_at in outbox.failures]
    assert attempts == sorted(attempts)


def test_order_per_device_holds_under_failures() -> None:
    outbox = MemoryOutbox()
    failures_left = {b"a1": 2, b"b1": 1}
    active: set[str] = set()
    overlaps: list[bytes] = []  # (an assert here would only fail the receiver's task)

    async def respond(request: Received) -> Answer:
        if request.target in active:
            overlaps.append(request.body)
        active.add(request.target)
        await asyncio.sleep(0.01 if request.target == "/A" else 0.03)  # out of step
        active.discard(request.target)
        left = failures_left.get(request.body, 0)
        failures_left[request.body] = left - 1
        return Answer(503 if left > 0 else 200)

    async def main() -> Receiver:
        async with Receiver(respond) as receiver:
            for device, body in [("A", b"a1"), ("B", b"b1"), ("A", b"a2"), ("B", b"b2")]:
                outbox.add(device, receiver.url(f"/{device}"), body)
            outbox.add("A", receiver.url("/A"), b"a3")
            async with Deliverer(outbox, backoff=FAST, concurrency=8):
                await eventually(lambda: not outbox.pending)
        return receiver

    receiver = asyncio.run(main())
    assert overlaps == []
    assert bodies(receiver, "/A") == [b"a1", b"a1", b"a1", b"a2", b"a3"]
    assert bodies(receiver, "/B") == [b"b1", b"b1", b"b2"]


@pytest.mark.parametrize("trouble", ["hangs", "fails"])
def test_a_stuck_device_does_not_block_others(trouble: str) -> None:
    outbox = MemoryOutbox()

    async def respond(request: Received) -> Answer:
        if request.target == "/stuck":
            if trouble == "hangs":
                await asyncio.Event().wait()
            return Answer(500)
        return Answer(204)

    async def main() -> None:
        async with Receiver(respond) as receiver, Deliverer(outbox, backoff=FAST):
            stuck = outbox.add("A", receiver.url("/stuck"), b"a1")
            outbox.add("A", receiver.url("/fine"), b"a2")  # waits behind a1
            for n in range(3):
                outbox.add("B", receiver.url("/fine"), b"b%d" % n)
            await eventually(lambda: set(outbox.pending) == {stuck, stuck + 1})
            await asyncio.sleep(0.1)
            assert bodies(receiver, "/fine") == [b"b0", b"b1", b"b2"]
            if trouble == "hangs":  # and is not posted again while in flight
                assert bodies(receiver, "/stuck") == [b"a1"]
            else:
                assert len(outbox.failures) >= 2

    asyncio.run(main())


def test_exit_while_a_post_hangs_leaves_it_pending_and_the_next_run_sends_it() -> None:
    outbox = MemoryOutbox()
    hang = True

    async def respond(request: Received) -> Answer:
        if hang:
            await asyncio.Event().wait()
        return Answer(200)

    async def main() -> Receiver:
        nonlocal hang
        async with Receiver(respond) as receiver:
            delivery_id = outbox.add("A", receiver.url(), b"a1")
            async with Deliverer(outbox, backoff=FAST):
                await eventually(lambda: len(receiver.requests) == 1)
            assert outbox.pending[delivery_id].attempts == 0
            assert outbox.failures == []
            hang = False
            async with Deliverer(outbox, backoff=FAST):
                await eventually(lambda: not outbox.pending)
        return receiver

    assert bodies(asyncio.run(main()), "/") == [b"a1", b"a1"]  # at least once


def test_sleeps_until_woken_or_due() -> None:
    outbox = MemoryOutbox()

    async def main() -> None:
        async with Receiver() as receiver, Deliverer(outbox, backoff=FAST) as deliverer:
            await asyncio.sleep(0.02)  # idle: nothing due, nothing scheduled
            outbox.add("A", receiver.url(), b"now")
            await asyncio.sleep(0.1)
            assert outbox.pending, "delivered without a wake()"
            deliverer.wake()
            await eventually(lambda: not outbox.pending, timeout=0.1)
            outbox.add("B", receiver.url(), b"later", at=time.time() + 0.1)
            deliverer.wake()
            await asyncio.sleep(0.05)
            assert outbox.pending
            await eventually(lambda: not outbox.pending, timeout=0.2)

    asyncio.run(main())


def test_concurrency_bounds_posts_in_flight() -> None:
    outbox = MemoryOutbox()
    release = asyncio.Event()

    async def held(request: Received) -> Answer:
        await release.wait()
        return Answer(200)

    async def main() -> None:
        async with Receiver(held) as receiver:
            for device in "ABC":
                outbox.add(device, receiver.url(), device.encode())
            async with Deliverer(outbox, backoff=FAST, concurrency=2):
                await eventually(lambda: len(receiver.requests) == 2)
                await asyncio.sleep(0.05)
                assert len(receiver.requests) == 2
                release.set()
                await eventually(lambda: not outbox.pending)
            assert sorted(bodies(receiver, "/")) == [b"A", b"B", b"C"]

    asyncio.run(main())


def test_an_outbox_failure_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    outbox = MemoryOutbox()
    outbox.fail_next_due = True

    async def main() -> None:
        async with Receiver() as receiver:
            outbox.add("A", receiver.url(), b"a1")
            async with Deliverer(outbox, backoff=FAST):
                await eventually(lambda: not outbox.pending)

    with caplog.at_level(logging.ERROR, logger="clicksim.webhooks"):
        asyncio.run(main())
    assert caplog.messages == ["webhook outbox failed; retrying in 0.02 s"]


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff()
    assert [backoff.delay(n) for n in range(1, 10)] == [0.5, 1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff.delay(100_000) == 60
    with pytest.raises(ValueError, match="first <= max"):
        Backoff(first=2, max=1)
