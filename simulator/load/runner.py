"""Offer a backend rising click rates, stage by stage, until a threshold says it broke.

Every click is real: a device of the fleet wakes, connects over TLS with its own
certificate, publishes at QoS 1 and sleeps, through the same runtime as ``clicksim
click`` (``press_once``); every API call is real SigV4 HTTP (``DevicesClient``). So the
figures are those a backend would see from a fleet of buttons, not from a benchmark
client that keeps one connection open.

A stage is open loop: clicks fall due at the offered rate, evenly spaced, whatever
the backend's pace, each on the next idle device; a due click that finds every device
busy is counted ``not_started`` (the fleet, not the backend, is then the limit). When
the stage's seconds are over, its clicks, visibility checks and API calls are let
finish, so that each stage is judged on all of its own work and the next starts with
every device idle. One ``TaskGroup`` per stage holds its named tasks.

After the last stage, every device's events are paged through ListDeviceEvents:
an acknowledged click that is never listed is ``lost``, which no latency figure shows.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import random
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from simulator.api.client import ApiReply, ApiUnreachable, DevicesClient
from simulator.device.firmware import ClickRecognised, Event, Firmware
from simulator.device.fleet import DeviceRecord
from simulator.device.gestures import press_timings
from simulator.load.metrics import LatencyRecorder, LatencySummary
from simulator.load.plan import LoadPlan, Thresholds
from simulator.protocol import (
    ClickType,
    PayloadFormat,
    ProtocolError,
    format_timestamp,
    parse_timestamp,
)
from simulator.runtime.button import press_once
from simulator.runtime.fleet import FleetDevice
from simulator.scenario.target import Target, Workspace

OWNER: Final = "owner"
"""The account that claims the fleet and makes every API call."""
CLICK_TIMEOUT_S: Final = 10.0
"""A click not acknowledged this long after it was recognised has failed."""
VISIBLE_TIMEOUT_S: Final = 10.0
VISIBLE_POLL_S: Final = 0.05
VISIBLE_WINDOW_S: Final = 1.0
"""How far around a sampled click its ListDeviceEvents window reaches."""
TICK_S: Final = 1.0
VERIFY_CONCURRENCY: Final = 8
VERIFY_PAGE_SIZE: Final = 100
MAX_PAGES: Final = 10_000
MAX_LOST_EXAMPLES: Final = 10

log = logging.getLogger("clicksim.load")


class LoadError(Exception):
    """The run cannot start: the API unreachable, the fleet not claimable. One line."""


@dataclass(kw_only=True)
class StageResult:
    number: int
    offered_rate: float
    seconds: float
    """Wall seconds during which the stage offered clicks."""
    clicks: int
    acknowledged: int
    failed: int
    """Not acknowledged within the click timeout."""
    not_started: int
    """Scheduled but no free device: the generator's limit."""
    achieved_rate: float
    """Acknowledged / seconds."""
    click_latency: LatencySummary
    visible_latency: LatencySummary
    visible_missed: int
    """Sampled clicks not listed within ``VISIBLE_TIMEOUT_S`` of their PUBACK."""
    api_calls: int
    api_errors: int
    api_latency: LatencySummary
    generator_cpu: float
    """This process's CPU seconds / wall seconds in the stage (the embedded backend's too)."""
    broken: list[str]
    """Why the stage broke (thresholds); empty: it held."""


@dataclass(kw_only=True)
class LoadResult:
    target: str
    seed: str
    started_at: float
    seconds: float
    plan: LoadPlan
    stages: list[StageResult]
    acknowledged: int
    listed: int
    lost: int
    duplicates: int
    lost_examples: list[dict[str, object]]
    """Up to ``MAX_LOST_EXAMPLES``: ``device``, ``seq``."""
    verify_problem: str | None = None
    """Why some device's events could not be listed (those devices are left out of
    ``listed``, ``lost`` and ``duplicates``); None when every device was listed."""

    @property
    def breaking_stage(self) -> StageResult | None:
        return next((stage for stage in self.stages if stage.broken), None)

    @property
    def capacity(self) -> float | None:
        """The achieved rate of the last stage that held (None: stage 1 broke)."""
        held = [stage for stage in self.stages if not stage.broken]
        return held[-1].achieved_rate if held else None


