"""The load plan: stage rates, and bad values refused with a message naming them."""

from __future__ import annotations

import pytest

from simulator.load.plan import LoadPlan, Thresholds


def plan(**changes: object) -> LoadPlan:
    values: dict[str, object] = {
        "devices": 20,
        "profile": "aws-iot-enterprise-button",
        "start_rate": 5.0,
        "factor": 2.0,
        "stages": 4,
        "stage_seconds": 2.0,
        "api_rate": 0.0,
    }
    values.update(changes)
    return LoadPlan(**values)  # type: ignore[arg-type]


def test_rates_rise_by_the_factor() -> None:
    assert plan().rates() == [5.0, 10.0, 20.0, 40.0]
    assert plan(factor=1.5, stages=3, start_rate=2.0).rates() == [2.0, 3.0, 4.5]


def test_factor_one_is_one_constant_stage() -> None:
    assert plan(factor=1.0, stages=5).rates() == [5.0]


def test_defaults() -> None:
    made = plan()
    assert made.visible_sample == 0.05
    assert made.thresholds == Thresholds()
    assert made.thresholds.click_p99_ms == 2000.0
    assert made.thresholds.max_failure_ratio == 0.01


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"devices": 0}, "devices must be at least 1"),
        ({"devices": 2.5}, "devices must be a whole number"),
        ({"profile": ""}, "profile"),
        ({"start_rate": 0.0}, "start_rate must be a number above 0"),
        ({"start_rate": float("nan")}, "start_rate"),
        ({"factor": 0.5}, "factor must be at least 1"),
        ({"stages": 0}, "stages must be a whole number of at least 1"),
        ({"stage_seconds": -1.0}, "stage_seconds must be a number above 0"),
        ({"start_rate": 0.1, "stage_seconds": 2.0}, "at least one click per stage"),
        ({"api_rate": -1.0}, "api_rate must be 0"),
        ({"visible_sample": 1.5}, "visible_sample must be within 0..1"),
    ],
)
def test_bad_values_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan(**changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"click_p99_ms": 0.0}, "thresholds.click_p99_ms"),
        ({"api_p99_ms": float("inf")}, "thresholds.api_p99_ms"),
        ({"max_failure_ratio": -0.1}, "thresholds.max_failure_ratio must be within 0..1"),
        ({"min_achieved_ratio": 2.0}, "thresholds.min_achieved_ratio"),
    ],
)
def test_bad_thresholds_are_refused(changes: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Thresholds(**changes)
