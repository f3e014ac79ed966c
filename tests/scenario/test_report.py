"""Reports of a scenario run: the terminal table, progress, JUnit XML and JSON."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from simulator.scenario.report import (
    JSON_FORMAT,
    Outcome,
    Progress,
    ScenarioResult,
    StepResult,
    render_table,
    write_json,
    write_junit_xml,
)

STARTED = 1_735_787_045.678  # 2025-01-02T03:04:05.678Z


def _step(path: str, outcome: Outcome = Outcome.PASSED, **extra: object) -> StepResult:
    fields: dict[str, object] = {
        "name": f"step {path}",
        "kind": "call",
        "seconds": 0.125,
        "line": 10 + len(path),
    }
    fields.update(extra)
    return StepResult(path=path, outcome=outcome, **fields)  # type: ignore[arg-type]


def _result(*steps: StepResult, name: str = "icf") -> ScenarioResult:
    return ScenarioResult(
        scenario=name,
        path="scenarios/icf.yaml",
        target="embedded reference backend",
        seed="icf",
        started_at=STARTED,
        seconds=3.412,
        steps=list(steps),
    )


FAILED = _step(
    "2",
    Outcome.FAILED,
    name="finalize as rival",
    message="status 409, expected 200",
    sent={"operation": "FinalizeDeviceClaim", "method": "PUT", "url": "http://x/devices/G1"},
    expected={"status": [200]},
    received={"status": 409, "error": "ResourceConflictException", "body": {"code": "X"}},
)


def _mixed() -> ScenarioResult:
    return _result(
        _step("1", name="start the claim"),
        FAILED,
        _step("3", Outcome.SKIPPED, message="needs the backend clock", kind="advance"),
        _step("4.1", Outcome.ERROR, message="http://127.0.0.1:1 refused the connection"),
    )


def test_counts_and_ok() -> None:
    result = _mixed()
    assert (result.passed, result.failed, result.skipped, result.errors) == (1, 1, 1, 1)
    assert not result.ok
    assert _result(_step("1"), _step("2", Outcome.SKIPPED)).ok


def test_table_lists_steps_and_explains_failures() -> None:
    text = render_table(_mixed(), color=False)
    assert "\x1b" not in text
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("STEP"))
    assert header.split() == ["STEP", "NAME", "OUTCOME", "SECONDS"]
    row = next(line for line in lines if "finalize as rival" in line)
    assert row.split()[0] == "2"
    assert row.split()[-2:] == ["failed", "0.12"]
    # The failure block: sent / expected / received as indented JSON.
    block = text[text.index("FAILED 2 finalize as rival (line 11)") :]
    assert "status 409, expected 200" in block
    for label in ("sent:", "expected:", "received:"):
        assert f"\n  {label}\n" in block
    assert '      "error": "ResourceConflictException",' in block
    assert "ERROR 4.1" in text
    assert "3 step 3: needs the backend clock" in text
    assert lines[-1] == "1 passed, 1 failed, 1 skipped, 1 error in 3.41 s"


def test_table_summary_of_a_clean_run() -> None:
    text = render_table(_result(_step("1"), _step("2")), color=False)
    assert text.splitlines()[-1] == "2 passed, 0 failed, 0 skipped in 3.41 s"
    assert "FAILED" not in text
    assert "skipped:" not in text


def test_table_colors_only_when_asked() -> None:
    text = render_table(_mixed(), color=True)
    assert "\x1b[31mfailed\x1b[0m" in text
    assert "\x1b[32mpassed\x1b[0m" in text
    assert text.splitlines()[-1].startswith("\x1b[31m")
    # Colors do not shift the columns: seconds stay aligned.
    plain = render_table(_mixed(), color=False).splitlines()
    colored = text.splitlines()
    assert [line[-4:] for line in plain[4:8]] == [line[-4:] for line in colored[4:8]]


def test_table_truncates_long_values_with_a_note() -> None:
    step = _step(
        "1",
        Outcome.FAILED,
        received={
            "blob": "x" * 5000,
            "events": list(range(100)),
            "fields": {f"f{i}": i for i in range(50)},
        },
    )
    text = render_table(_result(step), color=False)
    assert "... (4700 more characters)" in text
    assert "(80 more items)" in text
    assert "more lines)" in text
    assert "(truncated; the JSON report keeps the full value)" in text
    assert len(text) < 4000


def test_table_keeps_terminal_control_characters_out() -> None:
    step = _step(
        "1",
        Outcome.FAILED,
        name="evil\x1b[2Jname",
        received={"body": "a\x1b]0;title\x07b\x9bc\ud800"},
    )
    text = render_table(_result(step), color=False)
    text.encode("utf-8")  # no lone surrogate reaches the terminal
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "\x9b" not in text
    assert "evil\\x1b[2Jname" in text


@dataclass(frozen=True)
class _Sent:
    method: str
    url: str


def test_non_json_values_are_converted() -> None:
    step = _step(
        "1",
        Outcome.FAILED,
        sent=_Sent("GET", "http://x"),
        expected={"range": (1, 2), "at": Path("a/b")},
        received={"value": float("nan")},
    )
    text = render_table(_result(step), color=False)
    assert '"method": "GET"' in text
    assert '"nan"' in text


def test_progress_plain_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(stream)
    progress.begin("icf", total=3)
    for step in _mixed().steps:
        progress.start(step.path, step.name)
        progress.finish(step)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0] == "icf 1 start the claim: passed (0.12 s)"
    assert lines[1] == "icf 2 finalize as rival: failed (0.12 s) - status 409, expected 200"
    assert lines[2] == "icf 3 step 3: skipped (0.12 s) - needs the backend clock"
    assert len(lines) == 4


def test_progress_live_line_on_a_terminal() -> None:
    now = [100.0]
    stream = io.StringIO()
    progress = Progress(stream, live=True, clock=lambda: now[0])
    progress.begin("icf", total=3)
    now[0] = 101.5
    progress.start("1", "start the claim")
    progress.finish(_step("1"))
    progress.start("2.1", "a much longer step name than before")
    progress.start("2.2", "short")
    progress.finish(FAILED)
    progress.close()
    out = stream.getvalue()
    assert "\n" not in out.split("finalize as rival")[0]  # passed steps leave no lines
    assert "\ricf [1/3] 1 start the claim  1.5 s" in out
    assert "icf [2/3] 2.1 a much longer step name than before" in out
    assert "icf [2/3] 2.2 short" in out
    assert "icf 2 finalize as rival: failed" in out
    assert out.endswith("\n")  # closed: the live line is wiped, nothing pending
    # Each rewrite covers the previous, longer line.
    longer = "icf [2/3] 2.1 a much longer step name than before  1.5 s"
    shorter = next(part for part in out.split("\r") if part.startswith("icf [2/3] 2.2"))
    assert len(shorter) >= len(longer)


def test_progress_live_line_fits_the_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(stream, live=True)
    progress.start("1", "n" * 500)
    drawn = stream.getvalue()
    assert drawn.startswith("\r[1] 1 n")
    assert len(drawn) <= 80
    progress.close()
    assert stream.getvalue().endswith("\r")


def test_progress_defaults_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress()
    progress.finish(_step("7"))
    assert capsys.readouterr().err == "7 step 7: passed (0.12 s)\n"


def test_junit_xml_reads_back(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "junit.xml"
    write_junit_xml([_mixed(), _result(_step("1"), name="second")], target)
    xml = JUnitXml.fromfile(str(target))
    suites = list(xml)
    assert [suite.name for suite in suites] == ["icf", "second"]
    first = suites[0]
    assert (first.tests, first.failures, first.errors, first.skipped) == (4, 1, 1, 1)
    assert first.time == pytest.approx(3.412)
    assert first.timestamp == "2025-01-02T03:04:05"
    cases = {case.name: case for case in first}
    assert set(cases) == {"1 start the claim", "2 finalize as rival", "3 step 3", "4.1 step 4.1"}
    assert all(case.classname == "icf" for case in cases.values())
    assert cases["1 start the claim"].is_passed
    assert cases["1 start the claim"].time == pytest.approx(0.125)
    (failure,) = cases["2 finalize as rival"].result
    assert isinstance(failure, Failure)
    assert failure.message == "status 409, expected 200"
    assert failure.text is not None
    for label in ("sent:", "expected:", "received:"):
        assert label in failure.text
    (skipped,) = cases["3 step 3"].result
    assert isinstance(skipped, Skipped)
    assert skipped.message == "needs the backend clock"
    (error,) = cases["4.1 step 4.1"].result
    assert isinstance(error, Error)

    # The attributes junitparser does not model, read with ElementTree.
    root = ET.parse(target).getroot()
    assert root.tag == "testsuites"
    assert root.get("tests") == "5"
    assert root.get("failures") == "1"
    case = root.find("testsuite/testcase[@name='2 finalize as rival']")
    assert case is not None
    assert case.get("file") == "scenarios/icf.yaml"
    assert case.get("line") == "11"
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert properties["target"] == "embedded reference backend"


def test_junit_xml_survives_hostile_text(tmp_path: Path) -> None:
    step = _step(
        "1",
        Outcome.FAILED,
        name='a <b> & "c"',
        message="line one\nline two\x00\x1b[31m",
        received={"body": "\x01\ud800</failure>]]>"},
    )
    target = tmp_path / "junit.xml"
    write_junit_xml([_result(step, name="x&y")], target)
    root = ET.parse(target).getroot()  # would raise on invalid XML
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == "line one line two\\x00\\x1b[31m"
    assert failure.text is not None
    assert '"\\u0001\\ud800</failure>]]>"' in failure.text
    case = root.find("testsuite/testcase")
    assert case is not None
    assert case.get("name") == '1 a <b> & "c"'
    assert JUnitXml.fromfile(str(target)).tests == 1


def test_json_round_trip(tmp_path: Path) -> None:
    target = tmp_path / "out" / "run.json"
    write_json([_mixed()], target)
    document = json.loads(target.read_text(encoding="utf-8"))
    assert document["format"] == JSON_FORMAT == "clicksim-run/1"
    (scenario,) = document["scenarios"]
    assert {k: scenario[k] for k in ("name", "path", "target", "seed", "ok", "seconds")} == {
        "name": "icf",
        "path": "scenarios/icf.yaml",
        "target": "embedded reference backend",
        "seed": "icf",
        "ok": False,
        "seconds": 3.412,
    }
    assert scenario["started_at"] == "2025-01-02T03:04:05.678Z"
    assert scenario["counts"] == {"passed": 1, "failed": 1, "skipped": 1, "error": 1, "total": 4}
    steps = scenario["steps"]
    assert [s["outcome"] for s in steps] == ["passed", "failed", "skipped", "error"]
    assert steps[1] == {
        "path": "2",
        "name": "finalize as rival",
        "kind": "call",
        "outcome": "failed",
        "seconds": 0.125,
        "line": 11,
        "message": "status 409, expected 200",
        "sent": FAILED.sent,
        "expected": FAILED.expected,
        "received": FAILED.received,
    }
    assert steps[0]["sent"] is None


def test_json_keeps_full_values(tmp_path: Path) -> None:
    blob = "x" * 5000
    target = tmp_path / "run.json"
    write_json([_result(_step("1", Outcome.FAILED, received={"blob": blob}))], target)
    document = json.loads(target.read_text(encoding="utf-8"))
    assert document["scenarios"][0]["steps"][0]["received"] == {"blob": blob}
