"""The button firmware as a pure state machine (h11 / aioquic style).

Inputs are method calls that carry the time (``now``, POSIX seconds): the button
(``press``, ``release``), the clock (``timer``, asked for by ``next_deadline``) and
the network as a driver saw it (``connected``, ``connect_failed``, ``published``,
``connection_lost``). Each call returns the events it caused, in order: clicks
recognised, LED changes, and requests for the driver (connect, publish, disconnect).
The firmware never reads a clock, opens a socket or sleeps.

Two machines run side by side, each with its transition table below:

* the **button** turns press timings into SINGLE, DOUBLE and LONG clicks by the
  profile's debounce, double-click window and long-press threshold;
* the **link** wakes, connects, publishes every queued click at QoS 1, and sleeps
  (``per-click``) or stays online (``persistent``), backing off with full jitter when
  a connection fails and keeping undelivered clicks, in order, up to a bound.

An input that cannot happen in the current state raises ``InvalidTransition``,
which names the machine, the state and the input.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from simulator.device.battery import Action, Battery, TimeWentBackwards
from simulator.device.profile import ConnectionMode, Profile
from simulator.protocol import CLICK_QOS, Click, ClickType, encode_click


class ButtonState(enum.Enum):
    IDLE = "idle"
    PRESSED = "pressed"
    """Down for the first time; LONG if held past the threshold."""
    RELEASED = "released"
    """Up after a short press, waiting out the double-click window."""
    PRESSED_AGAIN = "pressed-again"
    """Down a second time within the window: a DOUBLE once released."""
    HELD_LONG = "held-long"
    """A LONG click was recognised; waiting for the release."""


class LinkState(enum.Enum):
    ASLEEP = "asleep"
    CONNECTING = "connecting"
    BACKOFF = "backoff"
    ONLINE = "online"
    """Connected with nothing to send (persistent devices)."""
    PUBLISHING = "publishing"
    """A click is out; waiting for its PUBACK."""
    DEAD = "dead"
    """Battery or plan exhausted: the device does nothing, ever again."""


class Led(enum.StrEnum):
    """What the LED shows, as the Enterprise Button does.

    The colours are documented for the real device; which red blink pattern goes with
    which failure is not, so clicksim names the failure instead of counting blinks.
    """

    OFF = "off"
    CONNECTING = "blinking-white"
    DELIVERED = "solid-green"
    WIFI_FAILED = "red-wifi"
    DHCP_FAILED = "red-dhcp"
    DNS_FAILED = "red-dns"
    TLS_FAILED = "red-tls"
    IOT_CONNECT_FAILED = "red-iot-connect"
    FORBIDDEN = "red-403"


class ConnectFailure(enum.StrEnum):
    """Why a connection attempt failed, as a driver tells the firmware."""

    WIFI = "wifi"
    DHCP = "dhcp"
    DNS = "dns"
    TLS = "tls"
    IOT_CONNECT = "iot-connect"
    FORBIDDEN = "forbidden"

    @property
    def led(self) -> Led:
        return _FAILURE_LEDS[self]


_FAILURE_LEDS: Final = {
    ConnectFailure.WIFI: Led.WIFI_FAILED,
    ConnectFailure.DHCP: Led.DHCP_FAILED,
    ConnectFailure.DNS: Led.DNS_FAILED,
    ConnectFailure.TLS: Led.TLS_FAILED,
    ConnectFailure.IOT_CONNECT: Led.IOT_CONNECT_FAILED,
    ConnectFailure.FORBIDDEN: Led.FORBIDDEN,
}


class DropReason(enum.StrEnum):
    QUEUE_FULL = "queue-full"
    """The offline queue was full: the newest click is the one dropped."""
    BATTERY_EMPTY = "battery-empty"
    """The device died with the click still undelivered."""


class InvalidTransition(RuntimeError):
    """An input that cannot happen in the current state."""

    def __init__(self, machine: str, state: enum.Enum, event: str) -> None:
        super().__init__(f"{machine}: {event!r} cannot happen in state {state.value!r}")
        self.machine = machine
        self.state = state
        self.event = event


# --- events out: frozen, keyword-only, checked when built -------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ClickRecognised:
    click: Click


@dataclass(frozen=True, kw_only=True, slots=True)
class LedChanged:
    led: Led


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectRequested:
    attempt: int
    """1 for the first attempt of a wake, counting up while retries follow."""

    def __post_init__(self) -> None:
        if self.attempt < 1:
            raise ValueError(f"attempt must be >= 1, got {self.attempt}")


@dataclass(frozen=True, kw_only=True, slots=True)
class PublishRequested:
    click: Click
    topic: str
    payload: bytes
    qos: int = CLICK_QOS

    def __post_init__(self) -> None:
        if self.qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {self.qos}")


@dataclass(frozen=True, kw_only=True, slots=True)
class DisconnectRequested:
    """Close the session cleanly: the work is done and the device sleeps."""


@dataclass(frozen=True, kw_only=True, slots=True)
class GaveUp:
    """Connecting failed ``attempts`` times; ``queued`` clicks wait for the next wake."""

    attempts: int
    queued: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ClickDropped:
    click: Click
    reason: DropReason


@dataclass(frozen=True, kw_only=True, slots=True)
class PoweredOff:
    """The device died: drop any connection without a DISCONNECT (the will fires)."""

    reason: str


Event = (
    ClickRecognised
    | LedChanged
    | ConnectRequested
    | PublishRequested
    | DisconnectRequested
    | GaveUp
    | ClickDropped
    | PoweredOff
)


class ButtonInput(enum.Enum):
    PRESS = "press"
    RELEASE = "release"
    DEADLINE = "deadline"


class LinkInput(enum.Enum):
    CLICK = "click"
    CONNECTED = "connected"
    CONNECT_FAILED = "connect-failed"
    PUBLISHED = "published"
    CONNECTION_LOST = "connection-lost"
    DEADLINE = "deadline"
    POWER_ON = "power-on"


@dataclass(slots=True)
class Counters:
    clicks: int = 0
    published: int = 0
    connect_attempts: int = 0
    connect_failures: int = 0
    dropped: dict[DropReason, int] = field(default_factory=lambda: dict.fromkeys(DropReason, 0))
    presses_while_dead: int = 0


class Firmware:
    """One button's firmware. Feed it inputs; act on the events it returns."""

    def __init__(
        self,
        profile: Profile,
        *,
        device_id: str,
        certificate_id: str,
        battery: Battery,
        next_seq: int = 0,
        rng: random.Random,
    ) -> None:
        self.profile = profile
        self.device_id = device_id
        self.certificate_id = certificate_id
        self.battery = battery
        self.next_seq = next_seq
        self.counters = Counters()
        self._rng = rng
        self._timings = profile.timings
        self._persistent = profile.connection is ConnectionMode.PERSISTENT
        self._button = ButtonState.IDLE
        self._button_deadline: float | None = None
        self._pressed_at = 0.0
        self._window_ends = 0.0
        self._link = LinkState.ASLEEP
        self._link_deadline: float | None = None
        self._attempt = 0
        self._queue: deque[PublishRequested] = deque()
        self._led = Led.OFF
        self._led_deadline: float | None = None
        self._now: float | None = None
        self._events: list[Event] = []
        self._failure = ConnectFailure.IOT_CONNECT  # set by connect_failed() for its handler
        self._acked_seq = -1  # set by published() for its handler

    # --- what a driver or a test reads ---------------------------------------------

    @property
    def button_state(self) -> ButtonState:
        return self._button

    @property
    def link_state(self) -> LinkState:
        return self._link

    @property
    def led(self) -> Led:
        return self._led

    @property
    def queued(self) -> int:
        """Clicks recognised but not yet acknowledged by the broker."""
        return len(self._queue)

    @property
    def dead(self) -> bool:
        return self._link is LinkState.DEAD

    def next_deadline(self) -> float | None:
        """When ``timer`` must be called next, or ``None`` when nothing is pending."""
        pending = [
            d
            for d in (self._button_deadline, self._link_deadline, self._led_deadline)
            if d is not None
        ]
        return min(pending, default=None)

    # --- inputs ---------------------------------------------------------------------

    def power_on(self, now: float) -> list[Event]:
        """Batteries in. A persistent device connects at once; others wait for a press."""
        return self._run(now, lambda: self._link_input(LinkInput.POWER_ON, now))

    def press(self, now: float) -> list[Event]:
        return self._run(now, lambda: self._button_input(ButtonInput.PRESS, now), press=True)

    def release(self, now: float) -> list[Event]:
        return self._run(now, lambda: self._button_input(ButtonInput.RELEASE, now))

    def timer(self, now: float) -> list[Event]:
        """Handle every deadline that has come; early or spurious calls do nothing."""

        def fire() -> None:
            if self._button_deadline is not None and self._button_deadline <= now:
                self._button_input(ButtonInput.DEADLINE, now)
            if self._link_deadline is not None and self._link_deadline <= now:
                self._link_input(LinkInput.DEADLINE, now)
            if self._led_deadline is not None and self._led_deadline <= now:
                self._led_deadline = None
                self._show(Led.OFF)

        return self._run(now, fire)

    def connected(self, now: float) -> list[Event]:
        return self._run(now, lambda: self._link_input(LinkInput.CONNECTED, now))

    def connect_failed(self, now: float, failure: ConnectFailure) -> list[Event]:
        self._failure = failure
        return self._run(now, lambda: self._link_input(LinkInput.CONNECT_FAILED, now))

    def published(self, now: float, seq: int) -> list[Event]:
        """The broker acknowledged (PUBACK) the click with this ``seq``."""
        self._acked_seq = seq
        return self._run(now, lambda: self._link_input(LinkInput.PUBLISHED, now))

    def connection_lost(self, now: float) -> list[Event]:
        return self._run(now, lambda: self._link_input(LinkInput.CONNECTION_LOST, now))

    # --- plumbing -------------------------------------------------------------------

    def _run(self, now: float, step: Callable[[], None], *, press: bool = False) -> list[Event]:
        """Account for the time passed, then apply one input; a dead device ignores all."""
        if self._now is not None and now < self._now:
            raise TimeWentBackwards(f"time went backwards: {now} is before {self._now}")
        self._now = now
        self.battery.elapse(now, connected=self._link in (LinkState.ONLINE, LinkState.PUBLISHING))
        self._die_if_exhausted(now)
        if self._link is LinkState.DEAD:
            self.counters.presses_while_dead += press
        else:
            step()
            self._die_if_exhausted(now)
        events, self._events = self._events, []
        return events

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _show(self, led: Led) -> None:
        if led is not self._led:
            self._led = led
            self._emit(LedChanged(led=led))

    def _button_input(self, event: ButtonInput, now: float) -> None:
        handler = _BUTTON_TRANSITIONS.get((self._button, event))
        if handler is None:
            raise InvalidTransition("button", self._button, event.value)
        self._button = handler(self, now)

    def _link_input(self, event: LinkInput, now: float) -> None:
        handler = _LINK_TRANSITIONS.get((self._link, event))
        if handler is None:
            raise InvalidTransition("link", self._link, event.value)
        self._link = handler(self, now)

    # --- button handlers: each returns the next button state ----------------------

    def _first_press(self, now: float) -> ButtonState:
        self._pressed_at = now
        self._button_deadline = now + self._timings.long_press_ms / 1000
        return ButtonState.PRESSED

    def _first_release(self, now: float) -> ButtonState:
        self.battery.hold(now - self._pressed_at)
        if self._is_bounce(now):
            self._button_deadline = None
            return ButtonState.IDLE
        self._window_ends = now + self._timings.double_click_window_ms / 1000
        self._button_deadline = self._window_ends
        return ButtonState.RELEASED

    def _held_long(self, now: float) -> ButtonState:
        self._button_deadline = None
        self._recognise(ClickType.LONG, now)
        return ButtonState.HELD_LONG

    def _long_release(self, now: float) -> ButtonState:
        self.battery.hold(now - self._pressed_at)
        return ButtonState.IDLE

    def _window_closed(self, now: float) -> ButtonState:
        self._button_deadline = None
        self._recognise(ClickType.SINGLE, now)
        return ButtonState.IDLE

    def _second_press(self, now: float) -> ButtonState:
        self._pressed_at = now
        self._button_deadline = None
        return ButtonState.PRESSED_AGAIN

    def _second_release(self, now: float) -> ButtonState:
        self.battery.hold(now - self._pressed_at)
        if self._is_bounce(now):
            self._button_deadline = self._window_ends
            return ButtonState.RELEASED
        self._recognise(ClickType.DOUBLE, now)
        return ButtonState.IDLE

    def _is_bounce(self, now: float) -> bool:
        return (now - self._pressed_at) * 1000 < self._timings.debounce_ms

    def _recognise(self, click_type: ClickType, now: float) -> None:
        self.battery.count_click(now)
        click = Click(
            device_id=self.device_id,
            seq=self.next_seq,
            click_type=click_type,
            reported_at=now,
            remaining_life=self.battery.remaining_life(now),
            battery_mv=self.battery.voltage_mv,
            certificate_id=self.certificate_id,
        )
        self.next_seq += 1
        self.counters.clicks += 1
        self._emit(ClickRecognised(click=click))
        if len(self._queue) >= self.profile.mqtt.offline_queue:
            self._drop(click, DropReason.QUEUE_FULL)
            return
        topic, payload = encode_click(self.profile.payload, click)
        self._queue.append(PublishRequested(click=click, topic=topic, payload=payload))
        self._link_input(LinkInput.CLICK, now)

    def _drop(self, click: Click, reason: DropReason) -> None:
        self.counters.dropped[reason] += 1
        self._emit(ClickDropped(click=click, reason=reason))

    # --- link handlers: each returns the next link state --------------------------

    def _power_on(self, now: float) -> LinkState:
        return self._wake(now) if self._persistent else LinkState.ASLEEP

    def _wake(self, now: float) -> LinkState:
        self.battery.spend(Action.WAKE)
        self._attempt = 0
        return self._connect()

    def _connect(self) -> LinkState:
        self._attempt += 1
        self.counters.connect_attempts += 1
        self._link_deadline = None
        self._led_deadline = None  # a green or red LED still timing out gives way
        self._show(Led.CONNECTING)
        self._emit(ConnectRequested(attempt=self._attempt))
        return LinkState.CONNECTING

    def _retry(self, now: float) -> LinkState:
        return self._connect()

    def _stay(self, now: float) -> LinkState:
        """A click while connecting or publishing waits in the queue."""
        return self._link

    def _on_connected(self, now: float) -> LinkState:
        self.battery.spend(Action.HANDSHAKE)
        self._attempt = 0
        if not self._queue:
            self._show(Led.OFF)  # a persistent device online with nothing to say
        return self._send_next(now)

    def _publish_now(self, now: float) -> LinkState:
        return self._send_next(now)

    def _send_next(self, now: float) -> LinkState:
        if self._queue:
            self.battery.spend(Action.PUBLISH)
            self._emit(self._queue[0])
            return LinkState.PUBLISHING
        if self._persistent:
            return LinkState.ONLINE
        self._emit(DisconnectRequested())
        return LinkState.ASLEEP

    def _on_published(self, now: float) -> LinkState:
        head = self._queue[0].click
        if self._acked_seq != head.seq:
            raise InvalidTransition("link", self._link, f"published seq {self._acked_seq}")
        self._queue.popleft()
        self.counters.published += 1
        if not self._queue:
            self._show(Led.DELIVERED)
            self._led_deadline = now + self._timings.led_success_ms / 1000
        return self._send_next(now)

    def _on_connect_failed(self, now: float) -> LinkState:
        self.battery.spend(Action.FAILED_CONNECT)
        self.counters.connect_failures += 1
        self._show(self._failure.led)
        if self._attempt >= self.profile.mqtt.max_attempts:
            self._emit(GaveUp(attempts=self._attempt, queued=len(self._queue)))
            self._led_deadline = now + self._timings.led_success_ms / 1000
            return LinkState.ASLEEP
        return self._back_off(now)

    def _on_connection_lost(self, now: float) -> LinkState:
        self._attempt = 0
        return self._back_off(now)

    def _back_off(self, now: float) -> LinkState:
        """Exponential backoff with full jitter (AWS architecture blog, 2015)."""
        mqtt = self.profile.mqtt
        ceiling = min(mqtt.backoff_cap_s, mqtt.backoff_base_s * 2 ** max(self._attempt - 1, 0))
        self._link_deadline = now + self._rng.uniform(0.0, ceiling)
        return LinkState.BACKOFF

    def _die_if_exhausted(self, now: float) -> None:
        """Die once the battery or plan is spent, but never in the middle of a session."""
        if self._link not in (LinkState.ASLEEP, LinkState.ONLINE, LinkState.BACKOFF):
            return
        if not self.battery.is_dead(now):
            return
        self._link = LinkState.DEAD
        self._button = ButtonState.IDLE
        self._button_deadline = self._link_deadline = self._led_deadline = None
        while self._queue:
            self._drop(self._queue.popleft().click, DropReason.BATTERY_EMPTY)
        self._show(Led.OFF)
        reason = "battery empty" if self.battery.cell_life <= 0 else "plan used up"
        self._emit(PoweredOff(reason=reason))


