"""``clicksim run`` from the command line: bundled scenarios, failures, reports, bad input.

Most tests run the command in-process against the embedded reference backend. The
external mode runs against ``clicksim backend serve`` started as its own process,
with the fleet provisioned through its admin endpoint by a ``--provision-cmd``.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped

from simulator.cli.run import scenario_names
from simulator.workspace import CaFolder
from tests.cli.conftest import assert_input_error, run, table
from tests.cli.external import ServedBackend
from tests.support import free_port

NO_CLOCK_REASON = (
    "skipped: needs the backend's clock, which the runner can move only in the "
    "embedded reference backend"
)

MUST_FAIL = """\
name: must-fail
steps:
  - name: the device is mine already (it is not)
    call: DescribeDevice
    with: {deviceId: "${devices[0]}"}
    expect: {status: 200}
  - name: never runs
    call: ListDevices
"""

MIXED = """\
name: mixed
steps:
  - name: listing works
    call: ListDevices
    expect: {body: {devices: []}}
  - name: wrong on purpose
    call: DescribeDevice
    with: {deviceId: "${devices[0]}"}
    expect: {status: 200}
  - name: after the failure
    sleep: 10ms
"""


def rows(stdout: str) -> dict[str, str]:
    """The table's rows: step path -> outcome (names may hold spaces; outcome is 2nd last)."""
    return {cells[0]: cells[-2] for cells in table(stdout, r"STEP\s+NAME\s+OUTCOME")}


# --- the embedded reference backend ---------------------------------------------------


