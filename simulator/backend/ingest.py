"""Clicks from an external broker: a persistent session, each message acknowledged after commit.

The backend connects as ``clicksim-backend`` (``BACKEND_CLIENT_CN``) with a fixed
client id and ``clean_session=False``, so the broker keeps its subscriptions and
queues QoS 1 messages while it is away, and subscribes to ``BACKEND_SUBSCRIPTIONS``
at QoS 1. Every message goes through the same ``PublishHook`` as the embedded
broker's (``client_id`` is ``None``: a broker does not say who published), one at a
time and in order, and is acknowledged only when the hook has returned. If the hook
raises, the message is not acknowledged and the consumer reconnects: MQTT 3.1.1
brokers send unacknowledged messages again only on a new connection of the session.
The connection is kept up with exponential backoff between attempts.

aiomqtt 2.5.1 has no manual acknowledgement; the paho client it wraps has. Its
``_client`` (paho) gets ``manual_ack_set(True)``, so paho no longer sends the PUBACK
when it hands a message over, and ``ack(mid, qos)`` sends it after the hook.

What "the broker keeps" depends on the broker: mosquitto keeps a persistent session
in memory (on disk only with ``persistence true``) and queues up to
``max_queued_messages`` (1000 by default) messages for it while it is offline.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from types import TracebackType
from typing import Final, NamedTuple, Self

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode

from simulator.broker.hook import Publish, PublishHook
from simulator.device.identity import BACKEND_CLIENT_CN
from simulator.protocol import BACKEND_SUBSCRIPTIONS
from simulator.runtime.connection import parse_broker_url

__all__ = ["ExternalIngest"]

LOGGER: Final = logging.getLogger("clicksim.ingest")
_SUBSCRIBE_QOS: Final = 1
_REFUSED: Final = 0x80
"""A SUBACK return code at or above this refuses the subscription."""


class _Ending(NamedTuple):
    """Why a connection ended, and whether it got anywhere (which resets the backoff)."""

    reason: str
    progress: bool
    level: int = logging.WARNING


def _refused(code: int | ReasonCode) -> bool:
    return code.is_failure if isinstance(code, ReasonCode) else code >= _REFUSED


class ExternalIngest:
    """A background MQTT consumer that feeds ``hook`` from an external broker.

    Use it as an async context manager; it connects in the background and keeps
    reconnecting until the ``async with`` ends (``wait_connected`` waits for the
    subscriptions)::

        async with ExternalIngest("mqtts://broker:8883", context, store_click) as ingest:
            await ingest.wait_connected()

    ``tls_context`` is required for ``mqtts://`` (it carries the backend identity,
    e.g. ``simulator.runtime.connection.client_tls_context`` with ``backend.crt``)
    and refused for ``mqtt://``. ``retry_delay`` doubles after each failed attempt up
    to ``max_retry_delay``, and starts over once a connection made progress.
    """

    def __init__(
        self,
        broker_url: str,
        tls_context: ssl.SSLContext | None,
        hook: PublishHook,
        *,
        client_id: str = BACKEND_CLIENT_CN,
        log: logging.Logger = LOGGER,
        retry_delay: float = 0.5,
        max_retry_delay: float = 30.0,
        keepalive: int = 60,
    ) -> None:
        self.address = parse_broker_url(broker_url)
        if self.address.tls and tls_context is None:
            raise ValueError(f"{self.address}: mqtts:// needs a TLS context (the backend identity)")
        if not self.address.tls and tls_context is not None:
            raise ValueError(f"{self.address}: a TLS context needs an mqtts:// URL")
        if not 0 < retry_delay <= max_retry_delay:
            raise ValueError("retry delays must satisfy 0 < retry_delay <= max_retry_delay")
        self.client_id = client_id
        self.acknowledged = 0
        """Messages acknowledged to the broker since this object was made."""
        self._tls_context = tls_context
        self._hook = hook
        self._log = log
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._keepalive = keepalive
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """Connected and subscribed right now."""
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        """Wait until the consumer is connected and subscribed."""
        await self._connected.wait()

    async def __aenter__(self) -> Self:
        if self._task is not None:
            raise RuntimeError("the consumer is already running")
        self._task = asyncio.create_task(self._run(), name=f"ingest {self.address}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()  # a message in the hook stays unacknowledged: it comes again
        await asyncio.wait([task])
        if not task.cancelled() and (failure := task.exception()) is not None:
            raise failure  # a bug, not a broker's trouble: those are retried

    async def _run(self) -> None:
        failures = 0
        while True:
            ending = await self._connection()
            failures = 1 if ending.progress else failures + 1
            delay = min(self._max_retry_delay, self._retry_delay * 2 ** (failures - 1))
            self._log.log(ending.level, "%s; reconnecting in %.3g s", ending.reason, delay)
            await asyncio.sleep(delay)

    async def _connection(self) -> _Ending:
        """One connection, from CONNECT to its end; the reason it ended."""
        client = aiomqtt.Client(
            self.address.host,
            self.address.port,
            identifier=self.client_id,
            clean_session=False,
            username=self.address.username,
            password=self.address.password,
            tls_context=self._tls_context,
            keepalive=self._keepalive,
        )
        client._client.manual_ack_set(True)  # aiomqtt 2.5 has no manual ack of its own
        subscribed, acknowledged = False, 0
        try:
            async with client:
                for topic_filter in BACKEND_SUBSCRIPTIONS:
                    granted = await client.subscribe(topic_filter, qos=_SUBSCRIBE_QOS)
                    if any(_refused(code) for code in granted):
                        reason = f"{self.address} refused the subscription to {topic_filter!r}"
                        return _Ending(reason, progress=False, level=logging.ERROR)
                subscribed = True
                self._connected.set()
                self._log.info("consuming from %s as %r", self.address, self.client_id)
                messages = client.messages
                while True:  # until the connection breaks (MqttError) or the hook fails
                    message = await anext(messages)
                    topic = message.topic.value
                    publish = Publish(
                        topic=topic, payload=message.payload, qos=message.qos, client_id=None
                    )
                    try:
                        await self._hook(publish)
                    except Exception as exc:  # not taken: the broker sends it again
                        reason = (
                            f"message on {topic!r} not acknowledged: "
                            f"the publish hook failed ({exc!r})"
                        )
                        return _Ending(reason, progress=acknowledged > 0, level=logging.ERROR)
                    client._client.ack(message.mid, message.qos)
                    acknowledged += 1
                    self.acknowledged += 1
        except aiomqtt.MqttError as exc:
            what = "lost the connection to" if subscribed else "cannot connect to"
            return _Ending(f"{what} {self.address}: {exc}", progress=subscribed)
        finally:
            self._connected.clear()
