"""Device profiles: what one model of button is, read from a TOML text.

A profile holds everything that differs between real buttons: how ids look, how the
firmware tells clicks apart, what each action costs the battery, how it talks MQTT
and how often its owner presses it. Parsing is pure (text in, ``Profile`` out); the
files are found and read by ``simulator.resources``.

A bad profile is refused with the source, the line where it can be found, the key
and the reason, and unknown keys are refused too so that a typo is never ignored.
"""

from __future__ import annotations

import enum
import itertools
import math
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, NoReturn, TypeVar

from simulator.protocol import ClickType, PayloadFormat


class ConnectionMode(enum.StrEnum):
    PER_CLICK = "per-click"
    """Wake, connect, publish, disconnect, sleep: how the battery buttons work."""
    PERSISTENT = "persistent"
    """Stay connected with keepalive and a last will."""


class Network(enum.StrEnum):
    WIFI = "wifi"
    LTE_M = "lte-m"


class MqttVersion(enum.StrEnum):
    V311 = "3.1.1"
    V5 = "5"


class ProfileError(ValueError):
    """A profile that cannot be used; the message names source, line, key and reason."""


@dataclass(frozen=True, kw_only=True, slots=True)
class IdFormat:
    prefix: str
    length: int
    alphabet: str

    def make(self, random_symbols: Iterator[int]) -> str:
        """An id from a stream of random integers (the caller owns the randomness)."""
        size = len(self.alphabet)
        tail = (
            self.alphabet[next(random_symbols) % size]
            for _ in range(self.length - len(self.prefix))
        )
        return self.prefix + "".join(tail)

    def matches(self, device_id: str) -> bool:
        return (
            len(device_id) == self.length
            and device_id.startswith(self.prefix)
            and all(c in self.alphabet for c in device_id[len(self.prefix) :])
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Timings:
    """How the firmware reads the button, in milliseconds."""

    debounce_ms: int
    """A press shorter than this is contact bounce and is ignored."""
    double_click_window_ms: int
    """After a release, how long the firmware waits for a second press."""
    long_press_ms: int
    """Held this long, the press is a LONG click."""
    led_success_ms: int
    """How long the LED stays solid green after a click was delivered."""


@dataclass(frozen=True, kw_only=True, slots=True)
class BatterySpec:
    """The cell and what each action costs it, in mAh (or mA for currents)."""

    capacity_mah: float
    wake_mah: float
    handshake_mah: float
    publish_mah: float
    press_ma: float
    failed_connect_mah: float
    connected_ma: float
    self_discharge_per_year: float
    curve: tuple[tuple[float, int], ...]
    """(remaining life %, cell voltage mV) points, life rising from 0 to 100."""

    def single_click_mah(self) -> float:
        """What one isolated SINGLE click of a per-click device costs (no press time)."""
        return self.wake_mah + self.handshake_mah + self.publish_mah


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanSpec:
    """A service plan that ends a device's life: SORACOM's is 1,500 clicks or a year."""

    max_clicks: int | None
    max_days: int | None


@dataclass(frozen=True, kw_only=True, slots=True)
class MqttSpec:
    version: MqttVersion
    keepalive_s: int
    offline_queue: int
    """How many undelivered clicks the device keeps; more are dropped and counted."""
    backoff_base_s: float
    backoff_cap_s: float
    max_attempts: int
    """Failed connects in a row before a per-click device gives up until its next press."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Habits:
    """How often and how its owner presses the button, for ``clicksim fleet run``."""

    clicks_per_hour: float
    mix: tuple[tuple[ClickType, float], ...]
    """Click types and their shares, summing to 1."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Profile:
    name: str
    description: str
    device_type: str
    connection: ConnectionMode
    payload: PayloadFormat
    network: Network
    id: IdFormat
    timings: Timings
    battery: BatterySpec
    plan: PlanSpec | None
    mqtt: MqttSpec
    habits: Habits


PROFILE_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_DEVICE_TYPE: Final = re.compile(r"^[a-z][a-zA-Z0-9]{0,31}$")
_ID_SYMBOLS: Final = re.compile(r"^[A-Za-z0-9_-]+$")


def parse_profile(text: str, *, source: str) -> Profile:
    """Parse a profile; ``source`` names the file in errors."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML: {exc}") from None
    reader = _Reader(document, text=text, source=source)
    profile = _build(reader)
    reader.refuse_unknown()
    return profile


def _build(r: _Reader) -> Profile:
    name = r.text("", "name", pattern=PROFILE_NAME, hint="lowercase letters, digits and '-'")
    id_format = _id_format(r)
    timings = Timings(
        debounce_ms=r.integer("timings", "debounce_ms", low=0, high=500),
        double_click_window_ms=r.integer("timings", "double_click_window_ms", low=50, high=5000),
        long_press_ms=r.integer("timings", "long_press_ms", low=200, high=30_000),
        led_success_ms=r.integer("timings", "led_success_ms", low=0, high=60_000),
    )
    if timings.debounce_ms >= timings.long_press_ms:
        r.fail("timings", "debounce_ms", "must be shorter than long_press_ms")
    connection = r.choice("", "connection", ConnectionMode)
    mqtt = MqttSpec(
        version=r.choice("mqtt", "version", MqttVersion),
        keepalive_s=r.integer("mqtt", "keepalive_s", low=5, high=65_535),
        offline_queue=r.integer("mqtt", "offline_queue", low=1, high=100_000),
        backoff_base_s=r.number("mqtt", "backoff_base_s", low=0.01, high=3600.0),
        backoff_cap_s=r.number("mqtt", "backoff_cap_s", low=0.01, high=86_400.0),
        max_attempts=r.integer("mqtt", "max_attempts", low=1, high=1000),
    )
    if mqtt.backoff_cap_s < mqtt.backoff_base_s:
        r.fail("mqtt", "backoff_cap_s", "must not be smaller than backoff_base_s")
    return Profile(
        name=name,
        description=r.text("", "description"),
        device_type=r.text("", "device_type", pattern=_DEVICE_TYPE, hint="like 'button'"),
        connection=connection,
        payload=r.choice("", "payload", PayloadFormat),
        network=r.choice("", "network", Network),
        id=id_format,
        timings=timings,
        battery=_battery(r),
        plan=_plan(r),
        mqtt=mqtt,
        habits=_habits(r),
    )


def _id_format(r: _Reader) -> IdFormat:
    alphabet = r.text("id", "alphabet", pattern=_ID_SYMBOLS, hint="letters, digits, '_' or '-'")
    if len(set(alphabet)) != len(alphabet) or len(alphabet) < 2:
        r.fail("id", "alphabet", "needs at least two distinct symbols, none repeated")
    prefix = r.text("id", "prefix", pattern=_ID_SYMBOLS, hint="letters, digits, '_' or '-'")
    length = r.integer("id", "length", low=len(prefix) + 4, high=128)
    return IdFormat(prefix=prefix, length=length, alphabet=alphabet)


def _battery(r: _Reader) -> BatterySpec:
    curve = _curve(r)
    return BatterySpec(
        capacity_mah=r.number("battery", "capacity_mah", low=1.0, high=1e7),
        wake_mah=r.number("battery", "wake_mah", low=0.0, high=100.0),
        handshake_mah=r.number("battery", "handshake_mah", low=0.0, high=100.0),
        publish_mah=r.number("battery", "publish_mah", low=0.0, high=100.0),
        press_ma=r.number("battery", "press_ma", low=0.0, high=1000.0),
        failed_connect_mah=r.number("battery", "failed_connect_mah", low=0.0, high=100.0),
        connected_ma=r.number("battery", "connected_ma", low=0.0, high=1000.0),
        self_discharge_per_year=r.number("battery", "self_discharge_per_year", low=0.0, high=1.0),
        curve=curve,
    )


def _curve(r: _Reader) -> tuple[tuple[float, int], ...]:
    raw = r.value("battery", "curve", list)
    points: list[tuple[float, int]] = []
    for point in raw:
        if not (
            isinstance(point, list)
            and len(point) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in point)
            and isinstance(point[1], int)
        ):
            r.fail("battery", "curve", "each point must be [remaining life %, millivolts]")
        points.append((float(point[0]), int(point[1])))
    if len(points) < 2 or points[0][0] != 0.0 or points[-1][0] != 100.0:
        r.fail("battery", "curve", "needs points from life 0 to life 100")
    for (life_a, mv_a), (life_b, mv_b) in itertools.pairwise(points):
        if life_b <= life_a:
            r.fail("battery", "curve", "life must rise strictly from point to point")
        if mv_b < mv_a:
            r.fail("battery", "curve", "voltage must not fall as life rises")
    if not all(0 < mv <= 99_999 for _, mv in points):
        r.fail("battery", "curve", "voltages must be within 1..99999 mV")
    return tuple(points)


def _plan(r: _Reader) -> PlanSpec | None:
    if not r.has("plan"):
        return None
    plan = PlanSpec(
        max_clicks=r.optional_integer("plan", "max_clicks", low=1, high=10**9),
        max_days=r.optional_integer("plan", "max_days", low=1, high=100_000),
    )
    if plan.max_clicks is None and plan.max_days is None:
        r.fail("plan", "max_clicks", "a [plan] needs max_clicks, max_days or both")
    return plan


def _habits(r: _Reader) -> Habits:
    per_hour = r.number("habits", "clicks_per_hour", low=0.0, high=36_000.0)
    mix = tuple(
        (click_type, r.number("habits", click_type.value.lower(), low=0.0, high=1.0))
        for click_type in ClickType
    )
    if not math.isclose(sum(share for _, share in mix), 1.0, abs_tol=1e-6):
        r.fail("habits", "single", "single + double + long must add up to 1")
    return Habits(clicks_per_hour=per_hour, mix=mix)


class _Reader:
    """Typed access to the TOML document that remembers what was read."""

    def __init__(self, document: dict[str, Any], *, text: str, source: str) -> None:
        self._document = document
        self._lines = text.splitlines()
        self._source = source
        self._read: set[tuple[str, str]] = set()

    def has(self, table: str) -> bool:
        return table in self._document

    def error(self, table: str, key: str, reason: str) -> ProfileError:
        where = f"{self._source}:{self._line_of(table, key)}"
        name = f"[{table}] {key}" if table else key
        return ProfileError(f"{where}: {name}: {reason}")

    def fail(self, table: str, key: str, reason: str) -> NoReturn:
        raise self.error(table, key, reason)

    def value(self, table: str, key: str, kind: type | tuple[type, ...]) -> Any:
        found = self._lookup(table, key)
        if found is _MISSING:
            self.fail(table, key, "is missing")
        if isinstance(found, bool) and bool not in _as_tuple(kind):
            self.fail(table, key, f"must be {_kind_name(kind)}, not a boolean")
        if not isinstance(found, kind):
            self.fail(table, key, f"must be {_kind_name(kind)}, got {type(found).__name__}")
        return found

    def text(
        self, table: str, key: str, *, pattern: re.Pattern[str] | None = None, hint: str = ""
    ) -> str:
        found: str = self.value(table, key, str)
        if pattern is not None and not pattern.fullmatch(found):
            self.fail(table, key, f"{found!r} is not allowed ({hint})")
        if not found.strip():
            self.fail(table, key, "must not be empty")
        return found

    def optional_integer(self, table: str, key: str, *, low: int, high: int) -> int | None:
        if self._lookup(table, key) is _MISSING:
            return None
        return self.integer(table, key, low=low, high=high)

    def integer(self, table: str, key: str, *, low: int, high: int) -> int:
        found: int = self.value(table, key, int)
        if not low <= found <= high:
            self.fail(table, key, f"must be within {low}..{high}, got {found}")
        return found

    def number(self, table: str, key: str, *, low: float, high: float) -> float:
        found = float(self.value(table, key, (int, float)))
        if not (math.isfinite(found) and low <= found <= high):
            self.fail(table, key, f"must be within {low:g}..{high:g}, got {found:g}")
        return found

    def choice(self, table: str, key: str, kind: type[_Choice]) -> _Choice:
        found: str = self.value(table, key, str)
        try:
            return kind(found)
        except ValueError:
            allowed = ", ".join(repr(member.value) for member in kind)
            raise self.error(table, key, f"{found!r} is not one of {allowed}") from None

    def refuse_unknown(self) -> None:
        for top_key, top_value in self._document.items():
            if isinstance(top_value, dict):
                for key in top_value:
                    if (top_key, key) not in self._read:
                        self.fail(top_key, key, "is not a profile setting (a typo?)")
            elif ("", top_key) not in self._read:
                self.fail("", top_key, "is not a profile setting (a typo?)")

    def _lookup(self, table: str, key: str) -> Any:
        self._read.add((table, key))
        container = self._document
        if table:
            container = self._document.get(table, {})
            if not isinstance(container, dict):
                self.fail("", table, "must be a table")
        return container.get(key, _MISSING)

    def _line_of(self, table: str, key: str) -> int:
        """Best-effort line of ``key`` in ``table``: where a user should look."""
        header = re.compile(rf"^\s*\[\s*{re.escape(table)}\s*\]") if table else None
        assignment = re.compile(rf"^\s*{re.escape(key)}\s*=")
        in_table = header is None
        table_line = 1
        for number, line in enumerate(self._lines, start=1):
            if _TABLE_HEADER.match(line):
                in_table = header is not None and bool(header.match(line))
                if in_table:
                    table_line = number
                continue
            if in_table and assignment.match(line):
                return number
        return table_line


_MISSING: Final = object()
_TABLE_HEADER: Final = re.compile(r"^\s*\[{1,2}\s*[A-Za-z0-9_.\"' -]+\s*\]{1,2}\s*(#.*)?$")
"""A ``[table]`` line, not a line of a multi-line array such as ``[5, 1200],``."""
_Choice = TypeVar("_Choice", bound=enum.StrEnum)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a list",
        bool: "true or false",
    }
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in _as_tuple(kind)))
