"""What a load run found, for people (a table, a Markdown page, a chart) and for CI (JSON, CSV).

``write_report(result, folder)`` writes:

* ``report.json``: format ``clicksim-load/1``: the plan, every stage's figures, the
  verdict (breaking stage and why, capacity) and the lost-click verification;
* ``stages.csv``: one row per stage, for a spreadsheet;
* ``report.md``: the same as the terminal table, with the verdict in words;
* ``chart.svg``: acknowledged clicks/s and click p99 against the offered rate.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Final

from simulator.load.metrics import LatencySummary
from simulator.load.runner import LoadResult, StageResult
from simulator.protocol import format_timestamp
from simulator.scenario.report import jsonable, paint

JSON_FORMAT: Final = "clicksim-load/1"
SATURATED_CPU: Final = 0.9
"""Generator CPU seconds per wall second from which the generator, not the backend,
may be what limits a stage (its event loop uses one core)."""

_COLUMNS: Final[tuple[tuple[str, Callable[[StageResult], str]], ...]] = (
    ("stage", lambda s: str(s.number)),
    ("offered/s", lambda s: f"{s.offered_rate:.1f}"),
    ("acked/s", lambda s: f"{s.achieved_rate:.1f}"),
    ("clicks", lambda s: str(s.clicks)),
    ("failed", lambda s: str(s.failed)),
    ("not started", lambda s: str(s.not_started)),
    ("click p50 ms", lambda s: _ms(s.click_latency.p50_ms)),
    ("click p99 ms", lambda s: _ms(s.click_latency.p99_ms)),
    ("visible p99 ms", lambda s: _ms(s.visible_latency.p99_ms)),
    ("never listed", lambda s: str(s.visible_missed)),
    ("api calls", lambda s: str(s.api_calls)),
    ("api errors", lambda s: str(s.api_errors)),
    ("api p99 ms", lambda s: _ms(s.api_latency.p99_ms)),
    ("cpu", lambda s: f"{s.generator_cpu:.2f}"),
    ("verdict", lambda s: "broke" if s.broken else "held"),
)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def verdict_lines(result: LoadResult) -> list[str]:
    """The findings in words: where it broke and why, its capacity, what was lost."""
    lines = []
    broken = result.breaking_stage
    if broken is not None:
        lines.append(
            f"broke at stage {broken.number} ({broken.offered_rate:.1f} clicks/s offered): "
            + "; ".join(broken.broken)
        )
    elif result.stages:
        lines.append(
            f"held at every stage, up to {result.stages[-1].offered_rate:.1f} clicks/s offered: "
            "raise the rate or the factor to find where it breaks"
        )
    if result.capacity is not None:
        lines.append(
            f"capacity: {result.capacity:.1f} acknowledged clicks/s (the last stage that held)"
        )
    else:
        lines.append("capacity: none measured (the first stage broke)")
    lines.append(
        f"verification: {result.acknowledged} clicks acknowledged, {result.listed} listed, "
        f"{result.lost} lost, {result.duplicates} duplicates"
    )
    if result.verify_problem is not None:
        lines.append(f"  not verified: {result.verify_problem}")
    for example in result.lost_examples:
        lines.append(f"  lost: {', '.join(f'{k} {v}' for k, v in example.items())}")
    saturated = [s.number for s in result.stages if s.generator_cpu >= SATURATED_CPU]
    if saturated:
        lines.append(
            "note: the load generator was saturated in stage(s) "
            f"{', '.join(map(str, saturated))} (cpu >= {SATURATED_CPU}): there the figures "
            "measure this machine as much as the backend; run the backend elsewhere"
        )
    return lines


def _rows(result: LoadResult) -> list[list[str]]:
    return [[cell(stage) for _, cell in _COLUMNS] for stage in result.stages]


def render_table(result: LoadResult, *, color: bool) -> str:
    header = [name for name, _ in _COLUMNS]
    rows = _rows(result)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.rjust(width) for cell, width in zip(cells, widths, strict=True))

    plan = result.plan
    text = [
        paint("load", "1", color)
        + f"  target {result.target}, seed {result.seed}, {plan.devices} devices "
        f"({plan.profile}), {plan.stage_seconds:g} s stages",
        "",
        line(header),
        *(line(row) for row in rows),
        "",
    ]
    intact = result.lost == 0 and result.duplicates == 0
    for number, finding in enumerate(verdict_lines(result)):
        if number == 0:
            finding = paint(finding, "33" if result.breaking_stage else "32", color)
        elif finding.startswith("verification:"):
            finding = paint(finding, "32" if intact else "31", color)
        text.append(finding)
    return "\n".join(text) + "\n"


def _summary(value: LatencySummary) -> dict[str, object]:
    return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}


def to_document(result: LoadResult) -> dict[str, object]:
    broken = result.breaking_stage
    return {
        "format": JSON_FORMAT,
        "target": result.target,
        "seed": result.seed,
        "started_at": format_timestamp(result.started_at),
        "seconds": round(result.seconds, 3),
        "plan": jsonable(result.plan),
        "breaking_stage": None if broken is None else broken.number,
        "capacity": result.capacity,
        "verification": {
            "acknowledged": result.acknowledged,
            "listed": result.listed,
            "lost": result.lost,
            "duplicates": result.duplicates,
            "lost_examples": jsonable(result.lost_examples),
            "problem": result.verify_problem,
        },
        "stages": [
            {
                "number": s.number,
                "offered_rate": s.offered_rate,
                "achieved_rate": s.achieved_rate,
                "seconds": s.seconds,
                "clicks": s.clicks,
                "acknowledged": s.acknowledged,
                "failed": s.failed,
                "not_started": s.not_started,
                "click_latency": _summary(s.click_latency),
                "visible_latency": _summary(s.visible_latency),
                "visible_missed": s.visible_missed,
                "api_calls": s.api_calls,
                "api_errors": s.api_errors,
                "api_latency": _summary(s.api_latency),
                "generator_cpu": s.generator_cpu,
                "broken": list(s.broken),
            }
            for s in result.stages
        ],
    }


def write_report(result: LoadResult, folder: Path) -> list[Path]:
    """Write the four files into ``folder`` (made if missing); return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in ("report.json", "stages.csv", "report.md", "chart.svg")]
    document = json.dumps(to_document(result), indent=2, ensure_ascii=False) + "\n"
    paths[0].write_text(document, encoding="utf-8")
    with paths[1].open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([name for name, _ in _COLUMNS])
        writer.writerows(_rows(result))
    paths[2].write_text(_markdown(result), encoding="utf-8")
    paths[3].write_text(chart_svg(result), encoding="utf-8")
    return paths


