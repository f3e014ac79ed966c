"""Latency figures of a stage: exact percentiles, since a stage keeps every sample.

A stage holds at most some 1e5 samples (its rate times its seconds), so sorting them
once at the end costs little and spares the error of a streaming estimate, which
would blur the very tail (p99) that decides whether a stage broke.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class LatencySummary:
    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    """All four None when there is no sample."""


class LatencyRecorder:
    """Collects durations (seconds); ``summary`` gives nearest-rank percentiles in ms."""

    def __init__(self) -> None:
        self._samples: list[float] = []

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)

    def summary(self) -> LatencySummary:
        ordered = sorted(self._samples)
        if not ordered:
            return LatencySummary(count=0, p50_ms=None, p95_ms=None, p99_ms=None, max_ms=None)
        return LatencySummary(
            count=len(ordered),
            p50_ms=_nearest_rank(ordered, 50),
            p95_ms=_nearest_rank(ordered, 95),
            p99_ms=_nearest_rank(ordered, 99),
            max_ms=ordered[-1] * 1000,
        )


def _nearest_rank(ordered: list[float], percent: float) -> float:
    """The smallest sample with at least ``percent`` % of the samples at or below it."""
    rank = max(math.ceil(percent / 100 * len(ordered)), 1)
    return ordered[rank - 1] * 1000
