"""``clicksim conformance`` from the command line: the whole suite, a departing backend,
an external backend, and bad input."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml

from simulator.backend import claims
from simulator.conformance.catalogue import load_catalogue
from tests.cli.conftest import assert_input_error, run, table
from tests.cli.external import ServedBackend
from tests.support import free_port


def verdicts(stdout: str) -> dict[str, str]:
    """The table's rows: check id -> outcome."""
    return {cells[0]: cells[2] for cells in table(stdout, r"CHECK\s+KIND\s+OUTCOME")}


def test_list_shows_every_check_with_its_kind(in_tmp: Path) -> None:
    result = run("conformance", "--list")
    assert result.exit_code == 0, result.output
    listed = [line.split()[:2] for line in result.stdout.splitlines()]
    assert [check_id for check_id, _ in listed] == [check.id for check in load_catalogue()]
    assert {kind for _, kind in listed} == {"model", "reference"}
    only = run("conformance", "--list", "--only", "claims/*", "--kind", "reference")
    assert only.stdout
    assert all(re.match(r"claims/\S+\s+reference ", line) for line in only.stdout.splitlines())


@pytest.mark.parametrize(
    "check_id", ["claims/finalize-without-click", "model/DescribeDevice/unknown-device"]
)
def test_show_prints_a_check_that_clicksim_run_runs_alone(in_tmp: Path, check_id: str) -> None:
    shown = run("conformance", "--show", check_id)
    assert shown.exit_code == 0, shown.output
    assert "conformance:" in shown.stdout
    Path("check.yaml").write_text(shown.stdout)
    alone = run("run", "check.yaml")
    assert alone.exit_code == 0, alone.output


def test_the_reference_backend_passes_the_whole_suite(in_tmp: Path) -> None:
    result = run("conformance", "--junit-xml", "c.xml", "--json", "c.json")
    assert result.exit_code == 0, result.output
    table = verdicts(result.stdout)
    assert len(table) == len(load_catalogue())
    assert set(table.values()) == {"passed"}
    assert "target the embedded reference backend, seed conformance" in result.stdout
    cases = [case for suite in JUnitXml.fromfile("c.xml") for case in suite]
    assert len(cases) == len(table)
    assert all(case.is_passed for case in cases)
    document = json.loads(Path("c.json").read_text())
    assert document["ok"] is True
    assert document["counts"]["passed"] == len(table)


def test_a_backend_that_departs_from_the_semantics_fails_that_check(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend that finalizes a claim with no click: exit 1, and the report says why."""
    key = (claims.ClaimState.CLAIM_INITIATED, claims.Operation.FINALIZE)
    lax = claims._TRANSITIONS[key]

    def finalize_without_click(
        claim: claims.DeviceClaim, request: claims._Request
    ) -> claims.DeviceClaim:
        return lax(claim if claim.event_seen else claim._note_event(request), request)

    monkeypatch.setitem(claims._TRANSITIONS, key, finalize_without_click)
    result = run("conformance", "--only", "claims/*", "--junit-xml", "c.xml")
    assert result.exit_code == 1, result.output
    table = verdicts(result.stdout)
    assert table["claims/finalize-without-click"] == "failed"
    assert table["claims/initiate-click-finalize"] == "passed"
    assert "FAILED claims/finalize-without-click (reference)" in result.stdout
    assert '"state": "CLAIMED"' in result.stdout  # what came back instead of the 412
    failures = [
        case.name
        for suite in JUnitXml.fromfile("c.xml")
        for case in suite
        if any(isinstance(r, Failure) for r in case.result)
    ]
    assert "claims/finalize-without-click" in failures


def test_an_external_backend_with_both_accounts(
    in_tmp: Path, aws_env: None, served: ServedBackend
) -> None:
    result = run(
        "conformance",
        "--only", "claims/*",
        "--only", "isolation/*",
        *served.target(),
        "--account", "rival=rival",
        "--provision-cmd", served.provision_cmd,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = verdicts(result.stdout)
    assert table["isolation/rival-cannot-describe-device"] == "passed"
    assert table["claims/finalize-after-initiation-expired"] == "skipped"
    assert "needs the backend's clock" in result.stdout
    assert f"target {served.api_url}" in result.stdout
    # A backend keeps its state: each run against one brings new devices, from a new seed.
    assert re.search(r"seed conformance-[0-9a-f]{8}\b", result.stdout)


def test_checks_needing_an_account_without_keys_are_skipped(
    in_tmp: Path, aws_env: None, served: ServedBackend
) -> None:
    result = run(
        "conformance",
        "--only", "isolation/*",
        *served.target(),
        "--provision-cmd", served.provision_cmd,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert set(verdicts(result.stdout).values()) == {"skipped"}
    assert "needs the account 'rival': give --account rival=PROFILE" in result.stdout


def test_an_unreachable_backend_exits_2(in_tmp: Path, aws_env: None, served: ServedBackend) -> None:
    api = f"http://127.0.0.1:{free_port()}"
    result = run(
        "conformance",
        "--only", "model/DescribeDevice/*",
        "--api", api,
        "--broker", served.broker_url,
        "--ca-dir", str(served.ca_dir),
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "error" in verdicts(result.stdout).values()
    assert f"cannot reach {api}/" in result.stdout


def test_a_failing_provision_command_exits_2(
    in_tmp: Path, aws_env: None, served: ServedBackend
) -> None:
    script = "import sys; sys.stderr.write('read-only\\n'); sys.exit(4)"
    result = run(
        "conformance",
        "--only", "claims/initiate-click-finalize",
        *served.target(),
        "--provision-cmd", shlex.join([sys.executable, "-c", script]),
    )  # fmt: skip
    assert_input_error(result, "conformance: --provision-cmd exited with status 4: read-only")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--only", "claim/*"], "--only 'claim/*': matches no check"),
        (["--show", "claims/nope"], "--show 'claims/nope': no such check"),
        (["--kind", "modelled"], "Invalid value for '--kind'"),
        (["--api", "http://127.0.0.1:1"], "--api and --broker go together"),
        (["--account", "rival=p"], "need --api"),
        (["--provision-cmd", "true"], "need --api"),
        (["--api", "http://h:1", "--broker", "mqtts://h:1", "--account", "rival"], "NAME=PROFILE"),
        (
            ["--api", "http://h:1", "--broker", "mqtts://h:1", "--account", "third=p"],
            "--account third: no such account (there are: owner, rival)",
        ),
        (["--api", "ftp://h:1", "--broker", "mqtts://h:1"], "endpoint"),
        (["--api", "http://h:1", "--broker", "http://h:1"], "--broker"),
    ],
    ids=[
        "unknown-glob",
        "show-unknown",
        "unknown-kind",
        "api-without-broker",
        "account-without-api",
        "provision-without-api",
        "account-not-a-pair",
        "account-no-check-uses",
        "api-not-http",
        "broker-not-mqtt",
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    in_tmp: Path, aws_env: None, args: list[str], message: str
) -> None:
    assert_input_error(run("conformance", *args), message)


@pytest.mark.parametrize("option", ["--json", "--junit-xml"])
def test_a_report_file_that_cannot_be_written_is_refused_before_the_run(
    in_tmp: Path, option: str
) -> None:
    Path("taken").write_text("")
    assert_input_error(
        run("conformance", option, "taken/report"),
        f"{option} taken/report: cannot make the folder taken",
    )
