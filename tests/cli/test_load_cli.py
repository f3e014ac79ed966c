"""``clicksim load`` from the command line: short real runs, the report files, bad input."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from tests.cli.conftest import assert_input_error, run, table
from tests.cli.external import ServedBackend
from tests.support import free_port

SHORT = ("--devices", "8", "--rate", "3", "--factor", "2", "--stages", "2", "--stage", "2s",
         "--api-rate", "2")  # fmt: skip


def stage_rows(stdout: str) -> list[list[str]]:
    return table(stdout, r"\s*stage\s+offered/s")


def test_a_short_run_against_the_embedded_backend_writes_its_report(in_tmp: Path) -> None:
    result = run("load", *SHORT, "--report", "out")
    assert result.exit_code == 0, result.output
    rows = stage_rows(result.stdout)
    assert [row[0] for row in rows] == ["1", "2"]
    assert "verification:" in result.stdout
    assert ", 0 lost, 0 duplicates" in result.stdout
    document = json.loads(Path("out/report.json").read_text())
    assert document["format"] == "clicksim-load/1"
    assert [stage["offered_rate"] for stage in document["stages"]] == [3.0, 6.0]
    assert document["verification"]["lost"] == 0
    acknowledged = sum(stage["acknowledged"] for stage in document["stages"])
    assert document["verification"]["acknowledged"] == acknowledged > 0
    with Path("out/stages.csv").open() as file:
        assert len(list(csv.reader(file))) == 3
    assert Path("out/chart.svg").read_text().startswith("<svg")
    assert "| stage |" in Path("out/report.md").read_text()


def test_a_threshold_passed_breaks_the_first_stage_and_require_fails(in_tmp: Path) -> None:
    result = run("load", *SHORT, "--click-p99", "1ms", "--require", "1")
    assert result.exit_code == 1, result.output
    assert len(stage_rows(result.stdout)) == 1
    assert "broke at stage 1 (3.0 clicks/s offered): click p99" in result.stdout
    assert "capacity: none measured" in result.stdout
    assert "--require 1: the backend held 0.0 clicks/s" in result.stderr


def test_an_external_backend(in_tmp: Path, aws_env: None, served: ServedBackend) -> None:
    result = run(
        "load", *SHORT[:-2], "--stages", "1", *served.target(),
        "--provision-cmd", served.provision_cmd,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"target {served.api_url}, seed load-" in result.stdout
    assert ", 0 lost, 0 duplicates" in result.stdout


def test_an_unreachable_backend_exits_2(in_tmp: Path, aws_env: None, served: ServedBackend) -> None:
    api = f"http://127.0.0.1:{free_port()}"
    result = run(
        "load", *SHORT, "--api", api, "--broker", served.broker_url,
        "--ca-dir", str(served.ca_dir),
    )  # fmt: skip
    assert_input_error(result, f"load: cannot reach {api}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "0"], "Invalid value for '--rate'"),
        (["--factor", "0.5"], "Invalid value for '--factor'"),
        (["--devices", "0"], "Invalid value for '--devices'"),
        (["--stage", "fast"], "'fast' is not a duration such as 500ms, 15s or 2m"),
        (["--stage", "0s"], "'0s': must be longer than 0"),
        (["--rate", "0.1", "--stage", "2s"], "--rate 0.1 x --stage 2s offers no whole click"),
        (["--rate", "inf"], "load: start_rate must be a number above 0, got inf"),
        (["--max-failures", "150%"], "'150%': must be between 0% and 100%"),
        (["--max-failures", "some"], "'some' is not a share such as 1% or 0.01"),
        (["--profile", "no-such-button"], "no-such-button"),
        (["--api", "http://127.0.0.1:1"], "--api and --broker go together"),
        (["--provision-cmd", "true"], "need --api"),
        (["--api", "ftp://h:1", "--broker", "mqtts://h:1"], "load: --api: endpoint 'ftp://h:1'"),
    ],
    ids=[
        "rate-zero",
        "factor-below-1",
        "no-devices",
        "stage-not-a-duration",
        "stage-zero",
        "no-click-per-stage",
        "rate-infinite",
        "failures-over-100",
        "failures-not-a-share",
        "unknown-profile",
        "api-without-broker",
        "provision-without-api",
        "api-not-http",
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    in_tmp: Path, aws_env: None, args: list[str], message: str
) -> None:
    assert_input_error(run("load", *args), message)


def test_a_report_folder_that_cannot_be_made_is_refused_before_the_run(in_tmp: Path) -> None:
    Path("taken").write_text("")
    assert_input_error(
        run("load", *SHORT, "--report", "taken/report"),
        "--report taken/report: cannot make the folder taken/report",
    )


def test_a_profile_file_is_taken_as_the_fleet_s_profile(in_tmp: Path) -> None:
    text = (Path(__file__).parents[2] / "profiles" / "aws-iot-enterprise-button.toml").read_text()
    Path("mybutton.toml").write_text(
        re.sub(r'(?m)^name = ".*"$', 'name = "mybutton"', text, count=1)
    )
    result = run("load", *SHORT[:-2], "--stages", "1", "--profile", "mybutton.toml")
    assert result.exit_code == 0, result.output
    assert "8 devices (mybutton.toml)" in result.stdout
    assert ", 0 lost, 0 duplicates" in result.stdout
