"""A virtual button on a real broker: the pure firmware, driven in real time.

The driver is thin on purpose. It owns a clock, one queue of inputs and the MQTT
client (aiomqtt over paho-mqtt); the firmware decides everything else. Every input,
from the finger, the clock or the network, goes through the one queue, so the
firmware sees them one at a time and in order, as the single-threaded real one does.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Final, Literal

import aiomqtt

from simulator.device.firmware import (
    ButtonState,
    ConnectFailure,
    ConnectRequested,
    DisconnectRequested,
    Event,
    Firmware,
    GaveUp,
    LinkState,
    PoweredOff,
    PublishRequested,
)
from simulator.device.profile import ConnectionMode, MqttVersion
from simulator.protocol import OFFLINE_STATUS, status_topic
from simulator.runtime.connection import BrokerAddress

_FORBIDDEN_CODES: Final = frozenset({4, 5, 0x86, 0x87, 0x8C})
"""CONNACK codes for bad credentials or not authorised (3.1.1 and 5)."""

Input = Callable[[float], list[Event]]

_RESTING: Final = (LinkState.ASLEEP, LinkState.ONLINE, LinkState.DEAD)
"""Link states in which a device waits for nothing but a press."""


class VirtualButton:
    """Drive one firmware against a broker; use as an async context manager."""

    def __init__(
        self,
        firmware: Firmware,
        *,
        broker: BrokerAddress,
        tls_context: ssl.SSLContext | None,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[Event], None] | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.firmware = firmware
        self._broker = broker
        self._tls_context = tls_context
        self._clock = clock
        self._on_event = on_event
        self._connect_timeout = connect_timeout
        self._inputs: asyncio.Queue[Input] = asyncio.Queue()
        self._client: aiomqtt.Client | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._driver: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        """Reads a persistent connection to notice its loss; not work the device waits on."""
        self._idle = asyncio.Event()
        self._button_idle = asyncio.Event()

    async def __aenter__(self) -> VirtualButton:
        self._driver = asyncio.create_task(self._drive(), name=f"button-{self.firmware.device_id}")
        self._feed(self.firmware.power_on)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        background = [t for t in (*self._tasks, self._watcher, self._driver) if t is not None]
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await self._close_client()

    async def perform(self, durations: Sequence[int]) -> None:
        """Press and release in real time (press, gap, press... in milliseconds).

        Returns once the firmware has made up its mind about the gesture, so that the
        next gesture is a new click rather than the second half of a DOUBLE.
        """
        for index, duration in enumerate(durations):
            self._feed(self.firmware.press if index % 2 == 0 else self.firmware.release)
            await asyncio.sleep(duration / 1000)
        self._feed(self.firmware.release if len(durations) % 2 else self.firmware.press)
        await self._button_idle.wait()

    async def settle(self, timeout: float) -> None:
        """Wait until the device has nothing left to do, its LED back off included.

        A failure inside the driver (a firmware that refuses an input) is raised here.
        """
        assert self._driver is not None, "settle() outside 'async with'"
        waiter = asyncio.create_task(self._wait_idle())
        done, _ = await asyncio.wait(
            {waiter, self._driver}, timeout=timeout, return_when="FIRST_COMPLETED"
        )
        if self._driver in done:
            waiter.cancel()
            self._driver.result()
        if waiter not in done:
            waiter.cancel()
            raise TimeoutError(f"{self.firmware.device_id} still busy after {timeout:g} s")

    # --- the driver loop ----------------------------------------------------------

    def _feed(self, step: Input) -> None:
        self._idle.clear()
        self._button_idle.clear()
        self._inputs.put_nowait(step)

    async def _drive(self) -> None:
        current = asyncio.current_task()
        while True:
            if current is not None and current.cancelling():
                # Python 3.11's wait_for returns a result that raced a cancel, dropping
                # the cancel; without this the driver would wait for input forever.
                raise asyncio.CancelledError
            deadline = self.firmware.next_deadline()
            step: Input
            if deadline is None:
                step = await self._inputs.get()
            else:
                try:
                    step = await asyncio.wait_for(
                        self._inputs.get(), max(deadline - self._clock(), 0.0)
                    )
                except TimeoutError:
                    step = self.firmware.timer
            for event in step(self._clock()):
                self._act(event)
            if self._inputs.empty() and self.firmware.button_state is ButtonState.IDLE:
                self._button_idle.set()
            if self._inputs.empty() and not self._tasks and self._is_quiet():
                self._idle.set()

    def _is_quiet(self) -> bool:
        fw = self.firmware
        return (
            fw.next_deadline() is None
            and fw.button_state is ButtonState.IDLE
            and fw.link_state in _RESTING
        )

    async def _wait_idle(self) -> None:
        while True:
            await self._idle.wait()
            if self._inputs.empty() and not self._tasks and self._is_quiet():
                return
            self._idle.clear()

    def _act(self, event: Event) -> None:
        if self._on_event is not None:
            self._on_event(event)
        if isinstance(event, ConnectRequested):
            self._spawn(self._connect())
        elif isinstance(event, PublishRequested):
            self._spawn(self._publish(event))
        elif isinstance(event, DisconnectRequested):
            self._spawn(self._close_client())
        elif isinstance(event, PoweredOff):
            self._spawn(self._drop_client())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            if not done.cancelled() and done.exception() is None:
                self._feed(lambda now: [])  # wake the loop to notice idleness

        task.add_done_callback(finished)

    # --- network work, each ending in one input to the firmware --------------------

    async def _connect(self) -> None:
        await self._close_client()
        profile = self.firmware.profile
        persistent = profile.connection is ConnectionMode.PERSISTENT
        device_id = self.firmware.device_id
        client = aiomqtt.Client(
            self._broker.host,
            self._broker.port,
            identifier=device_id,
            username=self._broker.username,
            password=self._broker.password,
            tls_context=self._tls_context,
            protocol=(
                aiomqtt.ProtocolVersion.V5
                if profile.mqtt.version is MqttVersion.V5
                else aiomqtt.ProtocolVersion.V311
            ),
            keepalive=profile.mqtt.keepalive_s,
            clean_session=None if profile.mqtt.version is MqttVersion.V5 else True,
            will=aiomqtt.Will(status_topic(device_id), OFFLINE_STATUS, qos=1)
            if persistent
            else None,
            timeout=self._connect_timeout,
        )
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            failure = classify_connect_error(exc)
            self._feed(lambda now: self.firmware.connect_failed(now, failure))
            return
        self._client = client
        if persistent:
            self._watcher = asyncio.create_task(self._watch(client))
        self._feed(self.firmware.connected)

    async def _watch(self, client: aiomqtt.Client) -> None:
        """A persistent connection: notice when the broker goes away."""
        with contextlib.suppress(aiomqtt.MqttError):
            async for _ in client.messages:
                pass
        if self._client is client:
            self._client = None
            self._feed(self.firmware.connection_lost)

    async def _publish(self, request: PublishRequested) -> None:
        client = self._client
        seq = request.click.seq
        try:
            if client is None:
                raise aiomqtt.MqttError("not connected")
            await client.publish(
                request.topic, request.payload, qos=request.qos, timeout=self._connect_timeout
            )
        except aiomqtt.MqttError:
            await self._close_client()
            self._feed(self.firmware.connection_lost)
            return
        self._feed(lambda now: self.firmware.published(now, seq))

    async def _drop_client(self) -> None:
        """Power gone: the link dies without a DISCONNECT, so the broker sends the will."""
        client = self._client
        if client is not None:
            # aiomqtt has no public way to abort; paho's socket() is public on its client.
            link = client._client.socket()
            if isinstance(link, socket.socket):
                with contextlib.suppress(OSError):
                    link.shutdown(socket.SHUT_RDWR)
        await self._close_client()

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            await client.__aexit__(None, None, None)
        except (aiomqtt.MqttError, OSError):
            pass
        except asyncio.CancelledError:
            # aiomqtt's exit may end in a CancelledError of its own; ours must go on.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise


def classify_connect_error(exc: aiomqtt.MqttError) -> ConnectFailure:
    """Which LED a failed connect shows: aiomqtt keeps the cause as ``__context__``."""
    if isinstance(exc, aiomqtt.MqttCodeError) and _code(exc.rc) in _FORBIDDEN_CODES:
        return ConnectFailure.FORBIDDEN
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, socket.gaierror):
        return ConnectFailure.DNS
    if isinstance(cause, ssl.SSLError | ConnectionResetError):
        return ConnectFailure.TLS
    return ConnectFailure.IOT_CONNECT


def _code(rc: object) -> int:
    value = getattr(rc, "value", rc)
    return value if isinstance(value, int) else -1


async def press_once(
    firmware: Firmware,
    durations: Sequence[int],
    *,
    broker: BrokerAddress,
    tls_context: ssl.SSLContext | None,
    timeout: float = 60.0,
    clock: Callable[[], float] = time.time,
    on_event: Callable[[Event], None] | None = None,
    until: Literal["idle", "delivered"] = "idle",
) -> None:
    """Wake, perform one gesture, deliver its clicks (or give up), and sleep.

    What ``clicksim click`` and a scenario's click step do. ``until="idle"`` returns
    when the device has nothing left to do, its LED off included; ``"delivered"``
    returns as soon as every click is acknowledged or given up, which spares a
    scenario the LED's seconds. Raises ``TimeoutError`` when that takes longer than
    ``timeout``; the firmware's counters say what was delivered either way.
    """
    changed = asyncio.Event()
    ended: list[Event] = []

    def note(event: Event) -> None:
        if isinstance(event, GaveUp | PoweredOff):
            ended.append(event)
        changed.set()
        if on_event is not None:
            on_event(event)

    async def delivered() -> None:
        while not (ended or _all_delivered(firmware)):
            changed.clear()
            await changed.wait()

    async with VirtualButton(
        firmware, broker=broker, tls_context=tls_context, clock=clock, on_event=note
    ) as button:
        await button.perform(durations)
        if until == "idle":
            await button.settle(timeout)
            return
        try:
            await asyncio.wait_for(delivered(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{firmware.device_id}: clicks not delivered after {timeout:g} s"
            ) from None


def _all_delivered(firmware: Firmware) -> bool:
    counters = firmware.counters
    return counters.published + sum(counters.dropped.values()) >= counters.clicks
