"""How the suite runs: one fleet per check, shared accounts, one verdict per check."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.conformance.catalogue import Check, load_catalogue
from simulator.conformance.runner import account_names, prepare_fleets, verdict
from simulator.device.identity import KeyType
from simulator.scenario.loader import load_scenario_text
from simulator.scenario.report import Outcome, StepResult
from simulator.workspace import init_ca


def made_up_check(accounts: str = "[owner]") -> Check:
    scenario = load_scenario_text(
        "conformance: {kind: model, operations: [ListDevices]}\n"
        f"accounts: {accounts}\nsteps: [{{call: ListDevices}}]\n",
        source="made-up.yaml",
        base_dir=Path(),
    )
    return Check(
        id="group/made-up",
        kind="model",
        operations=("ListDevices",),
        source="made-up.yaml",
        text="",
        scenario=scenario,
    )


def step(path: str, outcome: Outcome, message: str = "") -> StepResult:
    return StepResult(
        path=path, name=f"step {path}", kind="call", outcome=outcome, seconds=0.1, line=3,
        message=message,
    )  # fmt: skip


def test_every_check_gets_its_own_devices_and_claim_code(tmp_path: Path) -> None:
    """On one backend, no two checks may share a device or a claim code."""
    checks = load_catalogue()
    ca = init_ca(tmp_path / "certs", seed="ca", key_type=KeyType.EC)
    fleets = prepare_fleets(checks, seed="s", root=tmp_path / "fleets", ca_folder=ca)
    assert set(fleets) == {check.id for check in checks}
    devices = [d.record.device_id for w in fleets.values() for d in w.fleet.devices]
    codes = [w.fleet.manifest.claim_code for w in fleets.values()]
    assert len(set(devices)) == len(devices)
    assert len(set(codes)) == len(codes)


def test_owner_comes_first_among_the_accounts() -> None:
    checks = [made_up_check("[rival, owner]"), made_up_check("[owner, third]")]
    assert account_names(checks) == ["owner", "rival", "third"]


@pytest.mark.parametrize(
    ("outcomes", "expected", "message"),
    [
        ([Outcome.PASSED, Outcome.PASSED], Outcome.PASSED, ""),
        (
            [Outcome.PASSED, Outcome.FAILED, Outcome.SKIPPED],
            Outcome.FAILED,
            "step 2 (step 2) failed: why",
        ),
        ([Outcome.ERROR, Outcome.SKIPPED], Outcome.ERROR, "step 1 (step 1) error: why"),
        (
            [Outcome.PASSED, Outcome.SKIPPED, Outcome.SKIPPED],
            Outcome.SKIPPED,
            "step 2 (step 2) why",
        ),
    ],
    ids=["passed", "failed", "error", "inconclusive"],
)
def test_the_first_broken_step_decides_and_a_skip_makes_it_inconclusive(
    outcomes: list[Outcome], expected: Outcome, message: str
) -> None:
    steps = [
        step(str(number), outcome, "" if outcome is Outcome.PASSED else "why")
        for number, outcome in enumerate(outcomes, start=1)
    ]
    result = verdict(made_up_check(), steps, 0.3)
    assert (result.outcome, result.message) == (expected, message)
    assert result.steps == steps
