"""What a scenario run produced, shown to people (table, progress) and to CI (JUnit XML, JSON).

The runner records one ``StepResult`` per step it ran or skipped and hands the
``ScenarioResult`` here; nothing in this module runs anything.

The JSON document (``write_json``), format ``clicksim-run/1``; every key is always
present (``null`` when there is nothing to say), so readers need no guessing::

    {
      "format": "clicksim-run/1",
      "scenarios": [
        {
          "name": "initiate-click-finalize",       # the scenario's name
          "path": "scenarios/icf.yaml",            # the scenario file as given
          "target": "embedded reference backend",  # or the --api URL
          "seed": "icf",                           # the fleet seed actually used
          "ok": true,                              # no step failed or errored
          "started_at": "2025-01-02T03:04:05.678Z",  # UTC, ISO 8601, milliseconds
          "seconds": 3.412,                        # wall time of the whole scenario
          "counts": {"passed": 12, "failed": 0, "skipped": 2, "error": 0, "total": 14},
          "steps": [
            {
              "path": "5[1].2",          # "3"; "4.2" in a parallel; "5[1].2" iteration 1 of 5
              "name": "start the claim", # as displayed (variables resolved)
              "kind": "call",            # call, request, click, publish, until, sleep,
                                         # advance, webhook, set, check
              "outcome": "passed",       # passed | failed | skipped | error
              "seconds": 0.084,
              "line": 12,                # line of the step in the scenario file
              "message": "",             # one line: why it failed, errored or was skipped
              "sent": null,              # what went out (request), when the runner kept it
              "expected": null,          # what the step expected
              "received": null           # what came back
            }
          ]
        }
      ]
    }

``sent``, ``expected`` and ``received`` hold whatever JSON the runner recorded, in
full (the terminal table truncates them; this document does not). Values that are
not JSON (dataclasses, tuples, paths, non-finite floats) are converted the same way
everywhere: dataclasses to objects, sequences to arrays, anything else to its text.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from simulator.protocol import format_timestamp

JSON_FORMAT = "clicksim-run/1"

# Terminal limits for sent/expected/received: enough to see the point, not a screenful
# of device events. The JSON report keeps everything.
_MAX_STRING = 300
_MAX_ITEMS = 20
_MAX_LINES = 40
_MAX_NAME = 60
_MAX_MESSAGE = 500


class Outcome(enum.Enum):
    """How a step ended. ERROR: the backend was unreachable or something unexpected broke."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass
class StepResult:
    """One step as it ran; sent/expected/received are JSON-able, kept for failures."""

    path: str
    name: str
    kind: str
    outcome: Outcome
    seconds: float
    line: int
    message: str = ""
    sent: object | None = None
    expected: object | None = None
    received: object | None = None


@dataclass
class ScenarioResult:
    """One scenario's run; ``started_at`` is a Unix time, ``target`` names the backend."""

    scenario: str
    path: str
    target: str
    seed: str
    started_at: float
    seconds: float
    steps: list[StepResult] = field(default_factory=list)

    def _count(self, outcome: Outcome) -> int:
        return sum(1 for step in self.steps if step.outcome is outcome)

    @property
    def passed(self) -> int:
        return self._count(Outcome.PASSED)

    @property
    def failed(self) -> int:
        return self._count(Outcome.FAILED)

    @property
    def skipped(self) -> int:
        return self._count(Outcome.SKIPPED)

    @property
    def errors(self) -> int:
        return self._count(Outcome.ERROR)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.errors == 0


# --- text helpers --------------------------------------------------------------------

# C0/C1 controls and DEL: a received body must not move the cursor or recolour the
# terminal; lone surrogates (from JSON escapes) cannot be encoded for output at all.
_TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# Everything XML 1.0 cannot carry at all, not even as a character reference.
_XML_UNSAFE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    return _TERMINAL_UNSAFE.sub(_escape_char, text)


def one_line(text: str, limit: int = _MAX_MESSAGE) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def xml_text(text: str) -> str:
    return _XML_UNSAFE.sub(_escape_char, text)


