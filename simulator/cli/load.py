"""``clicksim load``: find where a backend breaks, stage by stage, with the figures."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from secrets import token_hex
from typing import TYPE_CHECKING

import click

from simulator.cli.app import InputError, check_output, check_target_options, target_options
from simulator.cli.run import EXIT_FAILED
from simulator.workspace import DEFAULT_CA_DIR

if TYPE_CHECKING:  # the runner's imports are heavy: load them when the command runs
    from simulator.load.plan import LoadPlan
    from simulator.load.runner import LoadResult

DEFAULT_SEED = "load"


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from simulator.scenario.model import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a duration such as 500ms, 15s or 2m") from None
    if seconds <= 0:
        raise click.BadParameter(f"{value!r}: must be longer than 0")
    return seconds


def _ratio(ctx: click.Context, param: click.Parameter, value: str) -> float:
    text = value.strip()
    try:
        ratio = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a share such as 1% or 0.01") from None
    if not 0 <= ratio <= 1:
        raise click.BadParameter(f"{value!r}: must be between 0% and 100%")
    return ratio


@click.command("load")
@click.option(
    "--devices",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Fleet size; a device clicks at most once at a time.",
)
@click.option(
    "--profile",
    default="aws-iot-enterprise-button",
    show_default=True,
    help="The devices' profile: a bundled name or a .toml file.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Clicks/s of the first stage.",
)
@click.option(
    "--factor",
    type=click.FloatRange(min=1),
    default=1.5,
    show_default=True,
    help="Each stage's rate is the previous one's times this (1: one constant rate).",
)
@click.option(
    "--stages",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="At most this many stages; the run stops after the first that breaks.",
)
@click.option(
    "--stage",
    "stage_seconds",
    callback=_duration,
    default="15s",
    show_default=True,
    help="How long each stage lasts.",
)
@click.option(
    "--api-rate",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="DescribeDevice calls/s beside the clicks, in every stage.",
)
@click.option(
    "--click-p99",
    callback=_duration,
    default="2s",
    show_default=True,
    help="A stage breaks when the p99 from click to broker acknowledgement passes this.",
)
@click.option(
    "--visible-p99",
    callback=_duration,
    default="1s",
    show_default=True,
    help="...or the p99 from acknowledgement to listed in ListDeviceEvents.",
)
@click.option(
    "--api-p99", callback=_duration, default="1s", show_default=True, help="...or the API's p99."
)
@click.option(
    "--max-failures",
    callback=_ratio,
    default="1%",
    show_default=True,
    help="...or this share of clicks (or API calls) fails.",
)
@click.option(
    "--require",
    "required_rate",
    type=click.FloatRange(min=0),
    metavar="RATE",
    help="Exit 1 unless the backend held at least RATE acknowledged clicks/s.",
)
@target_options(fleet="the fleet")
@click.option("--seed", help="Seed of the fleet (default: 'load' embedded, a new one with --api).")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write report.json, stages.csv, report.md and chart.svg into this folder.",
)
def command(
    devices: int,
    profile: str,
    rate: float,
    factor: float,
    stages: int,
    stage_seconds: float,
    api_rate: float,
    click_p99: float,
    visible_p99: float,
    api_p99: float,
    max_failures: float,
    required_rate: float | None,
    api_url: str | None,
    broker_url: str | None,
    ca_dir: Path | None,
    region: str | None,
    provision_cmd: str | None,
    seed: str | None,
    report_dir: Path | None,
) -> None:
    """Load a backend in stages of rising click rates until it breaks, and show where and why.

    Each stage offers clicks at its rate from real devices (wake, TLS connect, publish,
    sleep) and DescribeDevice calls beside them; a stage breaks when a threshold is
    passed. At the end every acknowledged click is looked up in ListDeviceEvents.
    Exit status: 0 done and nothing lost, 1 acknowledged clicks lost (or listed twice)
    or --require not met, 2 bad input or the backend unreachable.
    """
    from simulator.load.plan import LoadPlan, Thresholds
    from simulator.resources import load_profile

    check_target_options(api_url, broker_url, region=region, provision_cmd=provision_cmd)
    load_profile(profile)  # an unknown profile: one line, before anything starts
    check_output(report_dir, "--report", folder=True)
    if rate * stage_seconds < 1:
        raise click.UsageError(
            f"--rate {rate:g} x --stage {stage_seconds:g}s offers no whole click per stage: "
            "raise one of them"
        )
    try:  # what the flags' own types let through, such as inf
        plan = LoadPlan(
            devices=devices,
            profile=profile,
            start_rate=rate,
            factor=factor,
            stages=stages,
            stage_seconds=stage_seconds,
            api_rate=api_rate,
            thresholds=Thresholds(
                click_p99_ms=click_p99 * 1000,
                visible_p99_ms=visible_p99 * 1000,
                api_p99_ms=api_p99 * 1000,
                max_failure_ratio=max_failures,
            ),
        )
    except ValueError as exc:
        raise InputError(f"load: {exc}") from None
    result = asyncio.run(
        _run(
            plan,
            api_url=api_url,
            broker_url=broker_url,
            ca_dir=(ca_dir or DEFAULT_CA_DIR) if api_url else None,
            region=region,
            provision_cmd=provision_cmd,
            seed=seed or (DEFAULT_SEED if api_url is None else f"{DEFAULT_SEED}-{token_hex(4)}"),
        )
    )
    from simulator.load.report import render_table, write_report

    click.echo(render_table(result, color=sys.stdout.isatty() and "NO_COLOR" not in os.environ))
    if report_dir is not None:
        for path in write_report(result, report_dir):
            click.echo(f"wrote {path}", err=True)
    if result.lost or result.duplicates:
        sys.exit(EXIT_FAILED)
    if required_rate is not None and (result.capacity or 0.0) < required_rate:
        click.echo(
            f"--require {required_rate:g}: the backend held {result.capacity or 0.0:.1f} clicks/s",
            err=True,
        )
        sys.exit(EXIT_FAILED)


async def _run(
    plan: LoadPlan,
    *,
    api_url: str | None,
    broker_url: str | None,
    ca_dir: Path | None,
    region: str | None,
    provision_cmd: str | None,
    seed: str,
) -> LoadResult:
    from simulator.api.client import ApiUnreachable
    from simulator.backend.server import BackendError
    from simulator.device.identity import KeyType
    from simulator.load.runner import LoadError, run_load
    from simulator.scenario.target import (
        ScenarioClock,
        TargetError,
        embedded_target,
        external_target,
        make_workspace,
        provision,
    )
    from simulator.workspace import CaFolder, init_ca

    def on_tick(line: str) -> None:
        click.echo(line, err=True)

    with tempfile.TemporaryDirectory(prefix="clicksim-load-") as folder:
        root = Path(folder)
        async with contextlib.AsyncExitStack() as stack:
            try:
                if api_url is None:
                    ca_folder = init_ca(root / "certs", seed=f"{seed}/ca", key_type=KeyType.EC)
                else:
                    assert broker_url is not None
                    assert ca_dir is not None
                    external = external_target(
                        ["owner"],
                        api_url=api_url,
                        broker_url=broker_url,
                        profiles={},
                        region=region,
                        env=os.environ,
                    )
                    ca_folder = CaFolder(path=ca_dir)
                workspace = make_workspace(
                    Path(plan.profile).resolve()
                    if plan.profile.endswith(".toml")
                    else plan.profile,
                    count=plan.devices,
                    seed=seed,
                    claim_code=None,
                    root=root,
                    ca_folder=ca_folder,
                )
                if api_url is None:
                    target = await stack.enter_async_context(
                        embedded_target(
                            ca_folder=ca_folder,
                            manifests=[workspace.manifest],
                            account_names=["owner"],
                            seed=seed,
                            clock=ScenarioClock(),
                            db=root / "backend.db",
                        )
                    )
                else:
                    target = external
                    if provision_cmd is not None:
                        provision(
                            provision_cmd, workspace.manifest, ca_dir=ca_folder.path, env=os.environ
                        )
            except (TargetError, BackendError) as exc:
                raise InputError(f"load: {exc}") from None
            try:
                return await run_load(plan, target, workspace, seed=seed, on_tick=on_tick)
            except (LoadError, ApiUnreachable) as exc:
                raise InputError(f"load: {exc}") from None
