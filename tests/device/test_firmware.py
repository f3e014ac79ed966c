"""The button firmware as a pure state machine: clicks, LEDs, requests, backoff, death."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final, TypeVar

import pytest

from simulator.device.battery import Battery, BatteryState
from simulator.device.firmware import (
    ButtonState,
    ClickDropped,
    ClickRecognised,
    ConnectFailure,
    ConnectRequested,
    DisconnectRequested,
    DropReason,
    Event,
    Firmware,
    GaveUp,
    InvalidTransition,
    Led,
    LedChanged,
    LinkState,
    PoweredOff,
    PublishRequested,
)
from simulator.device.profile import ConnectionMode, Profile, Timings, parse_profile
from simulator.protocol import CLICK_QOS, Click, ClickType, PayloadFormat, format_timestamp

PROFILES: Final = Path(__file__).resolve().parents[2] / "profiles"
PROFILE_FILES: Final = sorted(PROFILES.glob("*.toml"))
PROFILE_NAMES: Final = [path.stem for path in PROFILE_FILES]
PERSISTENT: Final = "clicksim-persistent-button"
CERT: Final = hashlib.sha256(b"clicksim test device").hexdigest()
T0: Final = 1_700_000_000.0


def load(name: str) -> Profile:
    return parse_profile((PROFILES / f"{name}.toml").read_text(), source=name)


PER_CLICK: Final = [
    name for name in PROFILE_NAMES if load(name).connection is ConnectionMode.PER_CLICK
]


def make_firmware(
    profile_name: str,
    *,
    state: BatteryState | None = None,
    next_seq: int = 0,
    seed: int = 1,
) -> Firmware:
    profile = load(profile_name)
    device_id = profile.id.make(itertools.count(7))
    battery = Battery(profile.battery, profile.plan, state or BatteryState())
    return Firmware(
        profile,
        device_id=device_id,
        certificate_id=CERT,
        battery=battery,
        next_seq=next_seq,
        rng=random.Random(seed),
    )


E = TypeVar("E")


def only(events: Iterable[Event], kind: type[E]) -> list[E]:
    return [event for event in events if isinstance(event, kind)]


def link(fw: Firmware) -> LinkState:
    return fw.link_state


def led(fw: Firmware) -> Led:
    return fw.led


def button(fw: Firmware) -> ButtonState:
    return fw.button_state


def leds(events: Iterable[Event]) -> list[Led]:
    return [event.led for event in only(events, LedChanged)]


class Bench:
    """Drives one firmware: inputs in time order, every deadline fired before the next.

    With ``auto_net`` the network answers at once: connects succeed (or fail with the
    queued ``failures``) and every publish is acknowledged.
    """

    def __init__(self, fw: Firmware, *, auto_net: bool = True) -> None:
        self.fw = fw
        self.auto_net = auto_net
        self.failures: deque[ConnectFailure] = deque()
        self.events: list[Event] = []
        self.now = T0

    def take(self, events: list[Event]) -> list[Event]:
        self.events.extend(events)
        if self.auto_net:
            for event in events:
                if isinstance(event, ConnectRequested):
                    if self.failures:
                        self.take(self.fw.connect_failed(self.now, self.failures.popleft()))
                    else:
                        self.take(self.fw.connected(self.now))
                elif isinstance(event, PublishRequested):
                    self.take(self.fw.published(self.now, event.click.seq))
        return events

    def advance(self, until: float | None) -> None:
        """Fire every deadline up to ``until`` (all of them with ``None``), then stand there."""
        for _ in range(10_000):
            deadline = self.fw.next_deadline()
            if deadline is None or (until is not None and deadline > until):
                break
            self.now = max(self.now, deadline)
            self.take(self.fw.timer(self.now))
        else:  # pragma: no cover - a firmware that keeps asking for timers
            pytest.fail("the firmware never stops asking for timers")
        if until is not None:
            self.now = max(self.now, until)

    def settle(self) -> None:
        """Fire deadlines until none is pending."""
        self.advance(None)

    def press(self, at: float) -> list[Event]:
        self.advance(at)
        return self.take(self.fw.press(at))

    def release(self, at: float) -> list[Event]:
        self.advance(at)
        return self.take(self.fw.release(at))

    def tap(self, at: float, held_ms: float) -> float:
        """A press held ``held_ms``; returns the time of the release."""
        self.press(at)
        self.release(at + held_ms / 1000)
        return at + held_ms / 1000

    def click(self, at: float) -> float:
        """One SINGLE click from ``at``: returns when it is recognised."""
        t = self.fw.profile.timings
        released = self.tap(at, t.debounce_ms + 10)
        recognised = released + t.double_click_window_ms / 1000
        self.advance(recognised)
        return recognised

    def clicks(self) -> list[Click]:
        return [event.click for event in only(self.events, ClickRecognised)]


# --- the button: press timings -> clicks --------------------------------------------

Taps = list[tuple[float, float]]
"""(start in seconds after T0, held for so many seconds)"""


def timing_table(t: Timings) -> dict[str, tuple[Taps, list[ClickType]]]:
    short = (t.debounce_ms + 10) / 1000
    bounce = t.debounce_ms / 2 / 1000
    window = t.double_click_window_ms / 1000
    long_ = (t.long_press_ms + 50) / 1000
    nearly_long = (t.long_press_ms - 50) / 1000
    single, double, long_click = ClickType.SINGLE, ClickType.DOUBLE, ClickType.LONG
    return {
        "short-press": ([(0, short)], [single]),
        "double": ([(0, short), (short + window / 2, short)], [double]),
        "long": ([(0, long_)], [long_click]),
        "bounce-only": ([(0, bounce)], []),
        "gap-beyond-window": ([(0, short), (short + window + 0.05, short)], [single, single]),
        "bounce-in-window": ([(0, short), (short + window / 4, bounce)], [single]),
        "bounce-then-double": (
            [(0, short), (short + window / 4, bounce), (short + window / 2, short)],
            [double],
        ),
        "bounce-then-press": ([(0, bounce), (bounce + 0.05, short)], [single]),
        "held-nearly-long": ([(0, nearly_long)], [single]),
        "long-then-short": ([(0, long_), (long_ + 0.2, short)], [long_click, single]),
        "double-then-short": (
            [(0, short), (short + window / 2, short), (2 * short + window + 0.3, short)],
            [double, single],
        ),
    }


TIMING_CASES: Final = list(timing_table(load(PROFILE_NAMES[0]).timings))


@pytest.mark.parametrize("case", TIMING_CASES)
@pytest.mark.parametrize("profile_name", PROFILE_NAMES)
def test_press_timings_give_clicks(profile_name: str, case: str) -> None:
    fw = make_firmware(profile_name)
    taps, expected = timing_table(fw.profile.timings)[case]
    bench = Bench(fw)
    for start, held in taps:
        bench.tap(T0 + start, held * 1000)
    bench.settle()
    assert [click.click_type for click in bench.clicks()] == expected
    assert button(fw) is ButtonState.IDLE
    assert fw.counters.clicks == len(expected)
    assert fw.counters.published == len(expected)
    assert fw.next_deadline() is None


@pytest.mark.parametrize("profile_name", PROFILE_NAMES)
def test_single_is_recognised_when_the_window_closes(profile_name: str) -> None:
    fw = make_firmware(profile_name)
    t = fw.profile.timings
    bench = Bench(fw, auto_net=False)
    released = bench.tap(T0, t.debounce_ms + 10)
    assert button(fw) is ButtonState.RELEASED
    assert fw.next_deadline() == pytest.approx(released + t.double_click_window_ms / 1000)
    bench.advance(released + t.double_click_window_ms / 1000 - 0.001)
    assert bench.clicks() == []
    bench.advance(released + t.double_click_window_ms / 1000)
    [click] = bench.clicks()
    assert click.click_type is ClickType.SINGLE
    assert click.reported_at == pytest.approx(released + t.double_click_window_ms / 1000)


@pytest.mark.parametrize("profile_name", PROFILE_NAMES)
def test_long_is_recognised_while_still_held(profile_name: str) -> None:
    fw = make_firmware(profile_name)
    t = fw.profile.timings
    bench = Bench(fw, auto_net=False)
    bench.press(T0)
    bench.advance(T0 + t.long_press_ms / 1000)
    [click] = bench.clicks()
    assert click.click_type is ClickType.LONG
    assert click.reported_at == pytest.approx(T0 + t.long_press_ms / 1000)
    assert button(fw) is ButtonState.HELD_LONG
    bench.release(T0 + 5.0)  # held on and on: still one click
    assert len(bench.clicks()) == 1
    assert button(fw) is ButtonState.IDLE


@pytest.mark.parametrize("profile_name", PROFILE_NAMES)
def test_double_is_recognised_at_the_second_release(profile_name: str) -> None:
    fw = make_firmware(profile_name)
    t = fw.profile.timings
    bench = Bench(fw, auto_net=False)
    released = bench.tap(T0, t.debounce_ms + 10)
    second = released + t.double_click_window_ms / 2000
    second_release = bench.tap(second, t.debounce_ms + 10)
    [click] = bench.clicks()
    assert click.click_type is ClickType.DOUBLE
    assert click.reported_at == pytest.approx(second_release)


# --- a per-click delivery: LED and requests ----------------------------------------------


def expected_payload(fw: Firmware, click: Click) -> tuple[str, bytes]:
    """The topic and bytes the protocol documents, built here by hand."""
    body: dict[str, object]
    if fw.profile.payload is PayloadFormat.IOTBUTTON:
        topic = f"iotbutton/{fw.device_id}"
        body = {
            "serialNumber": fw.device_id,
            "batteryVoltage": f"{click.battery_mv}mV",
            "clickType": click.click_type.value,
        }
    else:
        topic = f"oneclick/devices/{fw.device_id}/events"
        body = {
            "deviceId": fw.device_id,
            "type": "click",
            "seq": click.seq,
            "clickType": click.click_type.value,
            "reportedTime": format_timestamp(click.reported_at),
            "remainingLife": round(click.remaining_life, 2),
            "batteryVoltage": f"{click.battery_mv}mV",
            "certificateId": CERT,
            "testMode": False,
        }
    return topic, json.dumps(body, separators=(",", ":")).encode()


@pytest.mark.parametrize("profile_name", PER_CLICK)
def test_per_click_delivery_leds_and_requests(profile_name: str) -> None:
    fw = make_firmware(profile_name, next_seq=41)
    profile = fw.profile
    bench = Bench(fw, auto_net=False)
    assert led(fw) is Led.OFF
    assert link(fw) is LinkState.ASLEEP

    recognised = bench.click(T0)
    [click] = bench.clicks()
    assert click.seq == 41
    assert click.device_id == fw.device_id
    assert click.certificate_id == CERT
    plan = profile.plan
    full = 100.0 if plan is None or plan.max_clicks is None else 100 * (1 - 1 / plan.max_clicks)
    assert click.remaining_life == pytest.approx(full, abs=0.01)
    assert click.battery_mv == profile.battery.curve[-1][1]
    assert leds(bench.events) == [Led.CONNECTING]
    assert only(bench.events, ConnectRequested) == [ConnectRequested(attempt=1)]
    assert link(fw) is LinkState.CONNECTING
    assert led(fw) is Led.CONNECTING

    connected_at = recognised + 0.8
    events = fw.connected(connected_at)
    [publish] = only(events, PublishRequested)
    assert leds(events) == []  # still blinking white until the PUBACK
    topic, payload = expected_payload(fw, click)
    assert publish.topic == topic
    assert publish.payload == payload
    assert publish.qos == CLICK_QOS == 1
    assert publish.click == click
    body = json.loads(publish.payload)
    if profile.payload is PayloadFormat.IOTBUTTON:
        assert set(body) == {"serialNumber", "batteryVoltage", "clickType"}
    else:
        assert len(body) == 9
        assert body["seq"] == 41
    assert link(fw) is LinkState.PUBLISHING
    assert not only(events, DisconnectRequested)

    acked_at = connected_at + 0.2
    events = fw.published(acked_at, 41)
    assert leds(events) == [Led.DELIVERED]
    assert only(events, DisconnectRequested) == [DisconnectRequested()]
    assert isinstance(events[-1], DisconnectRequested)
    assert link(fw) is LinkState.ASLEEP
    assert led(fw) is Led.DELIVERED
    assert fw.counters.published == 1
    assert fw.queued == 0

    off_at = acked_at + profile.timings.led_success_ms / 1000
    assert fw.next_deadline() == pytest.approx(off_at)
    assert fw.timer(off_at - 0.01) == []
    assert leds(fw.timer(off_at)) == [Led.OFF]
    assert fw.next_deadline() is None

    # the next click carries the next seq
    bench.events.clear()
    bench.click(off_at + 10)
    assert [c.seq for c in bench.clicks()] == [42]
    assert fw.next_seq == 43


@pytest.mark.parametrize("profile_name", PROFILE_NAMES)
def test_seq_counts_up_by_one_per_click_of_any_type(profile_name: str) -> None:
    fw = make_firmware(profile_name, next_seq=1000)
    t = fw.profile.timings
    bench = Bench(fw)
    start = T0
    for kind in [ClickType.SINGLE, ClickType.LONG, ClickType.DOUBLE, ClickType.SINGLE]:
        if kind is ClickType.LONG:
            bench.tap(start, t.long_press_ms + 100)
        elif kind is ClickType.DOUBLE:
            released = bench.tap(start, t.debounce_ms + 10)
            bench.tap(released + 0.05, t.debounce_ms + 10)
        else:
            bench.tap(start, t.debounce_ms + 10)
        start += 10
    bench.settle()
    assert [c.seq for c in bench.clicks()] == [1000, 1001, 1002, 1003]
    published = [p.click.seq for p in only(bench.events, PublishRequested)]
    assert published == [1000, 1001, 1002, 1003]


def test_second_click_while_led_is_green_keeps_blinking_white_until_connected() -> None:
    # A click delivered turns the LED green for led_success_ms; a new click during that
    # time wakes the device again, and the LED must blink white for the whole connect,
    # not be switched off by the first click's green timer.
    fw = make_firmware("aws-iot-enterprise-button")
    t = fw.profile.timings
    bench = Bench(fw)
    first = bench.click(T0)
    assert led(fw) is Led.DELIVERED
    bench.auto_net = False
    second = bench.click(first + 0.05)  # the second press starts inside the green time
    assert second < first + t.led_success_ms / 1000
    assert link(fw) is LinkState.CONNECTING
    assert led(fw) is Led.CONNECTING
    mark = len(bench.events)
    bench.advance(first + t.led_success_ms / 1000 + 1.0)  # the connect takes its time
    assert link(fw) is LinkState.CONNECTING
    assert leds(bench.events[mark:]) == []
    assert led(fw) is Led.CONNECTING


# --- connect failures and backoff ---------------------------------------------------------


@pytest.mark.parametrize("failure", list(ConnectFailure))
def test_each_connect_failure_shows_its_red_led(failure: ConnectFailure) -> None:
    fw = make_firmware("aws-iot-enterprise-button")
    bench = Bench(fw, auto_net=False)
    recognised = bench.click(T0)
    events = fw.connect_failed(recognised + 1, failure)
    assert leds(events) == [failure.led]
    assert led(fw) is failure.led
    assert failure.led.value.startswith("red-")
    assert fw.counters.connect_failures == 1


def test_failure_leds_are_distinct() -> None:
    reds = {failure.led for failure in ConnectFailure}
    assert len(reds) == len(ConnectFailure)
    assert not reds & {Led.OFF, Led.CONNECTING, Led.DELIVERED}


def ceiling(profile: Profile, attempt: int) -> float:
    mqtt = profile.mqtt
    return min(mqtt.backoff_cap_s, mqtt.backoff_base_s * float(2 ** (attempt - 1)))


def backoff_deadlines(profile_name: str, seed: int, attempts: int) -> list[float]:
    """Fail ``attempts`` connects in a row; the retry deadline after each one."""
    fw = make_firmware(profile_name, seed=seed)
    bench = Bench(fw, auto_net=False)
    now = bench.click(T0) + 0.5
    deadlines = []
    failures = itertools.cycle(ConnectFailure)
    for attempt in range(1, attempts + 1):
        events = fw.connect_failed(now, next(failures))
        assert not only(events, GaveUp)
        assert link(fw) is LinkState.BACKOFF
        deadline = fw.next_deadline()
        assert deadline is not None
        assert now <= deadline <= now + ceiling(fw.profile, attempt)
        deadlines.append(deadline)
        if deadline - 1e-3 >= now:
            assert fw.timer(deadline - 1e-3) == []  # early: nothing yet
        events = fw.timer(deadline)
        assert only(events, ConnectRequested) == [ConnectRequested(attempt=attempt + 1)]
        assert leds(events) == [Led.CONNECTING]
        assert link(fw) is LinkState.CONNECTING
        now = deadline + 0.5
    return deadlines


@pytest.mark.parametrize("profile_name", PROFILE_NAMES)
def test_backoff_stays_within_full_jitter_bounds(profile_name: str) -> None:
    profile = load(profile_name)
    attempts = min(profile.mqtt.max_attempts - 1, 10)
    for seed in range(5):
        assert len(backoff_deadlines(profile_name, seed, attempts)) == attempts


def test_backoff_ceiling_reaches_the_cap() -> None:
    profile = load(PERSISTENT)
    assert ceiling(profile, 10) == profile.mqtt.backoff_cap_s  # the bound used above


def test_same_seed_gives_same_backoff() -> None:
    a = backoff_deadlines("aws-iot-enterprise-button", 3, 3)
    b = backoff_deadlines("aws-iot-enterprise-button", 3, 3)
    c = backoff_deadlines("aws-iot-enterprise-button", 4, 3)
    assert a == b
    assert a != c


def test_backoff_jitter_covers_the_whole_range() -> None:
    profile = load("aws-iot-enterprise-button")
    offsets = []
    for seed in range(200):
        fw = make_firmware(profile.name, seed=seed)
        now = Bench(fw, auto_net=False).click(T0) + 0.5
        fw.connect_failed(now, ConnectFailure.WIFI)
        deadline = fw.next_deadline()
        assert deadline is not None
        offsets.append(deadline - now)
    top = ceiling(profile, 1)
    assert min(offsets) < 0.1 * top
    assert max(offsets) > 0.9 * top
    assert all(0 <= offset <= top for offset in offsets)


@pytest.mark.parametrize("profile_name", PER_CLICK)
def test_gives_up_after_max_attempts_and_keeps_the_clicks(profile_name: str) -> None:
    fw = make_firmware(profile_name, next_seq=5)
    mqtt = fw.profile.mqtt
    bench = Bench(fw, auto_net=False)
    now = bench.click(T0)
    now = bench.click(now + 0.1)  # a second click while connecting is queued
    assert fw.queued == 2
    gave_up: list[GaveUp] = []
    for attempt in range(1, mqtt.max_attempts + 1):
        events = fw.connect_failed(now + 0.5, ConnectFailure.DNS)
        assert Led.DNS_FAILED in leds(events)
        gave_up = only(events, GaveUp)
        if attempt < mqtt.max_attempts:
            assert gave_up == []
            deadline = fw.next_deadline()
            assert deadline is not None
            requests = only(fw.timer(deadline), ConnectRequested)
            assert requests == [ConnectRequested(attempt=attempt + 1)]
            now = deadline
    assert gave_up == [GaveUp(attempts=mqtt.max_attempts, queued=2)]
    assert link(fw) is LinkState.ASLEEP
    assert fw.queued == 2
    assert fw.counters.connect_failures == mqtt.max_attempts
    assert not only(bench.events, PublishRequested)

    # the next press wakes the device: a fresh connect, then all three in order
    bench.settle()
    bench.events.clear()
    bench.auto_net = True
    bench.click(bench.now + 60)
    assert only(bench.events, ConnectRequested) == [ConnectRequested(attempt=1)]
    assert [p.click.seq for p in only(bench.events, PublishRequested)] == [5, 6, 7]
    assert len(only(bench.events, DisconnectRequested)) == 1
    assert fw.queued == 0
    assert fw.counters.published == 3


# --- the offline queue ----------------------------------------------------------------------


@pytest.mark.parametrize("profile_name", PROFILE_NAMES)
def test_offline_queue_drops_the_extra_clicks(profile_name: str) -> None:
    fw = make_firmware(profile_name)
    size = fw.profile.mqtt.offline_queue
    bench = Bench(fw, auto_net=False)
    now = T0
    for _ in range(size + 2):
        now = bench.click(now) + 0.1
    assert len(bench.clicks()) == size + 2
    dropped = only(bench.events, ClickDropped)
    assert [(d.click.seq, d.reason) for d in dropped] == [
        (size, DropReason.QUEUE_FULL),
        (size + 1, DropReason.QUEUE_FULL),
    ]
    assert fw.counters.dropped[DropReason.QUEUE_FULL] == 2
    assert fw.counters.dropped[DropReason.BATTERY_EMPTY] == 0
    assert fw.queued == size
    assert only(bench.events, ConnectRequested) == [ConnectRequested(attempt=1)]

    events = fw.connected(now)
    sent = []
    for expected_seq in range(size):
        [publish] = only(events, PublishRequested)  # one at a time
        assert publish.click.seq == expected_seq
        sent.append(publish.click.seq)
        now += 0.05
        events = fw.published(now, expected_seq)
    assert sent == list(range(size))
    assert not only(events, PublishRequested)
    assert leds(events)[:1] == [Led.DELIVERED]  # how long: tested on its own
    assert fw.counters.published == size
    if fw.profile.connection is ConnectionMode.PER_CLICK:
        assert only(events, DisconnectRequested) == [DisconnectRequested()]
        assert link(fw) is LinkState.ASLEEP
    else:
        assert link(fw) is LinkState.ONLINE


@pytest.mark.parametrize("profile_name", PROFILE_NAMES)
def test_clicks_while_publishing_wait_their_turn(profile_name: str) -> None:
    fw = make_firmware(profile_name)
    bench = Bench(fw, auto_net=False)
    now = bench.click(T0)
    [publish] = only(fw.connected(now + 0.3), PublishRequested)
    assert publish.click.seq == 0
    bench.events.clear()
    now = bench.click(now + 0.4)  # recognised while the first is out
    assert not only(bench.events, PublishRequested)
    assert not only(bench.events, ConnectRequested)
    events = fw.published(now + 0.1, 0)
    assert leds(events) == []  # not green yet: one click is still undelivered
    [publish] = only(events, PublishRequested)
    assert publish.click.seq == 1
    events = fw.published(now + 0.2, 1)
    assert leds(events)[:1] == [Led.DELIVERED]  # how long: tested on its own


# --- lost connections and persistent devices ------------------------------------------


@pytest.mark.parametrize("profile_name", PROFILE_NAMES)
def test_connection_lost_while_publishing_republishes_the_same_click(profile_name: str) -> None:
    fw = make_firmware(profile_name, next_seq=9)
    base = fw.profile.mqtt.backoff_base_s
    bench = Bench(fw, auto_net=False)
    now = bench.click(T0)
    [first] = only(fw.connected(now + 0.5), PublishRequested)
    lost_at = now + 0.7
    fw.connection_lost(lost_at)
    assert link(fw) is LinkState.BACKOFF
    assert fw.queued == 1
    deadline = fw.next_deadline()
    assert deadline is not None
    assert lost_at <= deadline <= lost_at + base
    assert only(fw.timer(deadline), ConnectRequested) == [ConnectRequested(attempt=1)]
    [again] = only(fw.connected(deadline + 0.5), PublishRequested)
    assert again.click.seq == first.click.seq == 9
    assert again.payload == first.payload
    assert again.topic == first.topic
    events = fw.published(deadline + 0.6, 9)
    assert leds(events)[:1] == [Led.DELIVERED]  # how long: tested on its own
    assert fw.counters.published == 1
    assert fw.queued == 0


def test_persistent_device_connects_at_power_on_and_stays_online() -> None:
    fw = make_firmware(PERSISTENT, next_seq=3)
    bench = Bench(fw, auto_net=False)
    events = fw.power_on(T0)
    assert leds(events) == [Led.CONNECTING]
    assert only(events, ConnectRequested) == [ConnectRequested(attempt=1)]
    events = fw.connected(T0 + 1)
    assert link(fw) is LinkState.ONLINE
    assert led(fw) is Led.OFF
    assert not only(events, DisconnectRequested)

    bench.now = T0 + 1
    recognised = bench.click(T0 + 10)
    [publish] = only(bench.events, PublishRequested)  # no connect: it is online already
    assert not only(bench.events, ConnectRequested)
    assert publish.click.seq == 3
    events = fw.published(recognised + 0.1, 3)
    assert not only(events, DisconnectRequested)
    assert link(fw) is LinkState.ONLINE
    bench.advance(recognised + 60)  # the LED timer runs out; nothing else is pending
    assert fw.next_deadline() is None
    assert link(fw) is LinkState.ONLINE

    lost_at = recognised + 100
    fw.connection_lost(lost_at)
    assert link(fw) is LinkState.BACKOFF
    deadline = fw.next_deadline()
    assert deadline is not None
    assert lost_at <= deadline <= lost_at + fw.profile.mqtt.backoff_base_s
    assert only(fw.timer(deadline), ConnectRequested) == [ConnectRequested(attempt=1)]
    events = fw.connected(deadline + 0.5)
    assert link(fw) is LinkState.ONLINE
    assert not only(events, PublishRequested)
    assert not only(events, DisconnectRequested)


def test_persistent_device_sends_clicks_made_while_reconnecting() -> None:
    fw = make_firmware(PERSISTENT)
    bench = Bench(fw, auto_net=False)
    fw.power_on(T0)
    fw.connected(T0 + 1)
    fw.connection_lost(T0 + 2)
    bench.now = T0 + 2
    recognised = bench.click(T0 + 2.01)  # made while backing off (or reconnecting)
    bench.advance(recognised + fw.profile.mqtt.backoff_cap_s)
    assert only(bench.events, ConnectRequested) == [ConnectRequested(attempt=1)]
    [publish] = only(fw.connected(bench.now), PublishRequested)
    assert publish.click.seq == 0


def test_persistent_device_shows_green_after_a_delivery() -> None:
    fw = make_firmware(PERSISTENT)
    fw.power_on(T0)
    fw.connected(T0 + 1)
    bench = Bench(fw, auto_net=False)
    bench.now = T0 + 1
    recognised = bench.click(T0 + 10)
    events = fw.published(recognised + 0.1, 0)
    assert leds(events) == [Led.DELIVERED]
    assert led(fw) is Led.DELIVERED
    off_at = recognised + 0.1 + fw.profile.timings.led_success_ms / 1000
    assert fw.next_deadline() == pytest.approx(off_at)
    assert leds(fw.timer(off_at)) == [Led.OFF]


# --- inputs that cannot happen ---------------------------------------------------------------


def _raises(call: Callable[[], object], state: str, event: str) -> InvalidTransition:
    with pytest.raises(InvalidTransition) as info:
        call()
    message = str(info.value)
    assert repr(state) in message, message
    assert repr(event) in message, message
    assert info.value.state.value == state
    return info.value


def test_release_while_idle() -> None:
    fw = make_firmware("aws-iot-enterprise-button")
    error = _raises(lambda: fw.release(T0), "idle", "release")
    assert error.machine == "button"


def test_press_while_pressed() -> None:
    fw = make_firmware("aws-iot-enterprise-button")
    fw.press(T0)
    error = _raises(lambda: fw.press(T0 + 0.1), "pressed", "press")
    assert error.machine == "button"
    assert button(fw) is ButtonState.PRESSED


def test_press_while_held_long() -> None:
    fw = make_firmware("aws-iot-enterprise-button")
    bench = Bench(fw, auto_net=False)
    bench.press(T0)
    bench.advance(T0 + 2)
    _raises(lambda: fw.press(T0 + 2.1), "held-long", "press")


def test_connected_while_asleep() -> None:
    fw = make_firmware("aws-iot-enterprise-button")
    error = _raises(lambda: fw.connected(T0), "asleep", "connected")
    assert error.machine == "link"


def test_connection_lost_while_asleep() -> None:
    fw = make_firmware("aws-iot-enterprise-button")
    _raises(lambda: fw.connection_lost(T0), "asleep", "connection-lost")


def test_published_with_the_wrong_seq() -> None:
    fw = make_firmware("aws-iot-enterprise-button", next_seq=10)
    bench = Bench(fw, auto_net=False)
    now = bench.click(T0)
    fw.connected(now + 0.1)
    error = _raises(lambda: fw.published(now + 0.2, 11), "publishing", "published seq 11")
    assert error.machine == "link"
    # the click is still out: the right ack is accepted afterwards
    assert fw.queued == 1
    assert leds(fw.published(now + 0.3, 10)) == [Led.DELIVERED]


def test_published_while_connecting() -> None:
    fw = make_firmware("aws-iot-enterprise-button")
    bench = Bench(fw, auto_net=False)
    now = bench.click(T0)
    with pytest.raises(InvalidTransition, match="connecting"):
        fw.published(now + 0.1, 0)


def test_time_going_backwards_raises() -> None:
    fw = make_firmware("aws-iot-enterprise-button")
    fw.press(T0)
    with pytest.raises(ValueError, match="backwards"):
        fw.release(T0 - 0.001)
    with pytest.raises(ValueError, match="backwards"):
        fw.timer(T0 - 10)
    fw.release(T0 + 0.1)  # the right time is still accepted


# --- the battery as the firmware sees it ---------------------------------------------------


@pytest.mark.parametrize("profile_name", PROFILE_NAMES)
@pytest.mark.parametrize("extra_mah", [0.0, 5.0])
def test_dead_battery_does_nothing(profile_name: str, extra_mah: float) -> None:
    profile = load(profile_name)
    state = BatteryState(used_mah=profile.battery.capacity_mah + extra_mah)
    fw = make_firmware(profile_name, state=state)
    bench = Bench(fw)
    now = T0
    for _ in range(3):
        bench.tap(now, profile.timings.debounce_ms + 10)
        now += 10
    bench.tap(now, profile.timings.long_press_ms + 100)
    bench.settle()
    assert set(leds(bench.events)) <= {Led.OFF}
    assert not only(bench.events, PublishRequested)
    assert not only(bench.events, ConnectRequested)
    assert not only(bench.events, ClickRecognised)
    assert len(only(bench.events, PoweredOff)) == 1
    assert fw.counters.presses_while_dead == 4
    assert fw.counters.clicks == 0
    assert fw.dead
    assert led(fw) is Led.OFF
    assert fw.next_deadline() is None


def test_dead_persistent_device_does_not_connect_at_power_on() -> None:
    profile = load(PERSISTENT)
    fw = make_firmware(PERSISTENT, state=BatteryState(used_mah=profile.battery.capacity_mah))
    events = fw.power_on(T0)
    assert not only(events, ConnectRequested)
    assert [type(e) for e in events] == [PoweredOff]


def test_persistent_device_dies_online_without_a_disconnect() -> None:
    profile = load(PERSISTENT)
    spec = profile.battery
    # enough to connect and stay up for about half an hour
    used = spec.capacity_mah - spec.wake_mah - spec.handshake_mah - spec.connected_ma / 2
    fw = make_firmware(PERSISTENT, state=BatteryState(used_mah=used))
    fw.power_on(T0)
    fw.connected(T0 + 1)
    assert link(fw) is LinkState.ONLINE
    assert fw.timer(T0 + 600) == []
    events = fw.timer(T0 + 3600)
    assert [type(e) for e in events] == [PoweredOff]  # no DisconnectRequested: the will fires
    assert fw.dead
    assert fw.next_deadline() is None


def test_dying_with_queued_clicks_drops_them_as_battery_empty() -> None:
    profile = load("aws-iot-enterprise-button")
    spec = profile.battery
    # enough for the wake, not for the failed connect that follows it
    used = spec.capacity_mah - spec.wake_mah - spec.failed_connect_mah / 2
    fw = make_firmware(profile.name, state=BatteryState(used_mah=used))
    bench = Bench(fw, auto_net=False)
    now = T0
    for _ in range(3):
        now = bench.click(now) + 0.1
    assert fw.queued == 3
    events = fw.connect_failed(now, ConnectFailure.TLS)
    dropped = only(events, ClickDropped)
    assert [(d.click.seq, d.reason) for d in dropped] == [
        (0, DropReason.BATTERY_EMPTY),
        (1, DropReason.BATTERY_EMPTY),
        (2, DropReason.BATTERY_EMPTY),
    ]
    assert fw.counters.dropped[DropReason.BATTERY_EMPTY] == 3
    assert len(only(events, PoweredOff)) == 1
    assert led(fw) is Led.OFF
    assert fw.dead
    assert fw.queued == 0
    assert not only(bench.events + events, PublishRequested)
    later = fw.press(now + 10) + fw.release(now + 10.1) + fw.timer(now + 20)
    assert later == []
    assert fw.counters.presses_while_dead == 1


def test_gave_up_clicks_are_dropped_when_the_cell_runs_out_asleep() -> None:
    profile = load("aws-iot-button-gen1")
    spec = profile.battery
    # a wake and max_attempts failed connects still fit; a year of self-discharge not
    used = (
        spec.capacity_mah
        - spec.wake_mah
        - profile.mqtt.max_attempts * spec.failed_connect_mah
        - 1.0
    )
    fw = make_firmware(profile.name, state=BatteryState(used_mah=used))
    bench = Bench(fw)
    bench.failures.extend([ConnectFailure.WIFI] * profile.mqtt.max_attempts)
    bench.click(T0)
    bench.settle()
    assert only(bench.events, GaveUp) == [GaveUp(attempts=profile.mqtt.max_attempts, queued=1)]
    assert fw.queued == 1
    bench.events.clear()
    bench.advance(bench.now + 365.25 * 86_400)
    bench.take(fw.timer(bench.now))
    [dropped] = only(bench.events, ClickDropped)
    assert dropped.reason is DropReason.BATTERY_EMPTY
    assert dropped.click.seq == 0
    assert len(only(bench.events, PoweredOff)) == 1


def used_after(profile_name: str, held_ms: float) -> float:
    fw = make_firmware(profile_name)
    bench = Bench(fw)
    bench.tap(T0, held_ms)
    bench.settle()
    bench.take(fw.timer(T0 + 30))  # both devices end at the same time
    assert len(bench.clicks()) == 1
    assert fw.counters.published == 1
    return fw.battery.state.used_mah


@pytest.mark.parametrize("profile_name", PROFILE_NAMES)
def test_long_press_costs_more_than_a_single(profile_name: str) -> None:
    t = load(profile_name).timings
    single = used_after(profile_name, t.debounce_ms + 10)
    long_ = used_after(profile_name, t.long_press_ms + 50)
    assert long_ > single
