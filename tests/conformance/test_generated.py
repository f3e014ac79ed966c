"""The checks generated from the service model.

What the model implies is computed here again, independently, from the vendored JSON
(not through ``ServiceModel``): the generator must make exactly those checks, with
the statuses and errors the model gives. Every check must load as a scenario, and
pass against the embedded reference backend: all of them are run once, through
``clicksim run`` in a subprocess, and each check's result is its own test.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from simulator.api.model import ServiceModel, load_model
from simulator.conformance.generated import (
    PROFILE,
    UNKNOWN_DEVICE,
    GeneratedCheck,
    model_checks,
)
from simulator.resources import load_profile
from simulator.scenario.loader import load_scenario_text


def _vendored(name: str) -> Any:
    text = resources.files("simulator.api").joinpath("data", name).read_text(encoding="utf-8")
    return json.loads(text)


SERVICE: Final = _vendored("iot1click-devices-2018-05-14.service.json")
PAGINATION: Final = _vendored("iot1click-devices-2018-05-14.paginators.json")["pagination"]
SHAPES: Final[Mapping[str, Any]] = SERVICE["shapes"]
NUMERIC: Final = ("integer", "long", "float", "double")

CHECKS: Final = model_checks(load_model())
BY_ID: Final = {check.id: check for check in CHECKS}
RUN_TIMEOUT_S: Final = 600


# --- what the model implies, computed from the raw JSON ------------------------------


def _members(op: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    """(wire name, member, required) of an operation's input."""
    if "input" not in op:
        return
    shape = SHAPES[op["input"]["shape"]]
    for name, member in shape["members"].items():
        yield member.get("locationName", name), member, name in shape.get("required", ())


def _errors(op: Mapping[str, Any]) -> set[str]:
    return {error["shape"] for error in op.get("errors", ())}


def _status(error: str) -> int:
    status: int = SHAPES[error]["error"]["httpStatusCode"]
    return status


def _expected_ids() -> dict[str, set[str]]:
    """Rule -> the ids of its checks, as the model data implies them."""
    rules: dict[str, set[str]] = {
        "valid-call": set(),
        "unknown-device": set(),
        "missing": set(),
        "below-min": set(),
        "above-max": set(),
        "within-bounds": set(),
        "paginate": set(),
    }
    for name, op in SERVICE["operations"].items():
        prefix = f"model/{name}/"
        rules["valid-call"].add(prefix + "valid-call")
        labels = re.findall(r"\{([^}]+)\}", op["http"]["requestUri"])
        if "deviceId" in labels and "ResourceNotFoundException" in _errors(op):
            rules["unknown-device"].add(prefix + "unknown-device")
        if "InvalidRequestException" in _errors(op):
            for wire, member, required in _members(op):
                if required and member.get("location") != "uri":
                    rules["missing"].add(f"{prefix}missing-{wire}")
                target = SHAPES[member["shape"]]
                if target["type"] in NUMERIC and ("min" in target or "max" in target):
                    rules["within-bounds"].add(f"{prefix}{wire}-within-bounds")
                    if "min" in target:
                        rules["below-min"].add(f"{prefix}{wire}-below-min")
                    if "max" in target:
                        rules["above-max"].add(f"{prefix}{wire}-above-max")
        if name in PAGINATION:
            rules["paginate"].add(prefix + "paginate")
    return rules


def _rule(check_id: str) -> str:
    rule = check_id.split("/")[2]
    for suffix in ("below-min", "above-max", "within-bounds"):
        if rule.endswith("-" + suffix):
            return suffix
    return "missing" if rule.startswith("missing-") else rule


def _document(check: GeneratedCheck) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(check.text)
    return document


def _checked_step(check: GeneratedCheck) -> dict[str, Any]:
    """The step the check is about: its last call of the operation."""
    operation = check.id.split("/")[1]
    calls = [step for step in _document(check)["steps"] if step.get("call") == operation]
    assert calls, check.id
    step: dict[str, Any] = calls[-1]
    return step


def _ids(rule: str) -> list[str]:
    return sorted(check.id for check in CHECKS if _rule(check.id) == rule)


# --- the set of checks ---------------------------------------------------------------


def test_the_checks_are_exactly_those_the_model_implies() -> None:
    expected = _expected_ids()
    assert set(BY_ID) == set().union(*expected.values())
    assert Counter(_rule(check.id) for check in CHECKS) == {
        rule: len(ids) for rule, ids in expected.items()
    }


