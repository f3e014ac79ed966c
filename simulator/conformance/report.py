"""A conformance run shown to people (a table) and to CI (JUnit XML, JSON).

The JSON document (``write_json``), format ``clicksim-conformance/1``::

    {
      "format": "clicksim-conformance/1",
      "target": "http://127.0.0.1:8080",     # or "the embedded reference backend"
      "seed": "conformance",
      "ok": false,                           # no check failed or errored
      "started_at": "2025-01-02T03:04:05.678Z",
      "seconds": 41.2,
      "counts": {"passed": 80, "failed": 1, "skipped": 2, "error": 0, "total": 83,
                 "model": {...same keys...}, "reference": {...same keys...}},
      "checks": [
        {
          "id": "claims/finalize-without-click",
          "kind": "reference",               # model | reference
          "operations": ["FinalizeDeviceClaim"],
          "description": "FinalizeDeviceClaim with no click since ... answers 412.",
          "source": "checks/claims/finalize-without-click.yaml",  # or "<model>/..."
          "outcome": "failed",               # passed | failed | skipped | error
          "seconds": 0.31,
          "message": "step 3 (finalize) failed: status 200, expected 412",
          "steps": [ ... as in clicksim-run/1 ... ]
        }
      ]
    }
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Final

from simulator.conformance.runner import CheckResult, ConformanceResult
from simulator.protocol import format_timestamp
from simulator.scenario.model import CONFORMANCE_KINDS
from simulator.scenario.report import (
    OUTCOME_COLORS,
    Outcome,
    details,
    one_line,
    paint,
    printable,
    seconds_text,
    step_document,
    xml_attrs,
    xml_text,
)

JSON_FORMAT: Final = "clicksim-conformance/1"


def _counts(result: ConformanceResult, kind: str | None = None) -> dict[str, int]:
    counts = {outcome.value: result.count(outcome, kind) for outcome in Outcome}
    counts["total"] = sum(counts.values())
    return counts


def _failure_text(verdict: CheckResult, *, truncate: bool, indent: str) -> str:
    """The check's description, then the broken step's sent / expected / received."""
    lines = [verdict.check.description]
    step = verdict.broken_step
    if step is not None:
        lines.append(f"step {step.path} ({step.name}), line {step.line} of {verdict.check.source}")
        lines += details(step, truncate=truncate, indent=indent).splitlines()
    elif verdict.message:
        lines.append(verdict.message)
    return "\n".join(lines)


def render_table(result: ConformanceResult, *, color: bool) -> str:
    """One row per check, then why each failure failed, the skips, and the counts by kind."""
    header = ("CHECK", "KIND", "OUTCOME", "SECONDS")
    rows = [
        (printable(r.check.id), r.check.kind, r.outcome.value, seconds_text(r.seconds))
        for r in result.checks
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]

    def row_text(cells: tuple[str, str, str, str], outcome: Outcome | None) -> str:
        check_id, kind, verdict, seconds = cells
        shown = verdict if outcome is None else paint(verdict, OUTCOME_COLORS[outcome], color)
        return "  ".join(
            (
                check_id.ljust(widths[0]),
                kind.ljust(widths[1]),
                shown + " " * (widths[2] - len(verdict)),
                seconds.rjust(widths[3]),
            )
        )

    lines = [
        paint("conformance", "1", color) + f"  target {printable(result.target)}, "
        f"seed {printable(result.seed)}",
        "",
        row_text(header, None),
    ]
    lines += [row_text(cells, r.outcome) for cells, r in zip(rows, result.checks, strict=True)]
    for verdict in result.checks:
        if verdict.outcome not in (Outcome.FAILED, Outcome.ERROR):
            continue
        title = f"{verdict.outcome.value.upper()} {verdict.check.id} ({verdict.check.kind})"
        lines += ["", paint(printable(title), OUTCOME_COLORS[verdict.outcome], color)]
        text = _failure_text(verdict, truncate=True, indent="    ")
        lines += ["  " + printable(line) for line in text.splitlines()]
    skipped = [r for r in result.checks if r.outcome is Outcome.SKIPPED]
    if skipped:
        lines += ["", "skipped:"]
        lines += [f"  {printable(r.check.id)}: {printable(one_line(r.message))}" for r in skipped]
    lines.append("")
    for kind in CONFORMANCE_KINDS:
        counts = _counts(result, kind)
        if counts["total"]:
            lines.append(f"{kind:<10} {_summary(counts)}")
    lines.append(
        paint(
            f"{'total':<10} {_summary(_counts(result))} in {seconds_text(result.seconds)} s",
            "32" if result.ok else "31",
            color,
        )
    )
    return "\n".join(lines) + "\n"


def _summary(counts: dict[str, int]) -> str:
    text = f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
    if counts["error"]:
        text += f", {counts['error']} error" + ("s" if counts["error"] > 1 else "")
    return text


def write_json(result: ConformanceResult, path: Path) -> None:
    """The machine-readable run, format ``clicksim-conformance/1`` (the module docstring)."""
    counts: dict[str, object] = dict(_counts(result))
    counts.update({kind: _counts(result, kind) for kind in CONFORMANCE_KINDS})
    document = {
        "format": JSON_FORMAT,
        "target": result.target,
        "seed": result.seed,
        "ok": result.ok,
        "started_at": format_timestamp(result.started_at),
        "seconds": round(result.seconds, 3),
        "counts": counts,
        "checks": [
            {
                "id": r.check.id,
                "kind": r.check.kind,
                "operations": list(r.check.operations),
                "description": r.check.description,
                "source": r.check.source,
                "outcome": r.outcome.value,
                "seconds": round(r.seconds, 3),
                "message": r.message,
                "steps": [step_document(step) for step in r.steps],
            }
            for r in result.checks
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_junit_xml(result: ConformanceResult, path: Path) -> None:
    """A testsuite per group of checks, a testcase per check (classname ``conformance.GROUP``).

    A failure's text is the check's description and its broken step's exchange, in full.
    """
    groups: dict[str, list[CheckResult]] = {}
    for verdict in result.checks:
        groups.setdefault(verdict.check.group, []).append(verdict)

    def count(verdicts: list[CheckResult], outcome: Outcome) -> str:
        return str(sum(1 for v in verdicts if v.outcome is outcome))

    root = ET.Element(
        "testsuites",
        xml_attrs(
            name="clicksim conformance",
            tests=str(len(result.checks)),
            failures=count(result.checks, Outcome.FAILED),
            errors=count(result.checks, Outcome.ERROR),
            time=f"{result.seconds:.3f}",
        ),
    )
    for group, verdicts in groups.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            xml_attrs(
                name=f"conformance.{group}",
                tests=str(len(verdicts)),
                failures=count(verdicts, Outcome.FAILED),
                errors=count(verdicts, Outcome.ERROR),
                skipped=count(verdicts, Outcome.SKIPPED),
                time=f"{sum(v.seconds for v in verdicts):.3f}",
                timestamp=format_timestamp(result.started_at)[:19],
            ),
        )
        properties = ET.SubElement(suite, "properties")
        for name, value in (("target", result.target), ("seed", result.seed)):
            ET.SubElement(properties, "property", xml_attrs(name=name, value=value))
        for verdict in verdicts:
            case = ET.SubElement(
                suite,
                "testcase",
                xml_attrs(
                    classname=f"conformance.{group}",
                    name=verdict.check.id,
                    time=f"{verdict.seconds:.3f}",
                    file=verdict.check.source,
                ),
            )
            if verdict.outcome is Outcome.PASSED:
                continue
            tag = {
                Outcome.FAILED: "failure",
                Outcome.ERROR: "error",
                Outcome.SKIPPED: "skipped",
            }[verdict.outcome]
            element = ET.SubElement(
                case, tag, xml_attrs(message=one_line(verdict.message) or verdict.outcome.value)
            )
            if verdict.outcome is not Outcome.SKIPPED:
                element.text = xml_text(_failure_text(verdict, truncate=False, indent="  "))
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
