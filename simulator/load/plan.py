"""What a load run offers: stages of rising click rate, and what counts as breaking.

A plan is pure data, checked when built so that a bad value is refused with a
message before any device wakes. Stage ``n`` offers ``start_rate * factor**(n-1)``
clicks/s; a factor of 1 makes one constant stage (a soak at a fixed rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    click_p99_ms: float = 2000.0
    """Click recognised -> broker's PUBACK (wake, TLS connect, publish)."""
    visible_p99_ms: float = 1000.0
    """PUBACK -> listed by ListDeviceEvents (sampled clicks)."""
    api_p99_ms: float = 1000.0
    max_failure_ratio: float = 0.01
    """Clicks not acknowledged / clicks made; API errors / calls."""
    min_achieved_ratio: float = 0.9
    """Acknowledged clicks/s over offered clicks/s."""

    def __post_init__(self) -> None:
        for name in ("click_p99_ms", "visible_p99_ms", "api_p99_ms"):
            _positive(f"thresholds.{name}", getattr(self, name))
        _ratio("thresholds.max_failure_ratio", self.max_failure_ratio)
        _ratio("thresholds.min_achieved_ratio", self.min_achieved_ratio)


@dataclass(frozen=True, kw_only=True)
class LoadPlan:
    devices: int
    """Fleet size (each device clicks at most once at a time)."""
    profile: str
    """Bundled profile name."""
    start_rate: float
    """Clicks/s of stage 1."""
    factor: float
    """Each next stage's rate = previous * factor; 1.0 = one constant stage."""
    stages: int
    """At most this many stages."""
    stage_seconds: float
    api_rate: float
    """DescribeDevice calls/s during every stage (0: none)."""
    visible_sample: float = 0.05
    """Share of acknowledged clicks whose visibility is measured."""
    thresholds: Thresholds = field(default_factory=Thresholds)

    def __post_init__(self) -> None:
        if isinstance(self.devices, bool) or not isinstance(self.devices, int):
            raise ValueError(f"devices must be a whole number, got {self.devices!r}")
        if self.devices < 1:
            raise ValueError(f"devices must be at least 1, got {self.devices}")
        if not self.profile:
            raise ValueError("profile must name a profile")
        _positive("start_rate", self.start_rate)
        if not (math.isfinite(self.factor) and self.factor >= 1.0):
            raise ValueError(
                f"factor must be at least 1 (1: one constant stage), got {self.factor}"
            )
        if isinstance(self.stages, bool) or not isinstance(self.stages, int) or self.stages < 1:
            raise ValueError(f"stages must be a whole number of at least 1, got {self.stages!r}")
        _positive("stage_seconds", self.stage_seconds)
        if self.start_rate * self.stage_seconds < 1:
            raise ValueError(
                f"start_rate x stage_seconds must offer at least one click per stage, got "
                f"{self.start_rate:g}/s x {self.stage_seconds:g} s"
            )
        if not (math.isfinite(self.api_rate) and self.api_rate >= 0):
            raise ValueError(f"api_rate must be 0 (none) or more, got {self.api_rate}")
        _ratio("visible_sample", self.visible_sample)

    def rates(self) -> list[float]:
        """The offered clicks/s of each stage; one stage when ``factor`` is 1."""
        if self.factor == 1.0:
            return [self.start_rate]
        return [self.start_rate * self.factor**index for index in range(self.stages)]


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a number above 0, got {value}")


def _ratio(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be within 0..1, got {value}")
