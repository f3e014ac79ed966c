"""The catalogue: every bundled check loads, is described, and names real operations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulator.api.model import load_model
from simulator.conformance.catalogue import (
    CHECKS_DIR,
    CatalogueError,
    Check,
    load_catalogue,
    select,
)
from simulator.scenario.model import CONFORMANCE_KINDS


@pytest.fixture(scope="module")
def catalogue() -> list[Check]:
    return load_catalogue()


def test_every_check_is_described_and_names_operations_of_the_model(
    catalogue: list[Check],
) -> None:
    operations = set(load_model().operations)
    for check in catalogue:
        assert check.kind in CONFORMANCE_KINDS, check.id
        assert check.description, check.id
        assert set(check.operations) <= operations, check.id
        assert re.fullmatch(r"[a-z-]+/[A-Za-z0-9/-]+", check.id), check.id


def test_ids_are_unique_and_sorted(catalogue: list[Check]) -> None:
    ids = [check.id for check in catalogue]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_a_check_file_is_named_as_its_scenario(catalogue: list[Check]) -> None:
    files = [check for check in catalogue if check.source.startswith("checks/")]
    assert len(files) == len(list(CHECKS_DIR.glob("*/*.yaml")))
    for check in files:
        assert check.scenario.name == check.id.rsplit("/", 1)[1], check.source


def test_every_operation_has_model_and_reference_checks(catalogue: list[Check]) -> None:
    for kind in CONFORMANCE_KINDS:
        covered = {op for check in catalogue if check.kind == kind for op in check.operations}
        if kind == "model":
            assert covered == set(load_model().operations)
        else:  # the reference semantics touch every operation but the plain listings
            assert len(covered) >= 10, covered


def test_select_by_glob_and_kind(catalogue: list[Check]) -> None:
    claims = select(catalogue, only=["claims/*"])
    assert claims
    assert all(check.group == "claims" for check in claims)
    both = select(catalogue, only=["claims/*", "tags/*"])
    assert {check.group for check in both} == {"claims", "tags"}
    model = select(catalogue, kinds=["model"])
    assert model
    assert all(check.kind == "model" for check in model)
    assert select(catalogue) == catalogue


def test_a_glob_that_matches_nothing_is_refused(catalogue: list[Check]) -> None:
    with pytest.raises(CatalogueError, match=r"--only 'claim/\*': matches no check"):
        select(catalogue, only=["claims/*", "claim/*"])


CHECK = """\
name: {name}
description: A made-up check.
conformance: {{kind: reference, operations: [ListDevices]}}
{fleet}
steps:
  - call: ListDevices
"""


def write_check(folder: Path, name: str, *, header: bool = True, fleet: str = "") -> None:
    text = CHECK.format(name=name, fleet=fleet)
    if not header:
        text = "\n".join(line for line in text.splitlines() if "conformance" not in line)
    (folder / "group").mkdir(parents=True, exist_ok=True)
    (folder / "group" / f"{name}.yaml").write_text(text)


def test_a_catalogue_folder_loads_with_the_generated_checks(tmp_path: Path) -> None:
    write_check(tmp_path, "mine")
    checks = load_catalogue(checks_dir=tmp_path)
    assert "group/mine" in [check.id for check in checks]
    mine = next(check for check in checks if check.id == "group/mine")
    assert (mine.kind, mine.operations, mine.source) == (
        "reference",
        ("ListDevices",),
        "checks/group/mine.yaml",
    )
    assert any(check.source.startswith("<model>/") for check in checks)


def test_a_check_without_its_header_is_refused(tmp_path: Path) -> None:
    write_check(tmp_path, "headless", header=False)
    with pytest.raises(CatalogueError, match=r"checks/group/headless\.yaml: a check needs a"):
        load_catalogue(checks_dir=tmp_path)


@pytest.mark.parametrize("fleet", ["fleet: {seed: fixed}", "fleet: {claim_code: C-0123456789}"])
def test_a_check_with_a_fixed_fleet_is_refused(tmp_path: Path, fleet: str) -> None:
    write_check(tmp_path, "fixed", fleet=fleet)
    with pytest.raises(CatalogueError, match=r"checks/group/fixed.yaml:4: a check's fleet takes"):
        load_catalogue(checks_dir=tmp_path)
