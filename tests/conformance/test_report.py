"""The conformance reports: the table, JUnit XML that a JUnit parser reads, and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped

from simulator.conformance.catalogue import Check
from simulator.conformance.report import render_table, write_json, write_junit_xml
from simulator.conformance.runner import CheckResult, ConformanceResult, verdict
from simulator.scenario.loader import load_scenario_text
from simulator.scenario.report import Outcome, StepResult


def check(check_id: str, kind: str) -> Check:
    scenario = load_scenario_text(
        f"description: What {check_id} wants.\n"
        f"conformance: {{kind: {kind}, operations: [FinalizeDeviceClaim]}}\n"
        "steps: [{call: ListDevices}]\n",
        source=f"{check_id}.yaml",
        base_dir=Path(),
    )
    return Check(
        id=check_id,
        kind=kind,
        operations=("FinalizeDeviceClaim",),
        source=f"checks/{check_id}.yaml",
        text="",
        scenario=scenario,
    )


@pytest.fixture
def result() -> ConformanceResult:
    broken = StepResult(
        path="3",
        name="finalize",
        kind="call",
        outcome=Outcome.FAILED,
        seconds=0.02,
        line=14,
        message="status 200, expected 412",
        sent={"method": "PUT", "url": "http://x/devices/D1/finalize-claim"},
        expected={"status": [412]},
        received={"status": 200, "body": {"state": "CLAIMED"}},
    )
    skipped = StepResult(
        path="2", name="advance 16m", kind="advance", outcome=Outcome.SKIPPED, seconds=0.0,
        line=9, message="skipped: needs the backend's clock",
    )  # fmt: skip
    return ConformanceResult(
        target="http://backend.example",
        seed="s",
        started_at=1_700_000_000.0,
        seconds=1.5,
        checks=[
            CheckResult(
                check=check("claims/works", "model"),
                outcome=Outcome.PASSED,
                seconds=0.1,
                message="",
            ),
            verdict(check("claims/finalize-without-click", "reference"), [broken], 0.2),
            verdict(check("claims/expiry", "reference"), [skipped], 0.0),
        ],
    )


def test_the_table_shows_each_check_why_it_failed_and_the_counts_by_kind(
    result: ConformanceResult,
) -> None:
    text = render_table(result, color=False)
    assert "target http://backend.example, seed s" in text
    assert "claims/works                   model      passed" in text
    assert "FAILED claims/finalize-without-click (reference)" in text
    assert "What claims/finalize-without-click wants." in text
    assert "step 3 (finalize), line 14 of checks/claims/finalize-without-click.yaml" in text
    assert '"state": "CLAIMED"' in text
    assert "claims/expiry: step 2 (advance 16m) skipped: needs the backend's clock" in text
    assert "model      1 passed, 0 failed, 0 skipped" in text
    assert "reference  0 passed, 1 failed, 1 skipped" in text
    assert "total      1 passed, 1 failed, 1 skipped in 1.50 s" in text
    assert "\x1b[" not in text
    assert "\x1b[31m" in render_table(result, color=True)


def test_junit_xml_has_a_suite_per_group_and_a_case_per_check(
    result: ConformanceResult, tmp_path: Path
) -> None:
    path = tmp_path / "conformance.xml"
    write_junit_xml(result, path)
    suites = list(JUnitXml.fromfile(str(path)))
    assert [suite.name for suite in suites] == ["conformance.claims"]
    cases = {case.name: case for case in suites[0]}
    assert set(cases) == {"claims/works", "claims/finalize-without-click", "claims/expiry"}
    assert cases["claims/works"].is_passed
    failure = cases["claims/finalize-without-click"].result[0]
    assert isinstance(failure, Failure)
    assert failure.message == "step 3 (finalize) failed: status 200, expected 412"
    assert failure.text is not None
    assert '"state": "CLAIMED"' in failure.text
    assert isinstance(cases["claims/expiry"].result[0], Skipped)
    assert cases["claims/works"].classname == "conformance.claims"


def test_json_has_every_check_with_its_steps_and_counts_by_kind(
    result: ConformanceResult, tmp_path: Path
) -> None:
    path = tmp_path / "out" / "conformance.json"
    write_json(result, path)
    document = json.loads(path.read_text())
    assert document["format"] == "clicksim-conformance/1"
    assert document["ok"] is False
    assert document["started_at"] == "2023-11-14T22:13:20.000Z"
    assert document["counts"]["failed"] == 1
    assert document["counts"]["reference"] == {
        "passed": 0, "failed": 1, "skipped": 1, "error": 0, "total": 2,
    }  # fmt: skip
    failed = document["checks"][1]
    assert failed["id"] == "claims/finalize-without-click"
    assert failed["kind"] == "reference"
    assert failed["operations"] == ["FinalizeDeviceClaim"]
    assert failed["source"] == "checks/claims/finalize-without-click.yaml"
    assert failed["steps"][0]["received"] == {"status": 200, "body": {"state": "CLAIMED"}}
