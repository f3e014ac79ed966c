"""The catalogue: every check of the suite, each a scenario with a ``conformance:`` header.

Hand-written checks are YAML files beside this module, ``checks/<group>/<name>.yaml``
(id ``<group>/<name>``); the checks that follow mechanically from the AWS service
model (an unknown device for each operation that models a 404, each required member
left out, each paginator...) are generated from it (``generated.py``). A check's
``kind`` says where its expectation comes from: ``model`` (the AWS model says so) or
``reference`` (the reference semantics, ``docs/semantics.md``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from simulator.api.model import ServiceModel, load_model
from simulator.conformance.generated import model_checks
from simulator.scenario.loader import load_scenario_text
from simulator.scenario.model import Scenario

CHECKS_DIR: Final = Path(__file__).parent / "checks"


class CatalogueError(ValueError):
    """A check of the catalogue, or a selection of checks, is not usable."""


@dataclass(frozen=True, kw_only=True)
class Check:
    id: str
    """``claims/finalize-without-click``; ``model/...`` for the generated checks."""
    kind: str
    """``model`` or ``reference``."""
    operations: tuple[str, ...]
    source: str
    """Where its text is, for reports: ``checks/claims/x.yaml`` or ``<model>/...``."""
    text: str
    """The scenario's YAML, as written or as generated (``--show``)."""
    scenario: Scenario

    @property
    def group(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def description(self) -> str:
        lines = self.scenario.description.strip().splitlines()
        return " ".join(line.strip() for line in lines)


def load_catalogue(
    model: ServiceModel | None = None, *, checks_dir: Path = CHECKS_DIR
) -> list[Check]:
    """Every check, sorted by id; a check without its header or with a fixed fleet is refused."""
    checks = []
    for path in sorted(checks_dir.glob("*/*.yaml")):
        relative = path.relative_to(checks_dir)
        text = path.read_text(encoding="utf-8")
        scenario = load_scenario_text(text, source=str(path), base_dir=path.parent)
        check_id = relative.with_suffix("").as_posix()
        checks.append(_check(check_id, f"checks/{relative.as_posix()}", text, scenario))
    for generated in model_checks(model or load_model()):
        source = f"<model>/{generated.id}"
        scenario = load_scenario_text(generated.text, source=source, base_dir=checks_dir)
        checks.append(_check(generated.id, source, generated.text, scenario))
    ids = [check.id for check in checks]
    twice = sorted({check_id for check_id in ids if ids.count(check_id) > 1})
    if twice:
        raise CatalogueError(f"check {twice[0]!r} is defined twice")
    return sorted(checks, key=lambda check: check.id)


def _check(check_id: str, source: str, text: str, scenario: Scenario) -> Check:
    header = scenario.conformance
    if header is None:
        raise CatalogueError(f"{source}: a check needs a 'conformance:' header")
    if scenario.fleet.seed is not None or scenario.fleet.claim_code is not None:
        # Every check's fleet comes from the run's seed and the check's id, so that no
        # two checks share a device or a claim code on the one backend they all use.
        raise CatalogueError(
            f"{source}:{scenario.fleet.line}: a check's fleet takes no seed or claim_code"
        )
    return Check(
        id=check_id,
        kind=header.kind,
        operations=header.operations,
        source=source,
        text=text,
        scenario=scenario,
    )


def select(
    checks: Sequence[Check], *, only: Sequence[str] = (), kinds: Collection[str] = ()
) -> list[Check]:
    """The checks whose id matches one of the ``only`` globs (all, without), of ``kinds``.

    A glob that matches no check is refused: it is a typo, not an empty selection.
    """
    for pattern in only:
        if not any(fnmatch.fnmatchcase(check.id, pattern) for check in checks):
            raise CatalogueError(
                f"--only {pattern!r}: matches no check (see 'clicksim conformance --list')"
            )
    return [
        check
        for check in checks
        if (not only or any(fnmatch.fnmatchcase(check.id, pattern) for pattern in only))
        and (not kinds or check.kind in kinds)
    ]
