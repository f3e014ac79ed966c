"""Callback delivery: every click and health event POSTed at least once, in order per device.

The backend commits each callback POST to a durable outbox in the same transaction
as the event that caused it; ``Deliverer`` then drains the outbox in the background.
A delivery leaves the outbox only once the receiver answered 2xx, so a crash, a
shutdown or a receiver that is down only delays it (at least once: a POST cut off
by a crash or a shutdown is sent again, so a receiver may see it twice).

Per device the outbox is a queue: only its head is ever attempted, and it is retried
(with capped exponential backoff, forever) until delivered, so a receiver sees a
device's events in the order they happened. Devices do not wait for each other:
up to ``concurrency`` heads are in flight at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Protocol

from simulator import __version__
from simulator.api.http_client import HttpClientError, display_url, send

LOGGER: Final = logging.getLogger("clicksim.webhooks")
USER_AGENT: Final = f"clicksim-backend/{__version__}"


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    device_id: str
    url: str
    body: bytes
    """A JSON document, POSTed as is."""
    attempts: int
    """Failed attempts so far."""


class Outbox(Protocol):
    """The durable queue of deliveries (the backend's store implements it).

    A delivery's *head* status: it is the oldest pending delivery (lowest id) of its
    device. Only heads are ever handed out, so per-device order holds.
    """

    def due(self, now: float, limit: int) -> list[Delivery]:
        """Up to ``limit`` heads whose ``next_at <= now`` (a new delivery's is its
        enqueue time), oldest ``next_at`` first."""
        ...

    def next_due_at(self, after: float) -> float | None:
        """The smallest ``next_at > after`` among heads, or None.

        Strictly after: a head due already is either handed out by ``due`` or in
        flight, and the deliverer must not wake for it again.
        """
        ...

    def delivered(self, delivery_id: int) -> None:
        """Remove it for good (durably, before returning); its device's next becomes head."""
        ...

    def retry_later(self, delivery_id: int, *, next_at: float, error: str) -> None:
        """Keep it as head: ``attempts += 1``, set ``next_at`` and the last error (durably)."""
        ...


@dataclass(frozen=True, slots=True)
class Backoff:
    """Seconds to wait after the n-th failed attempt: ``first * factor**(n-1)``, at most ``max``.

    No jitter: retries are per device and few, and deterministic delays keep tests exact.
    """

    first: float = 0.5
    factor: float = 2.0
    max: float = 60.0

    def __post_init__(self) -> None:
        if not (0 < self.first <= self.max and self.factor >= 1 and math.isfinite(self.max)):
            raise ValueError(f"need 0 < first <= max (finite) and factor >= 1, got {self}")

    def delay(self, failures: int) -> float:
        try:
            return min(self.max, self.first * self.factor ** max(0, failures - 1))
        except OverflowError:  # a receiver down for days: thousands of failures
            return self.max


class Deliverer:
    """``async with Deliverer(outbox) as deliverer``: deliver in the background until exit.

    Call ``wake()`` after committing new deliveries; otherwise it sleeps until the
    outbox's next due time. Exit cancels POSTs in flight: they stay in the outbox
    and are sent again by the next run.
    """

    def __init__(
        self,
        outbox: Outbox,
        *,
        clock: Callable[[], float] = time.time,
        backoff: Backoff = Backoff(),
        concurrency: int = 16,
        timeout: float = 10.0,
        log: logging.Logger = LOGGER,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._outbox = outbox
        self._clock = clock
        self._backoff = backoff
        self._concurrency = concurrency
        self._timeout = timeout
        self._log = log
        self._wake = asyncio.Event()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        """Device id -> the task POSTing its head."""
        self._runner: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """New deliveries were committed: look at the outbox now (from the loop's thread)."""
        self._wake.set()

    async def __aenter__(self) -> Deliverer:
        self._runner = asyncio.create_task(self._run(), name="clicksim-webhooks")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tasks = [task for task in (self._runner, *self._in_flight.values()) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._runner = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                delay = self._dispatch()
            except Exception:  # the store failed (disk full, locked): try again soon
                self._log.exception("webhook outbox failed; retrying in %g s", self._backoff.first)
                delay = self._backoff.first
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _dispatch(self) -> float | None:
        """Start POSTs for due heads; return how long to sleep (None: until woken)."""
        now = self._clock()
        free = self._concurrency - len(self._in_flight)
        # Asking for `concurrency` heads returns every due one or enough that, less
        # those in flight, `free` remain.
        for delivery in self._outbox.due(now, self._concurrency) if free else ():
            if free == 0:
                break
            if delivery.device_id in self._in_flight:
                continue
            self._in_flight[delivery.device_id] = asyncio.create_task(
                self._deliver(delivery), name=f"clicksim-webhook-{delivery.id}"
            )
            free -= 1
        if free == 0:
            return None  # a finished POST wakes the loop
        next_at = self._outbox.next_due_at(now)
        return None if next_at is None else max(0.0, next_at - self._clock())

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            error = await self._attempt(delivery)
            if error is None:
                self._outbox.delivered(delivery.id)
                return
            delay = self._backoff.delay(delivery.attempts + 1)
            self._outbox.retry_later(delivery.id, next_at=self._clock() + delay, error=error)
            self._log.warning(
                "webhook %s (device %s, attempt %d) failed: %s; retrying in %g s",
                display_url(delivery.url),
                delivery.device_id,
                delivery.attempts + 1,
                error,
                delay,
            )
        except Exception:  # the store failed: the delivery stays pending as it was
            self._log.exception("webhook outbox failed recording delivery %d", delivery.id)
            await asyncio.sleep(self._backoff.first)  # not a hot loop on a failing store
        finally:
            del self._in_flight[delivery.device_id]
            self._wake.set()

    async def _attempt(self, delivery: Delivery) -> str | None:
        """POST once: None when delivered, else what went wrong (no URL, no body)."""
        try:
            reply = await send(
                delivery.url,
                headers=(
                    ("Content-Type", "application/json"),
                    ("User-Agent", USER_AGENT),
                ),
                body=delivery.body,
                timeout=self._timeout,
            )
        except HttpClientError as exc:
            return exc.cause
        return None if 200 <= reply.status < 300 else f"HTTP {reply.status}"
