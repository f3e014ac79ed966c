"""The battery: what a button's life is made of, charged action by action.

Pure accounting in the style of aioquic: the caller says what time it is (``now``,
POSIX seconds) and what the device did; the model never reads a clock. Charge is
spent per action (a wake, a TLS handshake, a publish, a failed connect, time held
down, time kept connected) and by self-discharge over calendar time. A service plan
(clicks or days) can end a device's life before its cell does.

``remainingLife`` (0..100) and ``batteryVoltage`` agree: the voltage is read off the
profile's discharge curve at the cell's life. With a plan, the reported life is the
lower of the cell's and the plan's, and the voltage stays the cell's, as on a real
LTE-M button whose cell outlasts its plan.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass
from typing import Final

from simulator.device.profile import BatterySpec, PlanSpec

SECONDS_PER_HOUR: Final = 3600.0
SECONDS_PER_DAY: Final = 86_400.0
SECONDS_PER_YEAR: Final = 365.25 * SECONDS_PER_DAY


class Action(enum.Enum):
    """A one-off cost, priced by the profile."""

    WAKE = "wake_mah"
    HANDSHAKE = "handshake_mah"
    PUBLISH = "publish_mah"
    FAILED_CONNECT = "failed_connect_mah"


class TimeWentBackwards(ValueError):
    """``now`` was earlier than a time the battery was already told about."""


@dataclass(frozen=True, kw_only=True, slots=True)
class BatteryState:
    """What survives a restart; kept with the fleet."""

    used_mah: float = 0.0
    clicks: int = 0
    first_click_at: float | None = None
    updated_at: float | None = None

    def __post_init__(self) -> None:
        if self.used_mah < 0 or self.clicks < 0:
            raise ValueError("battery state cannot hold negative use or clicks")


class Battery:
    def __init__(self, spec: BatterySpec, plan: PlanSpec | None, state: BatteryState) -> None:
        self._spec = spec
        self._plan = plan
        self._used_mah = state.used_mah
        self._clicks = state.clicks
        self._first_click_at = state.first_click_at
        self._updated_at = state.updated_at

    @property
    def state(self) -> BatteryState:
        return BatteryState(
            used_mah=self._used_mah,
            clicks=self._clicks,
            first_click_at=self._first_click_at,
            updated_at=self._updated_at,
        )

    def elapse(self, now: float, *, connected: bool) -> None:
        """Charge the time since the last call: self-discharge, and the link if kept up."""
        if self._updated_at is None:
            self._updated_at = now
            return
        seconds = now - self._updated_at
        if seconds < 0:
            raise TimeWentBackwards(f"time went backwards: {now} is before {self._updated_at}")
        spec = self._spec
        yearly_loss_mah = spec.capacity_mah * spec.self_discharge_per_year
        self._used_mah += yearly_loss_mah * seconds / SECONDS_PER_YEAR
        if connected:
            self._used_mah += spec.connected_ma * seconds / SECONDS_PER_HOUR
        self._updated_at = now

    def spend(self, action: Action) -> None:
        self._used_mah += float(getattr(self._spec, action.value))

    def hold(self, seconds: float) -> None:
        """The button was held down this long: the MCU and LED were on."""
        self._used_mah += self._spec.press_ma * max(seconds, 0.0) / SECONDS_PER_HOUR

    def count_click(self, now: float) -> None:
        """A click was made: what a plan counts."""
        self._clicks += 1
        if self._first_click_at is None:
            self._first_click_at = now

    @property
    def cell_life(self) -> float:
        """The cell's remaining charge, 0..100."""
        left = 1.0 - self._used_mah / self._spec.capacity_mah
        return max(0.0, min(100.0, left * 100.0))

    def plan_life(self, now: float) -> float:
        """What the plan has left, 0..100 (100 with no plan)."""
        plan = self._plan
        if plan is None:
            return 100.0
        shares = [1.0]
        if plan.max_clicks is not None:
            shares.append(1.0 - self._clicks / plan.max_clicks)
        if plan.max_days is not None and self._first_click_at is not None:
            days = (now - self._first_click_at) / SECONDS_PER_DAY
            shares.append(1.0 - days / plan.max_days)
        return max(0.0, min(shares) * 100.0)

    def remaining_life(self, now: float) -> float:
        """``remainingLife`` as the device reports it, 0..100."""
        return min(self.cell_life, self.plan_life(now))

    @property
    def voltage_mv(self) -> int:
        """The cell voltage at its life, read off the profile's discharge curve."""
        life = self.cell_life
        curve = self._spec.curve
        for (life_low, mv_low), (life_high, mv_high) in itertools.pairwise(curve):
            if life <= life_high:
                share = (life - life_low) / (life_high - life_low)
                return round(mv_low + share * (mv_high - mv_low))
        return curve[-1][1]

    def is_dead(self, now: float) -> bool:
        return self.remaining_life(now) <= 0.0