def seconds_text(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def jsonable(value: object) -> object:
    """The one conversion of recorded values to JSON, shared by every output."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    return str(value)


def _shorten(value: object) -> tuple[object, bool]:
    """Cut long strings and arrays inside a JSON value; True when anything was cut."""
    if isinstance(value, str) and len(value) > _MAX_STRING:
        return f"{value[:_MAX_STRING]}... ({len(value) - _MAX_STRING} more characters)", True
    if isinstance(value, dict):
        cut = False
        short: dict[str, object] = {}
        for key, item in value.items():
            short[key], item_cut = _shorten(item)
            cut = cut or item_cut
        return short, cut
    if isinstance(value, list):
        items = [_shorten(item) for item in value[:_MAX_ITEMS]]
        result: list[object] = [item for item, _ in items]
        cut = any(item_cut for _, item_cut in items)
        if len(value) > _MAX_ITEMS:
            result.append(f"... ({len(value) - _MAX_ITEMS} more items)")
            cut = True
        return result, cut
    return value, False


def _pretty(value: object, *, truncate: bool) -> str:
    data = jsonable(value)
    cut = False
    if truncate:
        data, cut = _shorten(data)
    lines = json.dumps(data, indent=2, ensure_ascii=False).splitlines()
    if truncate and len(lines) > _MAX_LINES:
        lines = [*lines[:_MAX_LINES], f"... ({len(lines) - _MAX_LINES} more lines)"]
        cut = True
    if cut:
        lines.append("(truncated; the JSON report keeps the full value)")
    return "\n".join(lines)


def details(step: StepResult, *, truncate: bool, indent: str) -> str:
    """The "sent / expected / received" block of a failed step."""
    parts = [f"{step.message}"] if step.message else []
    for label, value in (
        ("sent", step.sent),
        ("expected", step.expected),
        ("received", step.received),
    ):
        if value is None:
            continue
        body = _pretty(value, truncate=truncate)
        parts.append(f"{label}:")
        parts.extend(indent + line for line in body.splitlines())
    return "\n".join(parts)


def _summary(result: ScenarioResult) -> str:
    counts = [f"{result.passed} passed", f"{result.failed} failed", f"{result.skipped} skipped"]
    if result.errors:
        counts.append(f"{result.errors} error" + ("s" if result.errors > 1 else ""))
    return f"{', '.join(counts)} in {seconds_text(result.seconds)} s"


# --- terminal --------------------------------------------------------------------------

OUTCOME_COLORS = {
    Outcome.PASSED: "32",
    Outcome.FAILED: "31",
    Outcome.SKIPPED: "33",
    Outcome.ERROR: "35",
}


def paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def render_table(result: ScenarioResult, *, color: bool) -> str:
    """The end-of-run view: one row per step, then why each failure failed, then counts.

    Readable without color; ``color`` only adds ANSI colors to outcomes and the summary.
    """
    header = ("STEP", "NAME", "OUTCOME", "SECONDS")
    rows = [
        (
            printable(step.path),
            one_line(printable(step.name), _MAX_NAME),
            step.outcome.value,
            seconds_text(step.seconds),
        )
        for step in result.steps
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]

    def row_text(cells: tuple[str, str, str, str], outcome: Outcome | None) -> str:
        path, name, verdict, seconds = cells
        padded = verdict.ljust(widths[2])
        if outcome is not None:
            padded = paint(verdict, OUTCOME_COLORS[outcome], color) + " " * (
                widths[2] - len(verdict)
            )
        return "  ".join(
            (path.ljust(widths[0]), name.ljust(widths[1]), padded, seconds.rjust(widths[3]))
        )

    lines = [
        paint(f"scenario {printable(result.scenario)}", "1", color)
        + f"  ({printable(result.path)})",
        f"target {printable(result.target)}, seed {printable(result.seed)}",
        "",
        row_text(header, None),
    ]
    lines += [row_text(cells, step.outcome) for cells, step in zip(rows, result.steps, strict=True)]

    broken = [s for s in result.steps if s.outcome in (Outcome.FAILED, Outcome.ERROR)]
    for step in broken:
        title = f"{step.outcome.value.upper()} {step.path} {step.name} (line {step.line})"
        lines += ["", paint(printable(one_line(title)), OUTCOME_COLORS[step.outcome], color)]
        block = details(step, truncate=True, indent="    ")
        lines += ["  " + printable(line) for line in block.splitlines()]
    skipped = [s for s in result.steps if s.outcome is Outcome.SKIPPED and s.message]
    if skipped:
        lines += ["", "skipped:"]
        lines += [
            f"  {printable(s.path)} {printable(one_line(s.name))}: {printable(one_line(s.message))}"
            for s in skipped
        ]
    lines += ["", paint(_summary(result), "32" if result.ok else "31", color)]
    return "\n".join(lines) + "\n"


class Progress:
    """Progress while a scenario runs, on ``stream`` (default stderr).

    On a terminal (``live``, default ``stream.isatty()``): one line rewritten with
    ``\\r`` showing the running step, its top-level position i/n, and the elapsed
    time; failures and errors are also printed as lines of their own so they stay
    in the scrollback. Otherwise: one plain line per finished step, for CI logs.
    Call ``close()`` before printing anything else to a live stream.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._live = self._stream.isatty() if live is None else live
        self._clock = clock
        self._scenario = ""
        self._total: int | None = None
        self._top_level: list[str] = []
        self._began = clock()
        self._shown = 0

    def begin(self, scenario: str, total: int | None = None) -> None:
        """A scenario starts; ``total`` is its number of top-level steps, when known."""
        self._clear()
        self._scenario = f"{printable(scenario)} " if scenario else ""
        self._total = total
        self._top_level = []
        self._began = self._clock()

    def start(self, path: str, name: str) -> None:
        """A step starts (nested steps too: their path tells the top-level position)."""
        top = re.split(r"[.\[]", path, maxsplit=1)[0]
        if top not in self._top_level:
            self._top_level.append(top)
        if self._live:
            total = f"/{self._total}" if self._total is not None else ""
            elapsed = self._clock() - self._began
            self._draw(
                f"{self._scenario}[{len(self._top_level)}{total}] {printable(path)} "
                f"{one_line(printable(name))}  {elapsed:.1f} s"
            )

    def finish(self, result: StepResult) -> None:
        """A step ended: a permanent line when not live, or when it failed or errored."""
        broken = result.outcome in (Outcome.FAILED, Outcome.ERROR)
        if self._live and not broken:
            return
        self._clear()
        line = (
            f"{self._scenario}{printable(result.path)} {one_line(printable(result.name))}: "
            f"{result.outcome.value} ({seconds_text(result.seconds)} s)"
        )
        if result.message and result.outcome is not Outcome.PASSED:
            line += f" - {one_line(printable(result.message))}"
        self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        """Remove the live line, leaving the cursor at the start of an empty line."""
        self._clear()

    def _draw(self, text: str) -> None:
        width = self._width() - 1
        text = text if len(text) <= width else text[: max(width - 3, 0)] + "..."
        self._stream.write("\r" + text.ljust(self._shown))
        self._stream.flush()
        self._shown = len(text)

    def _clear(self) -> None:
        if self._shown:
            self._stream.write("\r" + " " * self._shown + "\r")
            self._stream.flush()
            self._shown = 0

    def _width(self) -> int:
        try:
            return os.get_terminal_size(self._stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            return 80


# --- files -----------------------------------------------------------------------------


def _counts(result: ScenarioResult) -> dict[str, int]:
    return {
        "passed": result.passed,
        "failed": result.failed,
        "skipped": result.skipped,
        "error": result.errors,
        "total": len(result.steps),
    }


def step_document(step: StepResult) -> dict[str, object]:
    """One step in the JSON reports (``clicksim run`` and ``clicksim conformance``)."""
    return {
        "path": step.path,
        "name": step.name,
        "kind": step.kind,
        "outcome": step.outcome.value,
        "seconds": round(step.seconds, 3),
        "line": step.line,
        "message": step.message,
        "sent": jsonable(step.sent),
        "expected": jsonable(step.expected),
        "received": jsonable(step.received),
    }


def write_json(results: Sequence[ScenarioResult], path: Path) -> None:
    """The machine-readable run, format ``clicksim-run/1`` (see the module docstring)."""
    document = {
        "format": JSON_FORMAT,
        "scenarios": [
            {
                "name": result.scenario,
                "path": result.path,
                "target": result.target,
                "seed": result.seed,
                "ok": result.ok,
                "started_at": format_timestamp(result.started_at),
                "seconds": round(result.seconds, 3),
                "counts": _counts(result),
                "steps": [step_document(step) for step in result.steps],
            }
            for result in results
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def xml_attrs(**values: str) -> dict[str, str]:
    return {key: xml_text(value) for key, value in values.items()}


def write_junit_xml(results: Sequence[ScenarioResult], path: Path) -> None:
    """JUnit XML as Jenkins, GitLab and junitparser read it: a testsuite per scenario.

    Each step is a testcase named "<path> <step name>" with the scenario name as its
    classname. Characters XML cannot carry (control characters from a backend's
    reply) are written as ``\\xNN`` text; messages are one line.
    """
    root = ET.Element(
        "testsuites",
        xml_attrs(
            name="clicksim",
            tests=str(sum(len(r.steps) for r in results)),
            failures=str(sum(r.failed for r in results)),
            errors=str(sum(r.errors for r in results)),
            time=f"{sum(r.seconds for r in results):.3f}",
        ),
    )
    for result in results:
        suite = ET.SubElement(
            root,
            "testsuite",
            xml_attrs(
                name=result.scenario,
                tests=str(len(result.steps)),
                failures=str(result.failed),
                errors=str(result.errors),
                skipped=str(result.skipped),
                time=f"{result.seconds:.3f}",
                # The common schema wants a local-style timestamp without a zone: UTC.
                timestamp=format_timestamp(result.started_at)[:19],
            ),
        )
        properties = ET.SubElement(suite, "properties")
        for name, value in (
            ("path", result.path),
            ("target", result.target),
            ("seed", result.seed),
        ):
            ET.SubElement(properties, "property", xml_attrs(name=name, value=value))
        for step in result.steps:
            case = ET.SubElement(
                suite,
                "testcase",
                xml_attrs(
                    classname=result.scenario,
                    name=f"{step.path} {step.name}",
                    time=f"{step.seconds:.3f}",
                    file=result.path,
                    line=str(step.line),
                ),
            )
            if step.outcome is Outcome.PASSED:
                continue
            message = one_line(step.message) or step.outcome.value
            tag = {
                Outcome.FAILED: "failure",
                Outcome.ERROR: "error",
                Outcome.SKIPPED: "skipped",
            }[step.outcome]
            element = ET.SubElement(case, tag, xml_attrs(message=message))
            if step.outcome is not Outcome.SKIPPED:
                element.text = xml_text(details(step, truncate=False, indent="  "))
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