def _markdown(result: LoadResult) -> str:
    header = [name for name, _ in _COLUMNS]
    plan = result.plan
    lines = [
        f"# clicksim load: {result.target}",
        "",
        f"Started {format_timestamp(result.started_at)}, {result.seconds:.0f} s; seed "
        f"`{result.seed}`; {plan.devices} devices ({plan.profile}); stages of "
        f"{plan.stage_seconds:g} s from {plan.start_rate:g} clicks/s, x{plan.factor:g} each; "
        f"{plan.api_rate:g} DescribeDevice calls/s beside.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in _rows(result)),
        "",
        *(f"- {line.strip()}" for line in verdict_lines(result)),
        "",
        "![acknowledged clicks/s and click p99 against the offered rate](chart.svg)",
        "",
    ]
    return "\n".join(lines)


_W, _H, _PAD = 640, 360, 56


def chart_svg(result: LoadResult) -> str:
    """Acknowledged clicks/s (left axis) and click p99 ms (right) over the offered rate."""
    stages = result.stages
    top_rate = max([s.offered_rate for s in stages] + [s.achieved_rate for s in stages] + [1.0])
    p99s = [s.click_latency.p99_ms for s in stages]
    top_ms = max([p for p in p99s if p is not None] + [result.plan.thresholds.click_p99_ms])

    def x(rate: float) -> float:
        return _PAD + (_W - 2 * _PAD) * rate / top_rate

    def y(value: float, top: float) -> float:
        return _H - _PAD - (_H - 2 * _PAD) * value / top

    def polyline(points: list[tuple[float, float]], colour: str, dash: str = "") -> str:
        joined = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        return (
            f'<polyline fill="none" stroke="{colour}" stroke-width="2"{extra} points="{joined}"/>'
        )

    ideal = [(x(0), y(0, top_rate)), (x(top_rate), y(top_rate, top_rate))]
    acked = [(x(s.offered_rate), y(s.achieved_rate, top_rate)) for s in stages]
    latency = [
        (x(s.offered_rate), y(p, top_ms))
        for s, p in zip(stages, p99s, strict=True)
        if p is not None
    ]
    limit = y(result.plan.thresholds.click_p99_ms, top_ms)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" font-family="sans-serif" font-size="12">',
        f'<rect width="{_W}" height="{_H}" fill="white"/>',
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="black"/>',
        f'<line x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_H - _PAD}" stroke="black"/>',
        f'<line x1="{_W - _PAD}" y1="{_PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="black"/>',
        f'<text x="{_W / 2}" y="{_H - 16}" text-anchor="middle">offered clicks/s '
        f"(0 to {top_rate:.0f})</text>",
        f'<text x="{_PAD}" y="{_PAD - 12}" fill="#1f77b4">acknowledged clicks/s '
        f"(0 to {top_rate:.0f})</text>",
        f'<text x="{_W - _PAD}" y="{_PAD - 12}" text-anchor="end" fill="#d62728">click p99 ms '
        f"(0 to {top_ms:.0f})</text>",
        polyline(ideal, "#999999", "4 4"),
        f'<line x1="{_PAD}" y1="{limit:.1f}" x2="{_W - _PAD}" y2="{limit:.1f}" stroke="#d62728" '
        'stroke-dasharray="2 4"/>',
        polyline(acked, "#1f77b4"),
        polyline(latency, "#d62728"),
    ]
    for s, (px, py) in zip(stages, acked, strict=True):
        colour = "#d62728" if s.broken else "#1f77b4"
        parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{colour}"/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
