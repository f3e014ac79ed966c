"""What a broker hands the backend: one publish, before anyone acknowledges it.

Both ingest paths take the same hook: the embedded broker awaits it before it sends
the publisher's PUBACK, and ``simulator.backend.ingest`` before it acknowledges the
external broker's delivery. The hook returning means "committed"; the hook raising
means "not taken": the message is not acknowledged and comes back (at least once).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Publish", "PublishHook"]


@dataclass(frozen=True, slots=True)
class Publish:
    """One application message as a publisher sent it.

    ``client_id`` is the publisher's verified client id (its certificate CN) when the
    embedded broker saw it; ``None`` from an external broker, which does not say.
    """

    topic: str
    payload: bytes
    qos: int
    client_id: str | None


PublishHook = Callable[[Publish], Awaitable[None]]
"""Awaited once per publish; may be awaited again for the same message (at least once)."""
