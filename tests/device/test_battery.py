"""The battery: life per click, self-discharge, voltage, plans and restarts."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, TypeVar

import pytest
from freezegun import freeze_time

from simulator.device.battery import Action, Battery, BatteryState, TimeWentBackwards
from simulator.device.firmware import (
    ClickRecognised,
    ConnectRequested,
    Event,
    Firmware,
    LinkState,
    PoweredOff,
    PublishRequested,
)
from simulator.device.profile import ConnectionMode, Profile, parse_profile
from simulator.protocol import ClickType, format_timestamp, parse_timestamp

PROFILES: Final = Path(__file__).resolve().parents[2] / "profiles"
PROFILE_NAMES: Final = sorted(path.stem for path in PROFILES.glob("*.toml"))
ENTERPRISE: Final = "aws-iot-enterprise-button"
SORACOM: Final = "soracom-lte-m-button"
PERSISTENT: Final = "clicksim-persistent-button"
CERT: Final = hashlib.sha256(b"clicksim battery test").hexdigest()
T0: Final = 1_700_000_000.0
HOUR: Final = 3600.0
DAY: Final = 86_400.0
YEAR: Final = 365.25 * DAY


def profile_text(name: str) -> str:
    return (PROFILES / f"{name}.toml").read_text()


def load(name: str, text: str | None = None) -> Profile:
    return parse_profile(text if text is not None else profile_text(name), source=name)


def make_firmware(profile: Profile | str, *, state: BatteryState | None = None) -> Firmware:
    if isinstance(profile, str):
        profile = load(profile)
    return Firmware(
        profile,
        device_id=profile.id.make(itertools.count(3)),
        certificate_id=CERT,
        battery=Battery(profile.battery, profile.plan, state or BatteryState()),
        rng=random.Random(1),
    )


_LOADED: Final[dict[str, Profile]] = {}


def fresh_battery(name: str, used_mah: float = 0.0) -> Battery:
    profile = _LOADED.get(name) or _LOADED.setdefault(name, load(name))
    return Battery(profile.battery, profile.plan, BatteryState(used_mah=used_mah))


E = TypeVar("E")


def only(events: Iterable[Event], kind: type[E]) -> list[E]:
    return [event for event in events if isinstance(event, kind)]


class Driver:
    """Presses the button and answers the network at once: every connect succeeds."""

    def __init__(self, fw: Firmware) -> None:
        self.fw = fw
        self.now = T0
        self.events: list[Event] = []

    def take(self, events: list[Event]) -> None:
        self.events.extend(events)
        for event in events:
            if isinstance(event, ConnectRequested):
                self.take(self.fw.connected(self.now))
            elif isinstance(event, PublishRequested):
                self.take(self.fw.published(self.now, event.click.seq))

    def run_deadlines(self, until: float | None = None) -> None:
        while (deadline := self.fw.next_deadline()) is not None:
            if until is not None and deadline > until:
                break
            self.now = max(self.now, deadline)
            self.take(self.fw.timer(self.now))

    def at(self, when: float) -> None:
        self.run_deadlines(when)
        self.now = max(self.now, when)

    def press_for(self, when: float, held_s: float) -> None:
        self.at(when)
        self.take(self.fw.press(when))
        self.at(when + held_s)
        self.take(self.fw.release(when + held_s))

    def click(self, when: float, kind: ClickType = ClickType.SINGLE) -> None:
        """One click of ``kind`` from ``when``, then every timer it set runs out."""
        t = self.fw.profile.timings
        short = (t.debounce_ms + 10) / 1000
        if kind is ClickType.LONG:
            self.press_for(when, (t.long_press_ms + 50) / 1000)
        else:
            self.press_for(when, short)
            if kind is ClickType.DOUBLE:
                self.press_for(self.now + t.double_click_window_ms / 2000, short)
        self.run_deadlines()

    def lives(self) -> list[float]:
        return [e.click.remaining_life for e in only(self.events, ClickRecognised)]


def interpolate(curve: tuple[tuple[float, int], ...], life: float) -> float:
    """The profile curve read at ``life``, unrounded."""
    for (life_a, mv_a), (life_b, mv_b) in itertools.pairwise(curve):
        if life_a <= life <= life_b:
            return mv_a + (life - life_a) / (life_b - life_a) * (mv_b - mv_a)
    raise AssertionError(f"life {life} is off the curve")


# --- calibration ---------------------------------------------------------------------


def test_enterprise_button_gives_about_2000_single_clicks() -> None:
    fw = make_firmware(ENTERPRISE)
    driver = Driver(fw)
    when = T0
    for _ in range(3000):
        if fw.dead:
            break
        driver.click(when)
        when += 10.0
    assert fw.dead
    assert 1800 <= fw.counters.published <= 2200
    assert fw.counters.published == fw.counters.clicks
    assert [e.reason for e in only(driver.events, PoweredOff)] == ["battery empty"]
    assert fw.battery.cell_life == 0.0

    lives = driver.lives()
    assert lives[0] == pytest.approx(100.0, abs=0.01)
    drops = [a - b for a, b in itertools.pairwise(lives) if b > 0]
    assert len(drops) >= 1800
    assert all(0.04 <= drop <= 0.06 for drop in drops), (min(drops), max(drops))

    # the device is silent from now on
    before = len(only(driver.events, PublishRequested))
    driver.click(when + 60)
    assert len(only(driver.events, PublishRequested)) == before
    assert fw.counters.presses_while_dead == 1


# --- self-discharge ------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_a_year_of_self_discharge_takes_the_profile_share(name: str) -> None:
    spec = load(name).battery
    battery = fresh_battery(name)
    battery.elapse(T0, connected=False)
    battery.elapse(T0 + YEAR, connected=False)
    expected = spec.capacity_mah * spec.self_discharge_per_year
    assert battery.state.used_mah == pytest.approx(expected, rel=1e-12)
    assert battery.cell_life == pytest.approx(100 * (1 - spec.self_discharge_per_year))


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_self_discharge_does_not_depend_on_the_step(name: str) -> None:
    spec = load(name).battery
    battery = fresh_battery(name)
    for day in range(366):
        battery.elapse(T0 + day * DAY, connected=False)
    battery.elapse(T0 + YEAR, connected=False)
    expected = spec.capacity_mah * spec.self_discharge_per_year
    assert battery.state.used_mah == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_an_idle_firmware_only_self_discharges(name: str) -> None:
    # No press and no power_on: the device sleeps (a persistent one was never started).
    fw = make_firmware(name)
    spec = fw.profile.battery
    for when in (T0, T0 + DAY, T0 + 100 * DAY, T0 + YEAR):
        assert fw.timer(when) == []
    assert fw.link_state is LinkState.ASLEEP
    expected = spec.capacity_mah * spec.self_discharge_per_year
    assert fw.battery.state.used_mah == pytest.approx(expected, rel=1e-12)


def test_wall_clock_time_under_freezegun() -> None:
    profile = load(ENTERPRISE)
    spec = profile.battery
    start = datetime(2024, 3, 1, tzinfo=UTC)
    with freeze_time(start) as clock:
        fw = make_firmware(profile)
        driver = Driver(fw)
        fw.timer(time.time())
        clock.tick(timedelta(days=100))
        fw.timer(time.time())
        clock.move_to(start + timedelta(days=365.25))
        fw.timer(time.time())
        assert fw.battery.state.used_mah == pytest.approx(
            spec.capacity_mah * spec.self_discharge_per_year, rel=1e-9
        )
        # a click at wall-clock time carries that time
        clock.tick(timedelta(hours=1))
        pressed_at = time.time()
        driver.now = pressed_at
        driver.click(pressed_at)
    [publish] = only(driver.events, PublishRequested)
    body = json.loads(publish.payload)
    reported = parse_timestamp(body["reportedTime"])
    window = profile.timings.double_click_window_ms / 1000
    assert reported == pytest.approx(
        pressed_at + (profile.timings.debounce_ms + 10) / 1000 + window
    )
    assert body["reportedTime"].startswith("2025-03-01T07:00:00.")  # 365.25 days + 1 h
    assert format_timestamp(pressed_at) == "2025-03-01T07:00:00.000Z"


# --- remainingLife and batteryVoltage ---------------------------------------------------


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_curve_endpoints_map_exactly(name: str) -> None:
    spec = load(name).battery
    top, bottom = spec.curve[-1][1], spec.curve[0][1]
    full = fresh_battery(name)
    assert full.cell_life == 100.0
    assert full.voltage_mv == top
    empty = fresh_battery(name, used_mah=spec.capacity_mah)
    assert empty.cell_life == 0.0
    assert empty.voltage_mv == bottom
    beyond = fresh_battery(name, used_mah=spec.capacity_mah * 1.5)
    assert beyond.cell_life == 0.0
    assert beyond.voltage_mv == bottom


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_voltage_is_the_curve_at_the_cell_life(name: str) -> None:
    spec = load(name).battery
    lives = {life for life, _ in spec.curve}
    lives |= {(a + b) / 2 for (a, _), (b, _) in itertools.pairwise(spec.curve)}
    lives |= {0.5, 33.3, 71.25, 99.9}
    for life in sorted(lives):
        battery = fresh_battery(name, used_mah=spec.capacity_mah * (1 - life / 100))
        assert battery.cell_life == pytest.approx(life)
        expected = interpolate(spec.curve, life)
        assert abs(battery.voltage_mv - expected) <= 0.5 + 1e-6, (life, battery.voltage_mv)
    for life, mv in spec.curve:  # the points themselves, exactly
        battery = fresh_battery(name, used_mah=spec.capacity_mah * (1 - life / 100))
        assert battery.voltage_mv == mv


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_voltage_falls_monotonically_with_life(name: str) -> None:
    spec = load(name).battery
    voltages = [
        fresh_battery(name, used_mah=spec.capacity_mah * step / 1000).voltage_mv
        for step in range(1001)
    ]
    assert all(a >= b for a, b in itertools.pairwise(voltages))
    assert voltages[0] == spec.curve[-1][1]
    assert voltages[-1] == spec.curve[0][1]


@pytest.mark.parametrize("name", [n for n in PROFILE_NAMES if n != SORACOM])
@pytest.mark.parametrize("used_share", [0.0, 0.1, 0.333, 0.5, 0.77, 0.95, 0.99])
def test_reported_life_and_voltage_agree(name: str, used_share: float) -> None:
    profile = load(name)
    spec = profile.battery
    fw = make_firmware(profile, state=BatteryState(used_mah=spec.capacity_mah * used_share))
    driver = Driver(fw)
    driver.click(T0)
    [publish] = only(driver.events, PublishRequested)
    click = publish.click
    assert click.remaining_life == pytest.approx(100 * (1 - used_share), abs=0.01)
    assert abs(click.battery_mv - interpolate(spec.curve, click.remaining_life)) <= 0.5 + 1e-6
    if profile.payload.value == "oneclick":
        body = json.loads(publish.payload)
        life = body["remainingLife"]
        millivolts = int(body["batteryVoltage"].removesuffix("mV"))
        assert abs(millivolts - interpolate(spec.curve, life)) <= 1.0


# --- plans -----------------------------------------------------------------------------------


def test_soracom_plan_ends_after_1500_clicks_with_charge_left() -> None:
    fw = make_firmware(SORACOM)
    driver = Driver(fw)
    kinds = itertools.cycle([ClickType.SINGLE, ClickType.SINGLE, ClickType.DOUBLE, ClickType.LONG])
    when = T0
    for _ in range(1500):
        assert not fw.dead
        driver.click(when, next(kinds))
        when += 10.0
    assert fw.counters.published == 1500  # every click type counts as one
    assert fw.dead
    assert [e.reason for e in only(driver.events, PoweredOff)] == ["plan used up"]
    assert fw.battery.cell_life > 1.0  # the cells still hold charge
    assert fw.battery.remaining_life(when) == 0.0

    driver.click(when + 60)  # the 1,501st press
    assert fw.counters.published == 1500
    assert len(only(driver.events, PublishRequested)) == 1500
    assert len(only(driver.events, ClickRecognised)) == 1500
    assert fw.counters.presses_while_dead == 1


def test_soracom_plan_life_counts_down_per_click() -> None:
    fw = make_firmware(SORACOM)
    driver = Driver(fw)
    for n in range(3):
        driver.click(T0 + 10 * n)
    assert driver.lives() == pytest.approx([100 * (1 - k / 1500) for k in (1, 2, 3)])


def test_soracom_plan_ends_a_year_after_the_first_click() -> None:
    fw = make_firmware(SORACOM)
    driver = Driver(fw)
    driver.click(T0)
    first = only(driver.events, ClickRecognised)[0].click.reported_at
    driver.click(first + 182.5 * DAY)
    assert driver.lives()[-1] == pytest.approx(50.0, abs=0.2)  # half the plan's days
    driver.click(first + 364 * DAY)
    assert fw.counters.published == 3
    assert not fw.dead

    driver.click(first + 365 * DAY + 60)
    assert fw.counters.published == 3
    assert fw.dead
    assert [e.reason for e in only(driver.events, PoweredOff)] == ["plan used up"]
    assert fw.battery.cell_life > 50.0


def test_plan_days_start_at_the_first_click_not_at_power_on() -> None:
    fw = make_firmware(SORACOM)
    driver = Driver(fw)
    fw.timer(T0)
    driver.click(T0 + 400 * DAY)  # a year on the shelf does not use the plan
    assert fw.counters.published == 1
    assert not fw.dead


# --- persistent devices: time connected costs charge -------------------------------------


def test_persistent_device_pays_for_connected_time() -> None:
    fw = make_firmware(PERSISTENT)
    spec = fw.profile.battery
    driver = Driver(fw)
    driver.take(fw.power_on(T0))
    assert fw.link_state is LinkState.ONLINE
    after_connect = fw.battery.state.used_mah
    assert after_connect == pytest.approx(spec.wake_mah + spec.handshake_mah)
    fw.timer(T0 + 10 * HOUR)
    used = fw.battery.state.used_mah - after_connect
    self_discharge = spec.capacity_mah * spec.self_discharge_per_year * 10 * HOUR / YEAR
    assert used == pytest.approx(10 * spec.connected_ma + self_discharge, rel=1e-9)


def test_persistent_device_does_not_pay_while_disconnected() -> None:
    fw = make_firmware(PERSISTENT)
    spec = fw.profile.battery
    driver = Driver(fw)
    driver.take(fw.power_on(T0))
    fw.connection_lost(T0)
    assert fw.link_state is LinkState.BACKOFF
    before = fw.battery.state.used_mah
    # backing off: not connected, so no connected_ma (the retry is not answered here)
    fw.timer(T0 + 0.001)
    assert fw.battery.state.used_mah - before == pytest.approx(
        spec.capacity_mah * spec.self_discharge_per_year * 0.001 / YEAR
    )


def test_asleep_time_costs_only_self_discharge_even_with_connected_ma() -> None:
    # The persistent cell, but woken per click: its hours asleep are not connected hours.
    text = profile_text(PERSISTENT).replace('connection = "persistent"', 'connection = "per-click"')
    profile = load(PERSISTENT, text)
    assert profile.connection is ConnectionMode.PER_CLICK
    assert profile.battery.connected_ma > 0
    spec = profile.battery
    fw = make_firmware(profile)
    driver = Driver(fw)
    driver.click(T0)
    assert fw.link_state is LinkState.ASLEEP
    before = fw.battery.state.used_mah
    fw.timer(driver.now + 10 * HOUR)
    self_discharge = spec.capacity_mah * spec.self_discharge_per_year * 10 * HOUR / YEAR
    assert fw.battery.state.used_mah - before == pytest.approx(self_discharge, rel=1e-9)


def test_connected_flag_adds_connected_current() -> None:
    spec = load(PERSISTENT).battery
    up, down = fresh_battery(PERSISTENT), fresh_battery(PERSISTENT)
    for battery, connected in ((up, True), (down, False)):
        battery.elapse(T0, connected=connected)
        battery.elapse(T0 + HOUR, connected=connected)
    assert up.state.used_mah - down.state.used_mah == pytest.approx(spec.connected_ma)


# --- accounting and state ------------------------------------------------------------------


@pytest.mark.parametrize("action", list(Action))
def test_each_action_costs_its_profile_price(action: Action) -> None:
    spec = load(ENTERPRISE).battery
    battery = fresh_battery(ENTERPRISE)
    battery.spend(action)
    prices = {
        Action.WAKE: spec.wake_mah,
        Action.HANDSHAKE: spec.handshake_mah,
        Action.PUBLISH: spec.publish_mah,
        Action.FAILED_CONNECT: spec.failed_connect_mah,
    }
    assert battery.state.used_mah == pytest.approx(prices[action])


def test_holding_costs_press_current() -> None:
    spec = load(ENTERPRISE).battery
    battery = fresh_battery(ENTERPRISE)
    battery.hold(1.5)
    assert battery.state.used_mah == pytest.approx(spec.press_ma * 1.5 / HOUR)
    battery.hold(-1.0)  # never a refund
    assert battery.state.used_mah == pytest.approx(spec.press_ma * 1.5 / HOUR)


def test_battery_state_round_trip() -> None:
    profile = load(SORACOM)
    battery = Battery(profile.battery, profile.plan, BatteryState())
    battery.elapse(T0, connected=False)
    battery.count_click(T0 + 1)
    battery.spend(Action.WAKE)
    battery.hold(0.2)
    battery.count_click(T0 + 50)
    battery.elapse(T0 + 30 * DAY, connected=False)
    state = battery.state
    assert state.clicks == 2
    assert state.first_click_at == T0 + 1
    assert state.updated_at == T0 + 30 * DAY

    again = Battery(profile.battery, profile.plan, state)
    assert again.state == state
    now = T0 + 40 * DAY
    assert again.cell_life == battery.cell_life
    assert again.voltage_mv == battery.voltage_mv
    assert again.plan_life(now) == battery.plan_life(now)
    assert again.remaining_life(now) == battery.remaining_life(now)
    # and it carries on from where it was: the time since updated_at is charged
    battery.elapse(now, connected=False)
    again.elapse(now, connected=False)
    assert again.state == battery.state


def test_time_going_backwards_is_refused() -> None:
    battery = fresh_battery(ENTERPRISE)
    battery.elapse(T0, connected=False)
    with pytest.raises(TimeWentBackwards):
        battery.elapse(T0 - 1, connected=False)
    restored = Battery(load(ENTERPRISE).battery, None, BatteryState(updated_at=T0))
    with pytest.raises(TimeWentBackwards):
        restored.elapse(T0 - 0.5, connected=True)
    assert issubclass(TimeWentBackwards, ValueError)


@pytest.mark.parametrize("state", [{"used_mah": -0.1}, {"clicks": -1}])
def test_battery_state_refuses_negative_figures(state: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="negative"):
        BatteryState(**state)  # type: ignore[arg-type]


def test_no_plan_means_full_plan_life() -> None:
    battery = fresh_battery(ENTERPRISE)
    battery.count_click(T0)
    assert battery.plan_life(T0 + 10 * YEAR) == 100.0