def test_the_model_implies_the_counts_of_the_vendored_model() -> None:
    """A guard on the independent computation itself: 13 operations, of which 8 take a
    deviceId, 4 required members outside the URI, 2 maxResults, 2 paginators."""
    counts = {rule: len(ids) for rule, ids in _expected_ids().items()}
    assert counts == {
        "valid-call": 13,
        "unknown-device": 8,
        "missing": 4,
        "below-min": 2,
        "above-max": 2,
        "within-bounds": 2,
        "paginate": 2,
    }


def test_ids_are_unique_readable_and_name_their_check() -> None:
    assert len(BY_ID) == len(CHECKS)
    for check in CHECKS:
        assert re.fullmatch(r"model/[A-Z][A-Za-z]+/[a-z][A-Za-z-]*[a-z]", check.id), check.id
        document = _document(check)
        assert document["name"] == check.id
        assert document["conformance"] == {"kind": "model", "operations": [check.id.split("/")[1]]}
        assert document["description"].strip()


def test_the_same_model_gives_the_same_checks() -> None:
    assert model_checks(load_model()) == CHECKS


@pytest.mark.parametrize("check_id", sorted(BY_ID))
def test_every_check_loads_as_a_scenario(check_id: str, tmp_path: Path) -> None:
    check = BY_ID[check_id]
    scenario = load_scenario_text(check.text, source=f"<model>/{check.id}", base_dir=tmp_path)
    assert scenario.conformance is not None
    assert scenario.conformance.kind == "model"
    assert scenario.conformance.operations == (check.id.split("/")[1],)
    assert scenario.name == check.id


def test_the_text_is_readable_yaml() -> None:
    for check in CHECKS:
        lines = check.text.splitlines()
        assert lines[0] == f"name: {check.id}"
        assert "steps:" in lines
        assert not any(line != line.rstrip() for line in lines), check.id
        assert all(len(line) <= 100 for line in lines), check.id


# --- what each check says --------------------------------------------------------------


@pytest.mark.parametrize("check_id", _ids("valid-call"))
def test_a_valid_call_expects_the_modelled_status_and_output_shape(check_id: str) -> None:
    op = SERVICE["operations"][check_id.split("/")[1]]
    expect = _checked_step(BY_ID[check_id])["expect"]
    status = op["http"].get("responseCode", 200)
    assert expect == ({"status": status, "shape": True} if "output" in op else {"status": status})


@pytest.mark.parametrize("check_id", _ids("unknown-device"))
def test_an_unknown_device_expects_the_modelled_not_found(check_id: str) -> None:
    step = _checked_step(BY_ID[check_id])
    assert step["with"]["deviceId"] == UNKNOWN_DEVICE
    assert step["expect"] == {
        "status": _status("ResourceNotFoundException"),
        "error": "ResourceNotFoundException",
    }
    assert len(_document(BY_ID[check_id])["steps"]) == 1  # nothing else to go wrong


def test_the_unknown_device_is_well_formed() -> None:
    assert load_profile(PROFILE).id.matches(UNKNOWN_DEVICE)


@pytest.mark.parametrize("check_id", _ids("missing"))
def test_a_missing_member_is_the_only_fault(check_id: str) -> None:
    name = check_id.split("/")[1]
    missing = check_id.split("/")[2].removeprefix("missing-")
    step = _checked_step(BY_ID[check_id])
    required = {wire for wire, _, needed in _members(SERVICE["operations"][name]) if needed}
    assert missing in required
    assert set(step["with"]) >= required - {missing}
    assert missing not in step["with"]
    assert step["expect"] == {
        "status": _status("InvalidRequestException"),
        "error": "InvalidRequestException",
    }


@pytest.mark.parametrize("check_id", _ids("below-min") + _ids("above-max"))
def test_a_value_out_of_bounds_is_one_past_the_bound(check_id: str) -> None:
    name, rule = check_id.split("/")[1:]
    wire = rule.rsplit("-", 2)[0]
    member = next(m for w, m, _ in _members(SERVICE["operations"][name]) if w == wire)
    shape = SHAPES[member["shape"]]
    value = shape["min"] - 1 if rule.endswith("below-min") else shape["max"] + 1
    step = _checked_step(BY_ID[check_id])
    assert step["with"][wire] == value
    assert step["expect"] == {
        "status": _status("InvalidRequestException"),
        "error": "InvalidRequestException",
    }


