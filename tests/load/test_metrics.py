"""Latency summaries: exact nearest-rank percentiles, in milliseconds."""

from __future__ import annotations

import random

import pytest

from simulator.load.metrics import LatencyRecorder, LatencySummary


def test_no_sample_gives_no_figure() -> None:
    assert LatencyRecorder().summary() == LatencySummary(
        count=0, p50_ms=None, p95_ms=None, p99_ms=None, max_ms=None
    )


def test_percentiles_of_one_to_a_hundred_ms_in_any_order() -> None:
    samples = [ms / 1000 for ms in range(1, 101)]
    random.Random(7).shuffle(samples)
    recorder = LatencyRecorder()
    for seconds in samples:
        recorder.add(seconds)
    summary = recorder.summary()
    assert summary.count == 100
    assert summary.p50_ms == pytest.approx(50.0)
    assert summary.p95_ms == pytest.approx(95.0)
    assert summary.p99_ms == pytest.approx(99.0)
    assert summary.max_ms == pytest.approx(100.0)


def test_nearest_rank_on_a_small_set() -> None:
    recorder = LatencyRecorder()
    for seconds in (0.010, 0.020, 0.030, 0.400):
        recorder.add(seconds)
    summary = recorder.summary()
    # 50 % of 4 is rank 2; 95 % and 99 % round up to rank 4, the slowest.
    assert summary.p50_ms == pytest.approx(20.0)
    assert summary.p95_ms == pytest.approx(400.0)
    assert summary.p99_ms == pytest.approx(400.0)
    assert summary.max_ms == pytest.approx(400.0)


def test_one_sample_is_every_percentile() -> None:
    recorder = LatencyRecorder()
    recorder.add(0.25)
    summary = recorder.summary()
    assert (summary.p50_ms, summary.p99_ms, summary.max_ms) == (250.0, 250.0, 250.0)
