"""Run the selected checks, one after another, against one backend.

Every check's fleet is made first (each from the run's seed and the check's id, all
signed by one CA), so that the backend's inventory holds them all before the first
check runs; then each check runs as the scenario it is, through the scenario
runner, and its steps reduce to one verdict. Checks never run at once: each owns
its devices, but the accounts are shared.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from simulator.conformance.catalogue import Check
from simulator.scenario.report import Outcome, Progress, StepResult
from simulator.scenario.runner import Runner, WebhookInbox
from simulator.scenario.target import ScenarioClock, Target, Workspace, prepare_workspace
from simulator.workspace import CaFolder


@dataclass
class CheckResult:
    check: Check
    outcome: Outcome
    seconds: float
    message: str
    """One line: why the check failed, errored or was skipped."""
    steps: list[StepResult] = field(default_factory=list)

    @property
    def broken_step(self) -> StepResult | None:
        """The step that failed or errored, whose exchange explains the verdict."""
        return next((s for s in self.steps if s.outcome in (Outcome.FAILED, Outcome.ERROR)), None)


@dataclass
class ConformanceResult:
    target: str
    seed: str
    started_at: float
    seconds: float
    checks: list[CheckResult] = field(default_factory=list)

    def count(self, outcome: Outcome, kind: str | None = None) -> int:
        return sum(
            1
            for result in self.checks
            if result.outcome is outcome and (kind is None or result.check.kind == kind)
        )

    @property
    def ok(self) -> bool:
        return not any(r.outcome in (Outcome.FAILED, Outcome.ERROR) for r in self.checks)


def account_names(checks: Sequence[Check]) -> list[str]:
    """Every account some check acts as: ``owner`` (the checks' first) first."""
    names: list[str] = []
    for check in checks:
        names += [name for name in check.scenario.accounts if name not in names]
    return sorted(names, key=lambda name: (name != "owner", names.index(name)))


def check_seed(seed: str, check: Check) -> str:
    return f"{seed}/{check.id}"


def prepare_fleets(
    checks: Sequence[Check], *, seed: str, root: Path, ca_folder: CaFolder
) -> dict[str, Workspace]:
    """Each check's fleet under ``root``, by check id, all signed by ``ca_folder``."""
    return {
        check.id: prepare_workspace(
            check.scenario,
            seed=check_seed(seed, check),
            root=root / check.id.replace("/", "__"),
            ca_dir=ca_folder.path,
        )
        for check in checks
    }


class ConformanceRunner:
    def __init__(
        self,
        checks: Sequence[Check],
        workspaces: dict[str, Workspace],
        target: Target,
        *,
        seed: str,
        clock: ScenarioClock,
        progress: Progress | None = None,
    ) -> None:
        self.checks = checks
        self.workspaces = workspaces
        self.target = target
        self.seed = seed
        self.clock = clock
        self.progress = progress

    async def run(self) -> ConformanceResult:
        result = ConformanceResult(
            target=self.target.description, seed=self.seed, started_at=time.time(), seconds=0.0
        )
        began = time.perf_counter()
        if self.progress is not None:
            self.progress.begin("conformance", len(self.checks))
        try:
            for number, check in enumerate(self.checks, start=1):
                if self.progress is not None:
                    self.progress.start(str(number), check.id)
                verdict = await self._run_check(check)
                result.checks.append(verdict)
                if self.progress is not None:
                    self.progress.finish(
                        StepResult(
                            path=str(number),
                            name=check.id,
                            kind=check.kind,
                            outcome=verdict.outcome,
                            seconds=verdict.seconds,
                            line=0,
                            message=verdict.message,
                        )
                    )
        finally:
            if self.progress is not None:
                self.progress.close()
        result.seconds = time.perf_counter() - began
        return result

    async def _run_check(self, check: Check) -> CheckResult:
        missing = [name for name in check.scenario.accounts if name not in self.target.accounts]
        if missing:
            reason = f"needs the account {missing[0]!r}: give --account {missing[0]}=PROFILE"
            return CheckResult(check=check, outcome=Outcome.SKIPPED, seconds=0.0, message=reason)
        async with self._webhook(check) as inbox:
            runner = Runner(
                check.scenario,
                self.target,
                self.workspaces[check.id],
                seed=check_seed(self.seed, check),
                clock=self.clock,
                webhook=inbox,
            )
            ran = await runner.run()
        return verdict(check, ran.steps, ran.seconds)

    @contextlib.asynccontextmanager
    async def _webhook(self, check: Check) -> AsyncIterator[WebhookInbox | None]:
        if not check.scenario.webhook:
            yield None
            return
        async with WebhookInbox().serving() as inbox:
            yield inbox


def verdict(check: Check, steps: list[StepResult], seconds: float) -> CheckResult:
    """A check's outcome from its steps: the first broken step decides; a step skipped
    for what the target cannot do (its clock) makes the check inconclusive: skipped."""
    result = CheckResult(
        check=check, outcome=Outcome.PASSED, seconds=seconds, message="", steps=steps
    )
    broken = result.broken_step
    if broken is not None:
        result.outcome = broken.outcome
        why = f": {broken.message}" if broken.message else ""
        result.message = f"step {broken.path} ({broken.name}) {broken.outcome.value}{why}"
        return result
    skipped = next((s for s in steps if s.outcome is Outcome.SKIPPED), None)
    if skipped is not None:
        result.outcome = Outcome.SKIPPED
        result.message = f"step {skipped.path} ({skipped.name}) {skipped.message}"
    return result