@pytest.mark.parametrize("check_id", _ids("paginate"))
def test_paging_uses_the_smallest_page_size(check_id: str) -> None:
    name = check_id.split("/")[1]
    limit = PAGINATION[name]["limit_key"]  # the member's model name
    member = SHAPES[SERVICE["operations"][name]["input"]["shape"]]["members"][limit]
    paged = [step for step in _document(BY_ID[check_id])["steps"] if step.get("paginate")]
    assert len(paged) == 1
    assert paged[0]["call"] == name
    assert paged[0]["with"][member["locationName"]] == SHAPES[member["shape"]]["min"]


# --- derived from the data, not from a list --------------------------------------------


def _model_with(change: Any) -> ServiceModel:
    service = copy.deepcopy(SERVICE)
    change(service)
    return ServiceModel(service)


def test_a_new_operation_gets_its_checks() -> None:
    def add(service: dict[str, Any]) -> None:
        op = copy.deepcopy(service["operations"]["DescribeDevice"])
        op["name"] = "PeekDevice"
        op["http"] = {"method": "GET", "requestUri": "/devices/{deviceId}/peek"}
        service["operations"]["PeekDevice"] = op

    ids = {check.id for check in model_checks(_model_with(add), pages={})}
    assert {"model/PeekDevice/valid-call", "model/PeekDevice/unknown-device"} <= ids
    assert not any(check_id.endswith("/paginate") for check_id in ids)


def test_an_error_the_model_drops_drops_its_checks() -> None:
    def drop(service: dict[str, Any]) -> None:
        op = service["operations"]["DescribeDevice"]
        op["errors"] = [e for e in op["errors"] if e["shape"] != "ResourceNotFoundException"]
        shape = service["shapes"]["MaxResults"]
        shape["min"] = 5
        del shape["max"]

    checks = {check.id: check for check in model_checks(_model_with(drop))}
    assert "model/DescribeDevice/unknown-device" not in checks
    assert "model/ListDevices/maxResults-above-max" not in checks
    below = checks["model/ListDevices/maxResults-below-min"]
    assert _checked_step(below)["with"]["maxResults"] == 4
    within = checks["model/ListDevices/maxResults-within-bounds"]
    assert [step["with"] for step in _document(within)["steps"]] == [{"maxResults": 5}]


def test_a_status_the_model_changes_is_the_status_expected() -> None:
    def change(service: dict[str, Any]) -> None:
        service["shapes"]["ResourceNotFoundException"]["error"]["httpStatusCode"] = 410
        service["operations"]["TagResource"]["http"]["responseCode"] = 200

    checks = {check.id: check for check in model_checks(_model_with(change))}
    assert _checked_step(checks["model/UnclaimDevice/unknown-device"])["expect"]["status"] == 410
    assert _checked_step(checks["model/TagResource/valid-call"])["expect"] == {"status": 200}


def test_a_required_member_without_a_known_value_is_refused() -> None:
    def add(service: dict[str, Any]) -> None:
        shape = service["shapes"]["DescribeDeviceRequest"]
        shape["members"]["Colour"] = {"shape": "__string", "locationName": "colour"}
        shape["required"].append("Colour")

    with pytest.raises(ValueError, match="DescribeDevice: no valid value known for colour"):
        model_checks(_model_with(add))


# --- each check passes against the reference backend ----------------------------------


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every check, run once by ``clicksim run`` against the embedded reference
    backend (a fresh one per check): the JSON report's scenarios by name (= id)."""
    folder = tmp_path_factory.mktemp("generated")
    files = []
    for check in CHECKS:
        path = folder / (check.id.replace("/", "__") + ".yaml")
        path.write_text(check.text, encoding="utf-8")
        files.append(str(path))
    report = folder / "report.json"
    completed = subprocess.run(
        [sys.executable, "-m", "simulator.cli", "run", *files, "--json", str(report)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode in (0, 1), completed.stderr[-3000:]
    scenarios = json.loads(report.read_text(encoding="utf-8"))["scenarios"]
    return {scenario["name"]: scenario for scenario in scenarios}


@pytest.mark.parametrize("check_id", sorted(BY_ID))
def test_the_check_passes_against_the_reference_backend(
    check_id: str, reference_run: dict[str, Any]
) -> None:
    result = reference_run[check_id]
    broken = [
        {key: step[key] for key in ("path", "name", "outcome", "message", "sent", "received")}
        for step in result["steps"]
        if step["outcome"] != "passed"
    ]
    assert not broken, json.dumps(broken, indent=1)
    assert result["ok"]
