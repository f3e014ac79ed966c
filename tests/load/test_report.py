"""The load report: the findings in words, the table, and the files."""

from __future__ import annotations

import json
from pathlib import Path

from simulator.load.metrics import LatencySummary
from simulator.load.plan import LoadPlan
from simulator.load.report import render_table, verdict_lines, write_report
from simulator.load.runner import LoadResult, StageResult

PLAN = LoadPlan(
    devices=10, profile="aws-iot-enterprise-button", start_rate=10, factor=2, stages=3,
    stage_seconds=5, api_rate=1,
)  # fmt: skip


def latency(p99: float | None) -> LatencySummary:
    count = 0 if p99 is None else 10
    return LatencySummary(count=count, p50_ms=p99, p95_ms=p99, p99_ms=p99, max_ms=p99)


def stage(
    number: int, rate: float, *, cpu: float = 0.2, broken: list[str] | None = None
) -> StageResult:
    return StageResult(
        number=number, offered_rate=rate, seconds=5, clicks=int(rate * 5),
        acknowledged=int(rate * 5), failed=0, not_started=0, achieved_rate=rate * 0.99,
        click_latency=latency(12.0), visible_latency=latency(None), visible_missed=0,
        api_calls=5, api_errors=0, api_latency=latency(3.0), generator_cpu=cpu,
        broken=broken or [],
    )  # fmt: skip


def result(stages: list[StageResult], *, lost: int = 0) -> LoadResult:
    return LoadResult(
        target="http://backend.example", seed="s", started_at=1_700_000_000.0, seconds=15.0,
        plan=PLAN, stages=stages, acknowledged=150, listed=150 - lost, lost=lost, duplicates=0,
        lost_examples=[{"device": "G030PM0000000001", "seq": 7}] if lost else [],
        verify_problem="G030PM0000000002: 503 ServiceUnavailable" if lost else None,
    )  # fmt: skip


def test_the_findings_name_the_break_the_capacity_and_what_was_lost() -> None:
    lines = verdict_lines(
        result([stage(1, 10), stage(2, 20, cpu=0.95, broken=["click p99 2100 ms > 2000 ms"])],
               lost=1)
    )  # fmt: skip
    assert lines == [
        "broke at stage 2 (20.0 clicks/s offered): click p99 2100 ms > 2000 ms",
        "capacity: 9.9 acknowledged clicks/s (the last stage that held)",
        "verification: 150 clicks acknowledged, 149 listed, 1 lost, 0 duplicates",
        "  not verified: G030PM0000000002: 503 ServiceUnavailable",
        "  lost: device G030PM0000000001, seq 7",
        "note: the load generator was saturated in stage(s) 2 (cpu >= 0.9): there the figures "
        "measure this machine as much as the backend; run the backend elsewhere",
    ]


def test_a_plan_that_never_broke_says_so() -> None:
    lines = verdict_lines(result([stage(1, 10), stage(2, 20)]))
    assert lines[0].startswith("held at every stage, up to 20.0 clicks/s offered")
    assert lines[1] == "capacity: 19.8 acknowledged clicks/s (the last stage that held)"


def test_the_table_has_a_row_per_stage_and_colour_only_when_asked() -> None:
    text = render_table(result([stage(1, 10), stage(2, 20)]), color=False)
    assert "target http://backend.example, seed s, 10 devices" in text
    rows = [line.split() for line in text.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == ["1", "2"]
    assert "\x1b[" not in text
    assert "\x1b[32m" in render_table(result([stage(1, 10)]), color=True)


def test_the_report_files(tmp_path: Path) -> None:
    paths = write_report(result([stage(1, 10), stage(2, 20, broken=["why"])]), tmp_path / "r")
    assert [p.name for p in paths] == ["report.json", "stages.csv", "report.md", "chart.svg"]
    document = json.loads(paths[0].read_text())
    assert document["format"] == "clicksim-load/1"
    assert document["breaking_stage"] == 2
    assert document["capacity"] == 9.9
    assert document["plan"]["thresholds"]["click_p99_ms"] == 2000.0
    assert document["stages"][1]["broken"] == ["why"]
    assert document["stages"][0]["visible_latency"]["p99_ms"] is None
    svg = paths[3].read_text()
    assert svg.count("<circle") == 2
    assert 'fill="#d62728"/>' in svg  # the stage that broke
