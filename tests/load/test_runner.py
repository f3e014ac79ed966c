"""The load runner against the embedded reference backend: real TLS clicks, real SigV4.

Each test makes a small fleet signed by the session's CA and a fresh backend with it
in its inventory, as ``clicksim load`` does without ``--api``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from simulator.backend.service import Clicked, DevicesService
from simulator.load.metrics import LatencySummary
from simulator.load.plan import LoadPlan, Thresholds
from simulator.load.runner import LoadError, LoadResult, StageResult, judge, run_load
from simulator.protocol import ReceivedClick
from simulator.resources import load_profile
from simulator.runtime.fleet import Fleet
from simulator.scenario.target import ScenarioClock, Target, Workspace, embedded_target
from simulator.workspace import CaFolder, create_fleet, read_manifest
from tests.support import free_port

PROFILE = "aws-iot-enterprise-button"


def make_workspace(root: Path, ca_folder: CaFolder, *, devices: int, seed: str) -> Workspace:
    manifest = root / "fleet" / "fleet.json"
    create_fleet(
        load_profile(PROFILE),
        ca_folder=ca_folder,
        count=devices,
        seed=seed,
        claim_code=None,
        out=manifest,
    )
    return Workspace(ca_folder=ca_folder, manifest=manifest, fleet=Fleet.open(manifest))


@contextlib.asynccontextmanager
async def backend(root: Path, workspace: Workspace, seed: str) -> AsyncIterator[Target]:
    async with embedded_target(
        ca_folder=workspace.ca_folder,
        manifests=[workspace.manifest],
        account_names=["owner"],
        seed=seed,
        clock=ScenarioClock(),
        db=root / "backend.db",
    ) as target:
        yield target


def plan(**changes: object) -> LoadPlan:
    values: dict[str, object] = {
        "devices": 20,
        "profile": PROFILE,
        "start_rate": 5.0,
        "factor": 2.0,
        "stages": 2,
        "stage_seconds": 2.0,
        "api_rate": 5.0,
        "visible_sample": 0.3,
    }
    values.update(changes)
    return LoadPlan(**values)  # type: ignore[arg-type]


async def run(
    tmp_path: Path, ca_folder: CaFolder, load_plan: LoadPlan, *, seed: str = "load-test"
) -> tuple[LoadResult, list[StageResult], list[str], Workspace]:
    workspace = make_workspace(tmp_path, ca_folder, devices=load_plan.devices, seed=seed)
    stages: list[StageResult] = []
    ticks: list[str] = []
    async with backend(tmp_path, workspace, seed) as target:
        result = await run_load(
            load_plan, target, workspace, seed=seed, on_stage=stages.append, on_tick=ticks.append
        )
    return result, stages, ticks, workspace


def test_a_short_run_holds_and_loses_nothing(tmp_path: Path, ca_folder: CaFolder) -> None:
    result, reported, ticks, workspace = asyncio.run(run(tmp_path, ca_folder, plan()))
    assert result.stages == reported
    assert [s.number for s in result.stages] == [1, 2]
    assert [s.offered_rate for s in result.stages] == [5.0, 10.0]
    for stage, offered in zip(result.stages, (10, 20), strict=True):
        assert stage.broken == [], stage.broken
        assert stage.clicks == offered
        assert stage.acknowledged == offered
        assert stage.failed == stage.not_started == 0
        assert stage.achieved_rate == pytest.approx(stage.offered_rate, rel=0.1)
        assert stage.click_latency.count == offered
        assert stage.click_latency.p99_ms is not None
        assert 0 < stage.click_latency.p99_ms < 2000
        assert stage.visible_latency.count >= 1
        assert stage.visible_missed == 0
        assert stage.api_calls == 10
        assert stage.api_errors == 0
        assert stage.api_latency.count == 10
        assert stage.generator_cpu > 0
    assert result.breaking_stage is None
    assert result.capacity == result.stages[-1].achieved_rate
    assert result.acknowledged == 30
    assert result.listed == 30
    assert (result.lost, result.duplicates, result.lost_examples) == (0, 0, [])
    assert result.verify_problem is None
    assert result.target == "the embedded reference backend"
    assert any(line.startswith("stage 1 at 5 clicks/s") for line in ticks)
    # Progress saved: the 30 clicks' seqs never come again.
    records = read_manifest(workspace.manifest).devices
    assert sum(record.seq for record in records) == 30


def test_strict_thresholds_break_stage_one_and_stop(tmp_path: Path, ca_folder: CaFolder) -> None:
    strict = plan(
        devices=5,
        stages=3,
        stage_seconds=1.0,
        api_rate=0.0,
        visible_sample=0.0,
        thresholds=Thresholds(click_p99_ms=0.001),
    )
    result, reported, _, _ = asyncio.run(run(tmp_path, ca_folder, strict))
    assert len(result.stages) == len(reported) == 1
    broken = result.breaking_stage
    assert broken is result.stages[0]
    assert len(broken.broken) == 1
    assert broken.broken[0].startswith("click p99 ")
    assert broken.broken[0].endswith("> 0.001 ms")
    assert result.capacity is None
    assert result.lost == 0


def test_a_backend_that_drops_clicks_is_caught(
    tmp_path: Path, ca_folder: CaFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = DevicesService.record_clicks
    seen = 0

    def lossy(
        self: DevicesService, clicks: Sequence[ReceivedClick], *, received_at: float
    ) -> list[Clicked]:
        """Acknowledges every click but stores only every second one."""
        nonlocal seen
        kept: list[ReceivedClick] = []
        for click in clicks:
            seen += 1
            if seen % 2:
                kept.append(click)
        stored = iter(original(self, kept, received_at=received_at))
        return [next(stored) if click in kept else Clicked(True) for click in clicks]

    monkeypatch.setattr(DevicesService, "record_clicks", lossy)
    lossy_plan = plan(devices=6, stages=1, factor=1.0, api_rate=0.0, visible_sample=0.0)
    result, _, _, _ = asyncio.run(run(tmp_path, ca_folder, lossy_plan))
    assert result.acknowledged == 10
    assert result.listed == 5
    assert result.lost == 5
    assert result.duplicates == 0
    assert len(result.lost_examples) == 5
    for example in result.lost_examples:
        assert set(example) == {"device", "seq"}
        assert isinstance(example["seq"], int)


def test_an_unreachable_api_is_one_clear_error(tmp_path: Path, ca_folder: CaFolder) -> None:
    async def attempt() -> None:
        workspace = make_workspace(tmp_path, ca_folder, devices=2, seed="unreachable")
        async with backend(tmp_path, workspace, "unreachable") as target:
            gone = Target(
                description="nowhere",
                api_url=f"http://127.0.0.1:{free_port()}",
                broker=target.broker,
                accounts=target.accounts,
                region=target.region,
                backend_clock=False,
            )
            await run_load(plan(devices=2), gone, workspace, seed="unreachable")

    with pytest.raises(LoadError, match=r"^cannot reach http://127\.0\.0\.1:\d+"):
        asyncio.run(attempt())


def stage_result(**changes: object) -> StageResult:
    none = LatencySummary(count=0, p50_ms=None, p95_ms=None, p99_ms=None, max_ms=None)
    values: dict[str, object] = {
        "number": 1,
        "offered_rate": 10.0,
        "seconds": 10.0,
        "clicks": 100,
        "acknowledged": 100,
        "failed": 0,
        "not_started": 0,
        "achieved_rate": 10.0,
        "click_latency": none,
        "visible_latency": none,
        "visible_missed": 0,
        "api_calls": 0,
        "api_errors": 0,
        "api_latency": none,
        "generator_cpu": 0.1,
        "broken": [],
    }
    values.update(changes)
    return StageResult(**values)  # type: ignore[arg-type]


def test_judge_names_every_threshold_passed() -> None:
    slow = LatencySummary(count=3, p50_ms=900.0, p95_ms=2500.0, p99_ms=2500.0, max_ms=2500.0)
    assert judge(stage_result(), Thresholds()) == []
    reasons = judge(
        stage_result(
            clicks=100,
            acknowledged=50,
            failed=20,
            not_started=30,
            achieved_rate=5.0,
            click_latency=slow,
            visible_missed=2,
            api_calls=10,
            api_errors=1,
        ),
        Thresholds(),
    )
    assert reasons == [
        "click p99 2500 ms > 2000 ms",
        "20 of 100 clicks not acknowledged within 10 s (20.0% > 1.0%)",
        "2 sampled click(s) not listed within 10 s",
        "1 of 10 API calls failed (10.0% > 1.0%)",
        "achieved 5.0 of 10 clicks/s offered (50% < 90%); 30 not started, every device busy",
    ]