_BUTTON_TRANSITIONS: Final[
    dict[tuple[ButtonState, ButtonInput], Callable[[Firmware, float], ButtonState]]
] = {
    (ButtonState.IDLE, ButtonInput.PRESS): Firmware._first_press,
    (ButtonState.PRESSED, ButtonInput.RELEASE): Firmware._first_release,
    (ButtonState.PRESSED, ButtonInput.DEADLINE): Firmware._held_long,
    (ButtonState.HELD_LONG, ButtonInput.RELEASE): Firmware._long_release,
    (ButtonState.RELEASED, ButtonInput.PRESS): Firmware._second_press,
    (ButtonState.RELEASED, ButtonInput.DEADLINE): Firmware._window_closed,
    (ButtonState.PRESSED_AGAIN, ButtonInput.RELEASE): Firmware._second_release,
}
"""The button machine: every (state, input) pair that can happen, and its handler."""

_LINK_TRANSITIONS: Final[
    dict[tuple[LinkState, LinkInput], Callable[[Firmware, float], LinkState]]
] = {
    (LinkState.ASLEEP, LinkInput.POWER_ON): Firmware._power_on,
    (LinkState.ASLEEP, LinkInput.CLICK): Firmware._wake,
    (LinkState.CONNECTING, LinkInput.CLICK): Firmware._stay,
    (LinkState.CONNECTING, LinkInput.CONNECTED): Firmware._on_connected,
    (LinkState.CONNECTING, LinkInput.CONNECT_FAILED): Firmware._on_connect_failed,
    (LinkState.BACKOFF, LinkInput.CLICK): Firmware._stay,
    (LinkState.BACKOFF, LinkInput.DEADLINE): Firmware._retry,
    (LinkState.ONLINE, LinkInput.CLICK): Firmware._publish_now,
    (LinkState.ONLINE, LinkInput.CONNECTION_LOST): Firmware._on_connection_lost,
    (LinkState.PUBLISHING, LinkInput.CLICK): Firmware._stay,
    (LinkState.PUBLISHING, LinkInput.PUBLISHED): Firmware._on_published,
    (LinkState.PUBLISHING, LinkInput.CONNECTION_LOST): Firmware._on_connection_lost,
    (LinkState.CONNECTING, LinkInput.CONNECTION_LOST): Firmware._on_connection_lost,
}
"""The link machine: every (state, input) pair that can happen, and its handler."""
