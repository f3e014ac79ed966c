"""From MQTT publish to committed event: decode, batch, commit, then let the broker ack.

The broker (embedded, or the external-broker consumer) awaits :meth:`ClickRecorder.record`
for each publish and acknowledges it only when that returns, so an acknowledged click
is a committed click. Publishes that arrive while a commit runs wait for the next
one: one transaction then holds many clicks (group commit), which is where the
ingest rate comes from.

A publish that is not a valid click (not JSON, a device id other than its topic's, a
wrong certificateId, a device not in the inventory) is counted and logged in one line,
then acknowledged: redelivering it would never make it valid.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Self

from simulator import protocol
from simulator.backend.service import DevicesService
from simulator.broker.hook import Publish

MAX_BATCH: Final = 1000

log = logging.getLogger("clicksim.ingest")


@dataclass(slots=True)
class IngestCounters:
    stored: int = 0
    duplicates: int = 0
    rejected: collections.Counter[str] = field(default_factory=collections.Counter)
    """Refused publishes by reason: malformed, unknown-device, wrong-certificate, other-device."""

    def as_dict(self) -> dict[str, object]:
        return {
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": dict(self.rejected),
        }


@dataclass(slots=True)
class _Pending:
    click: protocol.ReceivedClick
    done: asyncio.Future[None]


class ClickRecorder:
    """The ``on_publish`` hook of the ingest; an async context manager that runs the committer."""

    def __init__(
        self,
        service: DevicesService,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._service = service
        self._clock = clock
        self._queue: collections.deque[_Pending] = collections.deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.counters = IngestCounters()

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._commit_forever(), name="clicksim-ingest-commit")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._queue:
            # Never acknowledged: the device (or the broker's session) sends it again.
            self._queue.popleft().done.cancel()

    async def record(self, publish: Publish) -> None:
        """Return once the click is committed (or refused for good); raise if the commit failed."""
        if publish.topic.endswith("/status"):
            return
        try:
            click = protocol.decode_click(publish.topic, publish.payload)
        except protocol.OtherDeviceError as exc:
            self._reject("other-device", f"dropped publish on {publish.topic}: {exc}")
            return
        except protocol.ProtocolError as exc:
            self._reject("malformed", f"dropped publish on {publish.topic}: {exc}")
            return
        if publish.client_id is not None and publish.client_id != click.device_id:
            self._reject(
                "other-device", f"dropped publish on {publish.topic}: sent by {publish.client_id}"
            )
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(click, done))
        self._wakeup.set()
        await done

    def _reject(self, reason: str, message: str) -> None:
        self.counters.rejected[reason] += 1
        log.warning("ingest: %s", message)

    async def _commit_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                count = min(len(self._queue), MAX_BATCH)
                batch = [self._queue.popleft() for _ in range(count)]
                self._commit(batch)
                # Let the publishers of this batch ack, and new publishes queue up.
                await asyncio.sleep(0)

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            outcomes = self._service.record_clicks(
                [pending.click for pending in batch], received_at=self._clock()
            )
        except Exception as exc:  # the database failed: nobody gets an ack
            log.error("ingest: commit of %d clicks failed: %s", len(batch), exc)
            for pending in batch:
                if not pending.done.done():
                    pending.done.set_exception(IngestFailed(str(exc)))
            return
        for pending, outcome in zip(batch, outcomes, strict=True):
            if outcome.stored:
                self.counters.stored += 1
            elif outcome.reason == "duplicate":
                self.counters.duplicates += 1
            else:
                self._reject(outcome.reason, f"dropped click: {outcome.detail}")
            if not pending.done.done():
                pending.done.set_result(None)


class IngestFailed(Exception):
    """The commit failed; the publish must not be acknowledged."""