@dataclass(frozen=True, slots=True)
class _Sent:
    """One click a device made: what it reported, and whether the broker acknowledged it."""

    seq: int
    reported_at: float
    """The firmware's time of recognition (POSIX): the event's reportedTime."""
    acked_at: float | None
    """POSIX time of the PUBACK, or None (failed)."""


@dataclass(slots=True)
class _Device:
    fleet_device: FleetDevice
    record: DeviceRecord
    tls: ssl.SSLContext | None
    durations: tuple[int, ...]
    firmware: Firmware | None = None
    """The last click's firmware, for its seq and battery when progress is saved."""
    sent: list[_Sent] = field(default_factory=list)

    @property
    def device_id(self) -> str:
        return self.record.device_id

    @property
    def carries_time(self) -> bool:
        """Whether its payload says when the click was made (iotbutton's does not)."""
        return self.fleet_device.profile.payload is not PayloadFormat.IOTBUTTON

    def next_firmware(self, seed: str) -> Firmware:
        """A firmware where the last click left the device (seq, battery)."""
        device = dataclasses.replace(self.fleet_device, record=self.record)
        return device.firmware(rng=random.Random(f"{seed}/{self.device_id}/{self.record.seq}"))

    def keep(self, firmware: Firmware) -> None:
        self.firmware = firmware
        self.record = dataclasses.replace(
            self.record, seq=firmware.next_seq, battery=firmware.battery.state
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class _Verified:
    acknowledged: int
    listed: int
    lost: int
    duplicates: int
    lost_examples: list[dict[str, object]]
    problem: str | None


@dataclass(slots=True)
class _Stage:
    number: int
    rate: float
    clicks: int = 0
    acknowledged: int = 0
    failed: int = 0
    not_started: int = 0
    visible_missed: int = 0
    api_calls: int = 0
    api_errors: int = 0
    click_latency: LatencyRecorder = field(default_factory=LatencyRecorder)
    visible_latency: LatencyRecorder = field(default_factory=LatencyRecorder)
    api_latency: LatencyRecorder = field(default_factory=LatencyRecorder)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


async def run_load(
    plan: LoadPlan,
    target: Target,
    workspace: Workspace,
    *,
    seed: str,
    on_stage: Callable[[StageResult], None] | None = None,
    on_tick: Callable[[str], None] | None = None,
) -> LoadResult:
    """Claim the fleet, run the plan's stages until one breaks, then verify every click.

    Raises ``LoadError`` (one line) when the run cannot start. The fleet's progress
    (seq, battery) is saved back to its manifest however the run ends.
    """
    return await _LoadRun(plan, target, workspace, seed=seed, on_stage=on_stage, on_tick=on_tick)()


class _LoadRun:
    def __init__(
        self,
        plan: LoadPlan,
        target: Target,
        workspace: Workspace,
        *,
        seed: str,
        on_stage: Callable[[StageResult], None] | None,
        on_tick: Callable[[str], None] | None,
    ) -> None:
        self.plan = plan
        self.target = target
        self.workspace = workspace
        self.seed = seed
        self.on_stage = on_stage
        self.on_tick = on_tick
        self.rng = random.Random(seed)
        account = target.accounts.get(OWNER) or next(iter(target.accounts.values()), None)
        if account is None:
            raise LoadError("the target has no account to act as")
        self.client = DevicesClient(target.api_url, account.credentials, region=target.region)
        self.devices: list[_Device] = []
        self.idle: collections.deque[_Device] = collections.deque()

    async def __call__(self) -> LoadResult:
        started_at, started = time.time(), time.perf_counter()
        await self._claim()
        self._bring_devices()
        stages: list[StageResult] = []
        try:
            for number, rate in enumerate(self.plan.rates(), start=1):
                stage = await self._stage(number, rate)
                stages.append(stage)
                if self.on_stage is not None:
                    self.on_stage(stage)
                if stage.broken:
                    break
            verified = await self._verify(since=started_at - VISIBLE_WINDOW_S)
        finally:
            self.workspace.fleet.save_progress(
                [device.firmware for device in self.devices if device.firmware is not None]
            )
        return LoadResult(
            target=self.target.description,
            seed=self.seed,
            started_at=started_at,
            seconds=time.perf_counter() - started,
            plan=self.plan,
            stages=stages,
            acknowledged=verified.acknowledged,
            listed=verified.listed,
            lost=verified.lost,
            duplicates=verified.duplicates,
            lost_examples=verified.lost_examples,
            verify_problem=verified.problem,
        )

    # --- setup ------------------------------------------------------------------------

    async def _claim(self) -> None:
        """The owner claims the whole fleet with its one claim code."""
        code = self.workspace.fleet.manifest.claim_code
        try:
            reply = await self.client.call("ClaimDevicesByClaimCode", {"claimCode": code})
        except ApiUnreachable as exc:
            raise LoadError(str(exc)) from None
        if not 200 <= reply.status < 300:
            raise LoadError(
                f"ClaimDevicesByClaimCode {code}: status {reply.status} "
                f"({reply.error_code or 'no error code'}); is the fleet in the backend's inventory?"
            )

    def _bring_devices(self) -> None:
        tls = self.target.broker.tls
        for fleet_device in self.workspace.fleet.devices:
            timings = fleet_device.profile.timings
            device = _Device(
                fleet_device=fleet_device,
                record=fleet_device.record,
                tls=fleet_device.tls_context() if tls else None,
                durations=press_timings(ClickType.SINGLE, timings),
            )
            self.devices.append(device)
            self.idle.append(device)

    # --- a stage ------------------------------------------------------------------------

    async def _stage(self, number: int, rate: float) -> StageResult:
        stage = _Stage(number=number, rate=rate)
        loop = asyncio.get_running_loop()
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        start = loop.time()
        ends = start + self.plan.stage_seconds
        async with asyncio.TaskGroup() as group:
            ticker = None
            if self.on_tick is not None:
                ticker = group.create_task(
                    self._tick(stage, start), name=f"load-stage{number}-ticker"
                )
            offers = [
                group.create_task(
                    self._offer_clicks(group, stage, start, ends), name=f"load-stage{number}-clicks"
                )
            ]
            if self.plan.api_rate > 0:
                offers.append(
                    group.create_task(
                        self._offer_api_calls(group, stage, start, ends),
                        name=f"load-stage{number}-api",
                    )
                )
            await asyncio.wait(offers)
            await asyncio.sleep(max(ends - loop.time(), 0.0))
            offered_seconds = time.perf_counter() - wall_started
            if stage.tasks:  # drain: the stage's own clicks, checks and calls
                await asyncio.wait(set(stage.tasks))
            if ticker is not None:
                ticker.cancel()
        wall = time.perf_counter() - wall_started
        achieved = stage.acknowledged / offered_seconds
        result = StageResult(
            number=number,
            offered_rate=rate,
            seconds=offered_seconds,
            clicks=stage.clicks,
            acknowledged=stage.acknowledged,
            failed=stage.failed,
            not_started=stage.not_started,
            achieved_rate=achieved,
            click_latency=stage.click_latency.summary(),
            visible_latency=stage.visible_latency.summary(),
            visible_missed=stage.visible_missed,
            api_calls=stage.api_calls,
            api_errors=stage.api_errors,
            api_latency=stage.api_latency.summary(),
            generator_cpu=(time.process_time() - cpu_started) / wall if wall > 0 else 0.0,
            broken=[],
        )
        result.broken = judge(result, self.plan.thresholds)
        return result

    async def _offer_clicks(
        self, group: asyncio.TaskGroup, stage: _Stage, start: float, ends: float
    ) -> None:
        """Open loop: click ``n`` is due at ``start + n / rate``, late or not."""
        loop = asyncio.get_running_loop()
        due = 0
        while (at := start + due / stage.rate) < ends:
            await asyncio.sleep(max(at - loop.time(), 0.0))
            if self.idle:
                device = self.idle.popleft()
                task = group.create_task(
                    self._click(device, stage), name=f"load-stage{stage.number}-click{due}"
                )
                _track(stage, task)
            else:
                stage.not_started += 1
            due += 1

    async def _click(self, device: _Device, stage: _Stage) -> None:
        """One device cycle; its outcome lands in ``stage``, whatever happens."""
        firmware = device.next_firmware(self.seed)
        recognised: list[tuple[float, float]] = []  # (POSIX time of the click, perf time)
        acked: list[tuple[float, float]] = []

        def note(event: Event) -> None:
            if isinstance(event, ClickRecognised):
                recognised.append((event.click.reported_at, time.perf_counter()))
            elif not acked and firmware.counters.published:
                acked.append((time.time(), time.perf_counter()))

        seq = firmware.next_seq
        stage.clicks += 1
        try:
            await press_once(
                firmware,
                device.durations,
                broker=self.target.broker,
                tls_context=device.tls,
                timeout=CLICK_TIMEOUT_S,
                on_event=note,
                until="delivered",
            )
        except TimeoutError:
            pass
        except Exception as exc:  # one click's failure never ends the run
            log.warning("load: a click of %s failed: %s", device.device_id, exc)
        finally:
            device.keep(firmware)
            self.idle.append(device)
        if not recognised:
            stage.failed += 1  # a dead device makes no click
            return
        reported_at, recognised_perf = recognised[0]
        if not acked or acked[0][1] - recognised_perf > CLICK_TIMEOUT_S:
            device.sent.append(_Sent(seq=seq, reported_at=reported_at, acked_at=None))
            stage.failed += 1
            return
        acked_at, acked_perf = acked[0]
        sent = _Sent(seq=seq, reported_at=reported_at, acked_at=acked_at)
        device.sent.append(sent)
        stage.acknowledged += 1
        stage.click_latency.add(acked_perf - recognised_perf)
        if self.rng.random() < self.plan.visible_sample:
            await self._check_visible(device, sent, acked_perf, stage)

    async def _check_visible(
        self, device: _Device, sent: _Sent, acked_perf: float, stage: _Stage
    ) -> None:
        """Poll the device's events around the click until it is listed."""
        assert sent.acked_at is not None
        params = {
            "deviceId": device.device_id,
            "fromTimeStamp": _utc(sent.reported_at - VISIBLE_WINDOW_S),
            "toTimeStamp": _utc(sent.acked_at + VISIBLE_WINDOW_S),
        }
        while True:
            try:
                reply: ApiReply | None = await self.client.call("ListDeviceEvents", params)
            except ApiUnreachable:
                reply = None
            now = time.perf_counter()
            if reply is not None and _lists(reply, device, sent):
                stage.visible_latency.add(now - acked_perf)
                return
            if now - acked_perf >= VISIBLE_TIMEOUT_S:
                stage.visible_missed += 1
                return
            await asyncio.sleep(VISIBLE_POLL_S)

    async def _offer_api_calls(
        self, group: asyncio.TaskGroup, stage: _Stage, start: float, ends: float
    ) -> None:
        """Open loop: DescribeDevice on a random device of the fleet, at the plan's rate."""
        loop = asyncio.get_running_loop()
        due = 0
        while (at := start + due / self.plan.api_rate) < ends:
            await asyncio.sleep(max(at - loop.time(), 0.0))
            device = self.rng.choice(self.devices)
            task = group.create_task(
                self._describe(device.device_id, stage), name=f"load-stage{stage.number}-api{due}"
            )
            _track(stage, task)
            due += 1

    async def _describe(self, device_id: str, stage: _Stage) -> None:
        stage.api_calls += 1
        started = time.perf_counter()
        try:
            reply = await self.client.call("DescribeDevice", {"deviceId": device_id})
        except ApiUnreachable:
            stage.api_errors += 1
            return
        stage.api_latency.add(time.perf_counter() - started)
        if not 200 <= reply.status < 300:
            stage.api_errors += 1

    async def _tick(self, stage: _Stage, start: float) -> None:
        assert self.on_tick is not None
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(TICK_S)
            elapsed = loop.time() - start
            self.on_tick(
                f"stage {stage.number} at {stage.rate:g} clicks/s, {elapsed:.0f} s: "
                f"{stage.clicks} clicks, {stage.acknowledged} acknowledged, "
                f"{stage.failed} failed, {stage.not_started} not started, "
                f"{len(stage.tasks)} in flight; API {stage.api_calls} calls, "
                f"{stage.api_errors} errors"
            )

    # --- verification -------------------------------------------------------------------

    async def _verify(self, *, since: float) -> _Verified:
        """Page every device's events of the run and hold them against its clicks.

        A device that seems to miss clicks is listed again until ``VISIBLE_TIMEOUT_S``
        after the run's last PUBACK, so a backend that lists late is not called lossy.
        """
        if self.on_tick is not None:
            self.on_tick(f"verifying the events of {len(self.devices)} devices")
        last_ack = max(
            (s.acked_at for d in self.devices for s in d.sent if s.acked_at is not None),
            default=time.time(),
        )
        gate = asyncio.Semaphore(VERIFY_CONCURRENCY)
        listed: dict[str, list[float]] = {}
        problems: dict[str, str] = {}

        async def list_one(device: _Device) -> None:
            async with gate:
                try:
                    listed[device.device_id] = await self._listed(device.device_id, since)
                    problems.pop(device.device_id, None)
                except (ApiUnreachable, LoadError) as exc:
                    problems[device.device_id] = str(exc)

        pending = [d for d in self.devices if d.sent]
        while True:
            async with asyncio.TaskGroup() as group:
                for device in pending:
                    group.create_task(list_one(device), name=f"load-verify-{device.device_id}")
            pending = [
                d
                for d in pending
                if d.device_id in problems or _tally(d, listed[d.device_id])["lost"]
            ]
            wait = last_ack + VISIBLE_TIMEOUT_S - time.time()
            if not pending or wait <= 0:
                break
            await asyncio.sleep(min(wait, 1.0))
        return self._account(listed, problems)

    async def _listed(self, device_id: str, since: float) -> list[float]:
        """The reportedTime (POSIX) of every event of the device since ``since``."""
        params: dict[str, object] = {
            "deviceId": device_id,
            "fromTimeStamp": _utc(since),
            "toTimeStamp": _utc(time.time() + VISIBLE_WINDOW_S),
            "maxResults": VERIFY_PAGE_SIZE,
        }
        times: list[float] = []
        token: object = None
        for _ in range(MAX_PAGES):
            reply = await self.client.call("ListDeviceEvents", {**params, "nextToken": token})
            if not 200 <= reply.status < 300:
                raise LoadError(
                    f"ListDeviceEvents {device_id}: status {reply.status} ({reply.error_code})"
                )
            body = reply.body if isinstance(reply.body, dict) else {}
            times += (t for t in map(_reported_time, body.get("events") or ()) if t is not None)
            token = body.get("nextToken")
            if not token:
                return times
        raise LoadError(f"ListDeviceEvents {device_id}: still a nextToken after {MAX_PAGES} pages")

    def _account(self, listed: Mapping[str, list[float]], problems: Mapping[str, str]) -> _Verified:
        acknowledged = sum(s.acked_at is not None for d in self.devices for s in d.sent)
        totals = {"listed": 0, "lost": 0, "duplicates": 0}
        examples: list[dict[str, object]] = []
        for device in self.devices:
            if device.device_id not in listed:
                continue
            tally = _tally(device, listed[device.device_id])
            totals["listed"] += len(listed[device.device_id])
            totals["lost"] += tally["lost"]
            totals["duplicates"] += tally["duplicates"]
            for seq in _missing(device, listed[device.device_id])[: tally["lost"]]:
                if len(examples) < MAX_LOST_EXAMPLES:
                    examples.append({"device": device.device_id, "seq": seq})
        problem = next(iter(problems.values()), None)
        if problem is not None and len(problems) > 1:
            problem += f" (and {len(problems) - 1} other device(s))"
        return _Verified(
            acknowledged=acknowledged,
            listed=totals["listed"],
            lost=totals["lost"],
            duplicates=totals["duplicates"],
            lost_examples=examples,
            problem=problem,
        )


def judge(stage: StageResult, thresholds: Thresholds) -> list[str]:
    """Every threshold the stage passed, as one line each."""
    reasons: list[str] = []
    ratio = thresholds.max_failure_ratio
    for what, summary, limit in (
        ("click", stage.click_latency, thresholds.click_p99_ms),
        ("visibility", stage.visible_latency, thresholds.visible_p99_ms),
        ("API", stage.api_latency, thresholds.api_p99_ms),
    ):
        if summary.p99_ms is not None and summary.p99_ms > limit:
            reasons.append(f"{what} p99 {summary.p99_ms:.0f} ms > {limit:g} ms")
    if stage.clicks and stage.failed / stage.clicks > ratio:
        reasons.append(
            f"{stage.failed} of {stage.clicks} clicks not acknowledged within "
            f"{CLICK_TIMEOUT_S:g} s ({stage.failed / stage.clicks:.1%} > {ratio:.1%})"
        )
    if stage.visible_missed:
        reasons.append(
            f"{stage.visible_missed} sampled click(s) not listed within {VISIBLE_TIMEOUT_S:g} s"
        )
    if stage.api_calls and stage.api_errors / stage.api_calls > ratio:
        reasons.append(
            f"{stage.api_errors} of {stage.api_calls} API calls failed "
            f"({stage.api_errors / stage.api_calls:.1%} > {ratio:.1%})"
        )
    achieved = stage.achieved_rate / stage.offered_rate
    if achieved < thresholds.min_achieved_ratio:
        reason = (
            f"achieved {stage.achieved_rate:.1f} of {stage.offered_rate:g} clicks/s offered "
            f"({achieved:.0%} < {thresholds.min_achieved_ratio:.0%})"
        )
        if stage.not_started:
            reason += f"; {stage.not_started} not started, every device busy"
        reasons.append(reason)
    return reasons


def _track(stage: _Stage, task: asyncio.Task[None]) -> None:
    stage.tasks.add(task)
    task.add_done_callback(stage.tasks.discard)


def _utc(posix: float) -> datetime:
    return datetime.fromtimestamp(posix, UTC)


def _ms(posix: float) -> int:
    """A click's time as it travels: ``reportedTime`` keeps milliseconds."""
    return round(parse_timestamp(format_timestamp(posix)) * 1000)


def _reported_time(event: object) -> float | None:
    """An event's ``stdEvent.reportedTime`` (POSIX); ``stdEvent`` is a JSON string in the
    model, which some backends may send as an object."""
    std = event.get("stdEvent") if isinstance(event, dict) else None
    if isinstance(std, str):
        try:
            std = json.loads(std)
        except ValueError:
            return None
    text = std.get("reportedTime") if isinstance(std, dict) else None
    if not isinstance(text, str):
        return None
    try:
        return parse_timestamp(text)
    except ProtocolError:
        return None


def _lists(reply: ApiReply, device: _Device, sent: _Sent) -> bool:
    """Whether a ListDeviceEvents page holds the click: its reportedTime, to the
    millisecond; for a payload without one, any event between click and PUBACK."""
    if not 200 <= reply.status < 300 or not isinstance(reply.body, dict):
        return False
    times = [t for t in map(_reported_time, reply.body.get("events") or ()) if t is not None]
    if device.carries_time:
        return _ms(sent.reported_at) in {round(t * 1000) for t in times}
    assert sent.acked_at is not None
    low, high = sent.reported_at - VISIBLE_WINDOW_S, sent.acked_at + VISIBLE_WINDOW_S
    return any(low <= t <= high for t in times)


def _tally(device: _Device, times: list[float]) -> dict[str, int]:
    """Per device: acknowledged clicks not listed (lost), listings beyond them (duplicates).

    An event of a click that was sent but never acknowledged may or may not be
    listed (the PUBACK, not the click, may be what went missing): it is neither.
    """
    acked = sum(s.acked_at is not None for s in device.sent)
    late = 0
    if device.carries_time:
        keys = {round(t * 1000) for t in times}
        late = sum(_ms(s.reported_at) in keys for s in device.sent if s.acked_at is None)
    counted = len(times) - late
    return {"lost": max(0, acked - counted), "duplicates": max(0, counted - acked)}


def _missing(device: _Device, times: list[float]) -> list[int]:
    """The seqs of acknowledged clicks not listed (by reportedTime where the payload
    carries one; otherwise the latest acknowledged, as the likeliest)."""
    acked = [s for s in device.sent if s.acked_at is not None]
    if not device.carries_time:
        return [s.seq for s in reversed(acked)]
    keys = collections.Counter(round(t * 1000) for t in times)
    missing = []
    for sent in acked:
        key = _ms(sent.reported_at)
        if keys[key]:
            keys[key] -= 1
        else:
            missing.append(sent.seq)
    return missing