def test_list_shows_every_bundled_scenario(in_tmp: Path) -> None:
    result = run("run", "--list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == scenario_names()
    assert len(lines) == 12
    assert all(len(line.split()) > 1 for line in lines)  # each with its description


@pytest.mark.parametrize("name", scenario_names())
def test_every_bundled_scenario_passes(in_tmp: Path, name: str) -> None:
    result = run("run", name)
    assert result.exit_code == 0, result.output
    table = rows(result.stdout)
    assert table
    assert set(table.values()) == {"passed"}, result.stdout
    assert re.search(rf"^{len(table)} passed, 0 failed, 0 skipped in ", result.stdout, re.M)
    assert "FAILED" not in result.stdout
    assert f"scenario {name}" in result.stdout


def test_a_scenario_that_must_fail_exits_1_with_a_clear_report(in_tmp: Path) -> None:
    (in_tmp / "must-fail.yaml").write_text(MUST_FAIL)
    result = run("run", "must-fail.yaml")
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert rows(out) == {"1": "failed", "2": "skipped"}
    report = out[out.index("FAILED 1 the device is mine already (it is not) (line 3)") :]
    message, sent, expected, received = re.split(
        r"^  (?:sent|expected|received):$", report, maxsplit=3, flags=re.M
    )
    assert "status 404 (ResourceNotFoundException), expected 200" in message
    assert '"operation": "DescribeDevice"' in sent
    assert '"method": "GET"' in sent
    assert re.search(r'"status": \[\s+200\s+\]', expected)
    assert '"status": 404' in received
    assert '"error": "ResourceNotFoundException"' in received
    assert "2 never runs: not run: step 1 failed" in out
    assert "0 passed, 1 failed, 1 skipped" in out
    assert "must-fail 1 the device is mine already (it is not): failed" in result.stderr


def test_junit_xml_and_json_reports(in_tmp: Path) -> None:
    (in_tmp / "mixed.yaml").write_text(MIXED)
    result = run(
        "run", "mixed.yaml", "--junit-xml", "reports/junit.xml", "--json", "reports/run.json"
    )
    assert result.exit_code == 1, result.output

    (suite,) = list(JUnitXml.fromfile(str(in_tmp / "reports" / "junit.xml")))
    assert suite.name == "mixed"
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (3, 1, 0, 1)
    cases = {case.name: case for case in suite}
    assert set(cases) == {"1 listing works", "2 wrong on purpose", "3 after the failure"}
    assert cases["1 listing works"].is_passed
    (failure,) = cases["2 wrong on purpose"].result
    assert isinstance(failure, Failure)
    assert failure.message == "status 404 (ResourceNotFoundException), expected 200"
    assert failure.text is not None
    for label in ("sent:", "expected:", "received:", "DescribeDevice"):
        assert label in failure.text
    (skipped,) = cases["3 after the failure"].result
    assert isinstance(skipped, Skipped)
    assert skipped.message == "not run: step 2 failed"

    document = json.loads((in_tmp / "reports" / "run.json").read_text())
    assert document["format"] == "clicksim-run/1"
    (scenario,) = document["scenarios"]
    assert scenario["name"] == "mixed"
    assert scenario["ok"] is False
    assert scenario["target"] == "the embedded reference backend"
    assert scenario["counts"] == {"passed": 1, "failed": 1, "skipped": 1, "error": 0, "total": 3}
    outcomes = [(step["path"], step["outcome"]) for step in scenario["steps"]]
    assert outcomes == [("1", "passed"), ("2", "failed"), ("3", "skipped")]
    failed = scenario["steps"][1]
    assert failed["received"]["status"] == 404
    assert failed["expected"] == {"status": [200]}
    assert failed["sent"]["operation"] == "DescribeDevice"
    assert failed["line"] == 6


@pytest.mark.parametrize(
    ("text", "args", "fragments"),
    [
        (
            "steps:\n  - call: ListDevices\n  - call: DescribeDevices\n",
            ["bad.yaml"],
            ["bad.yaml:3: steps[1].call: unknown operation 'DescribeDevices'"],
        ),
        (
            "steps:\n  - call: ListDevices\n    with: a: b\n",
            ["bad.yaml"],
            ["bad.yaml:3: not valid YAML"],
        ),
        (None, ["no-such-scenario"], ["unknown scenario 'no-such-scenario'", "--list"]),
        (
            None,
            ["initiate-click-finalize", "--api", "http://127.0.0.1:9"],
            ["--api and --broker go together"],
        ),
        (
            None,
            ["initiate-click-finalize", "--account", "owner=default"],
            ["need --api"],
        ),
    ],
    ids=["unknown-operation", "yaml-syntax", "unknown-name", "api-without-broker", "no-api"],
)
def test_bad_input_is_one_line_and_exit_2(
    in_tmp: Path, text: str | None, args: list[str], fragments: list[str]
) -> None:
    if text is not None:
        (in_tmp / "bad.yaml").write_text(text)
    assert_input_error(run("run", *args), *fragments)


def test_an_unreachable_backend_exits_2(in_tmp: Path, aws_env: None, ca_folder: CaFolder) -> None:
    api_port = free_port()
    result = run(
        "run",
        "initiate-click-finalize",
        "--api",
        f"http://127.0.0.1:{api_port}",
        "--broker",
        f"mqtts://127.0.0.1:{free_port()}",
        "--ca-dir",
        str(ca_folder.path),
    )
    assert result.exit_code == 2, result.output
    table = rows(result.stdout)
    assert table["1"] == "error"
    assert set(table.values()) == {"error", "skipped"}
    assert f"cannot reach http://127.0.0.1:{api_port}/" in result.stdout


# --- an external backend: clicksim backend serve as a process ------------------------


def served_run(served: ServedBackend, scenario: str, provision_cmd: str = "") -> list[str]:
    """``clicksim run SCENARIO`` against ``served``, provisioned by its own script by default."""
    provision = provision_cmd or served.provision_cmd
    return ["run", scenario, *served.target(), "--provision-cmd", provision]


def test_external_initiate_click_finalize(
    in_tmp: Path, aws_env: None, served: ServedBackend
) -> None:
    result = run(*served_run(served, "initiate-click-finalize"))
    assert result.exit_code == 0, result.output
    table = rows(result.stdout)
    assert len(table) == 6
    assert set(table.values()) == {"passed"}
    assert f"target {served.api_url}," in result.stdout


def test_external_backend_clock_steps_are_skipped_with_the_reason(
    in_tmp: Path, aws_env: None, served: ServedBackend
) -> None:
    result = run(*served_run(served, "finalize-without-click"))
    assert result.exit_code == 0, result.output
    table = rows(result.stdout)
    assert table == {str(n): "passed" for n in range(1, 10)} | {"10": "skipped", "11": "skipped"}
    assert f"10 sixteen minutes pass: {NO_CLOCK_REASON}" in result.stdout
    assert f"11 the initiation expired: {NO_CLOCK_REASON}" in result.stdout
    assert "9 passed, 0 failed, 2 skipped" in result.stdout


def test_a_failing_provision_command_exits_2(
    in_tmp: Path, aws_env: None, served: ServedBackend
) -> None:
    script = "import sys; sys.stderr.write('the inventory is read-only\\n'); sys.exit(3)"
    failing = shlex.join([sys.executable, "-c", script])
    result = run(*served_run(served, "initiate-click-finalize", failing))
    assert_input_error(
        result,
        "initiate-click-finalize: --provision-cmd exited with status 3: the inventory is read-only",
    )


def test_external_accounts_beyond_the_first_sign_with_their_profiles(
    in_tmp: Path, aws_env: None, served: ServedBackend
) -> None:
    """claim-race's alice signs with the environment's keys, bob with the profile 'rival'."""
    result = run(*served_run(served, "claim-race"), "--account", "bob=rival")
    assert result.exit_code == 0, result.output
    assert set(rows(result.stdout).values()) == {"passed"}


@pytest.mark.parametrize(
    ("accounts", "message"),
    [
        ((), "the account 'bob' needs keys: give --account bob=PROFILE"),
        (("bob=rival", "carol=rival"), "--account carol: no such account (there are: alice, bob)"),
        (("bob=nobody",), "account bob: "),
    ],
    ids=["missing", "unknown-name", "unknown-profile"],
)
def test_external_account_mistakes_exit_2(
    in_tmp: Path,
    aws_env: None,
    served: ServedBackend,
    accounts: tuple[str, ...],
    message: str,
) -> None:
    options = [option for pair in accounts for option in ("--account", pair)]
    assert_input_error(run(*served_run(served, "claim-race"), *options), message)


@pytest.mark.usefixtures("in_tmp")
def test_clicksim_ca_dir_in_the_environment_does_not_stop_an_embedded_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The README sets CLICKSIM_CA_DIR for every command; only a --ca-dir flag needs --api."""
    monkeypatch.setenv("CLICKSIM_CA_DIR", "certs")
    result = run("run", "claim-by-code")
    assert result.exit_code == 0, result.output
    assert_input_error(run("run", "claim-by-code", "--ca-dir", "certs"), "need --api")


@pytest.mark.usefixtures("aws_env")
def test_an_external_run_without_a_ca_says_how_to_make_one(in_tmp: Path) -> None:
    result = run(
        "run", "claim-by-code", "--api", "http://127.0.0.1:9", "--broker", "mqtts://127.0.0.1:9",
        "--ca-dir", str(in_tmp / "no-ca"),
    )  # fmt: skip
    assert_input_error(result, "no-ca", "clicksim ca init")


def test_a_scenario_whose_profile_file_is_bad_names_the_profile_line(in_tmp: Path) -> None:
    (in_tmp / "bad.toml").write_text('name = "bad"\n')
    (in_tmp / "uses-bad.yaml").write_text("fleet: {profile: bad.toml}\nsteps: [{sleep: 1ms}]\n")
    assert_input_error(run("run", "uses-bad.yaml"), "bad.toml:1:")


@pytest.mark.parametrize(
    "api", ["ftp://127.0.0.1:1", "http://user:pw@127.0.0.1:1", "http://h:99999"]
)
def test_an_api_url_that_is_not_plain_http_exits_2(
    in_tmp: Path, aws_env: None, ca_folder: CaFolder, api: str
) -> None:
    result = run(
        "run", "initiate-click-finalize", "--api", api, "--broker", "mqtts://127.0.0.1:1",
        "--ca-dir", str(ca_folder.path),
    )  # fmt: skip
    assert_input_error(result, "initiate-click-finalize: --api: endpoint", "expected http(s)://")


@pytest.mark.parametrize("option", ["--json", "--junit-xml"])
def test_a_report_file_that_cannot_be_written_is_refused_before_the_run(
    in_tmp: Path, option: str
) -> None:
    Path("taken").write_text("")
    assert_input_error(
        run("run", "claim-by-code", option, "taken/report"),
        f"{option} taken/report: cannot make the folder taken",
    )


def test_a_report_folder_without_write_permission_is_refused(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root may write anywhere, so the permission is denied the way a user meets it."""
    monkeypatch.setattr("simulator.cli.app.os.access", lambda path, mode: False)
    assert_input_error(
        run("run", "claim-by-code", "--json", "out/run.json"),
        "--json out/run.json: the folder out is not writable",
    )
