"""``clicksim run``: scripted scenarios against the reference backend or any other."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from simulator.cli.app import (
    InputError,
    check_output,
    check_target_options,
    report_options,
    target_options,
)
from simulator.resources import bundled_dir
from simulator.workspace import DEFAULT_CA_DIR

if TYPE_CHECKING:  # the runner's imports are heavy: load them when the command runs
    from simulator.scenario.model import Scenario
    from simulator.scenario.report import ScenarioResult

EXIT_FAILED = 1
EXIT_UNUSABLE = 2


def scenario_names() -> list[str]:
    return sorted(path.stem for path in bundled_dir("scenarios").glob("*.yaml"))


def scenario_path(reference: str) -> Path:
    """A file path as given, else the bundled scenario of that name."""
    given = Path(reference)
    if given.suffix in (".yaml", ".yml") or given.exists():
        if not given.is_file():
            raise InputError(f"{reference}: no such scenario file")
        return given
    bundled = bundled_dir("scenarios") / f"{reference}.yaml"
    if not bundled.is_file():
        raise InputError(
            f"unknown scenario {reference!r}: see 'clicksim run --list', or give a .yaml path"
        )
    return bundled


@click.command("run")
@click.argument("scenarios", nargs=-1)
@click.option("--list", "list_only", is_flag=True, help="List the bundled scenarios and exit.")
@click.option("--all", "run_all", is_flag=True, help="Run every bundled scenario.")
@target_options(
    fleet="the scenario's fleet",
    account_help="With --api: the AWS profile a scenario account signs with (repeatable). The "
    "first account defaults to the usual AWS credential chain.",
)
@click.option("--seed", help="Seed of the fleet and accounts (default: the scenario's).")
@report_options("step")
def command(
    scenarios: tuple[str, ...],
    list_only: bool,
    run_all: bool,
    api_url: str | None,
    broker_url: str | None,
    ca_dir: Path | None,
    account_profiles: tuple[str, ...],
    region: str | None,
    provision_cmd: str | None,
    seed: str | None,
    junit_xml: Path | None,
    json_path: Path | None,
) -> None:
    """Run SCENARIOS (bundled names or .yaml files) and report step by step.

    Exit status: 0 all passed, 1 a check failed, 2 bad input or the backend unreachable.
    """
    from simulator.scenario.loader import ScenarioError, load_scenario

    if list_only:
        _list()
        return
    if run_all:
        scenarios = (*scenarios, *scenario_names())
    if not scenarios:
        raise click.UsageError("name a scenario (see --list), or give --all")
    check_target_options(
        api_url,
        broker_url,
        region=region,
        provision_cmd=provision_cmd,
        account_profiles=account_profiles,
    )
    profiles = dict(profile_pair(pair) for pair in account_profiles)
    check_output(junit_xml, "--junit-xml")
    check_output(json_path, "--json")
    try:
        loaded = [load_scenario(scenario_path(reference)) for reference in scenarios]
    except ScenarioError as exc:
        raise InputError(str(exc)) from None
    results = asyncio.run(
        _run_all(
            loaded,
            api_url=api_url,
            broker_url=broker_url,
            ca_dir=(ca_dir or DEFAULT_CA_DIR) if api_url else None,
            profiles=profiles,
            region=region,
            provision_cmd=provision_cmd,
            seed=seed,
        )
    )
    from simulator.scenario.report import Outcome, write_json, write_junit_xml

    if junit_xml is not None:
        write_junit_xml(results, junit_xml)
    if json_path is not None:
        write_json(results, json_path)
    outcomes = {step.outcome for result in results for step in result.steps}
    if Outcome.ERROR in outcomes:
        sys.exit(EXIT_UNUSABLE)
    if Outcome.FAILED in outcomes:
        sys.exit(EXIT_FAILED)


def _list() -> None:
    from simulator.scenario.loader import load_scenario

    for name in scenario_names():
        scenario = load_scenario(bundled_dir("scenarios") / f"{name}.yaml")
        summary = scenario.description.strip().splitlines()[0] if scenario.description else ""
        click.echo(f"{name:<34} {summary}")


def profile_pair(text: str) -> tuple[str, str]:
    name, sep, profile = text.partition("=")
    if not sep or not name or not profile:
        raise click.UsageError(f"--account {text!r}: expected NAME=PROFILE")
    return name, profile


async def _run_all(scenarios: list[Scenario], **options: Any) -> list[ScenarioResult]:
    return [await _run_one(scenario, **options) for scenario in scenarios]


async def _run_one(
    scenario: Scenario,
    *,
    api_url: str | None,
    broker_url: str | None,
    ca_dir: Path | None,
    profiles: dict[str, str],
    region: str | None,
    provision_cmd: str | None,
    seed: str | None,
) -> ScenarioResult:
    from simulator.backend.server import BackendError
    from simulator.scenario.report import Progress, render_table
    from simulator.scenario.runner import Runner, WebhookInbox
    from simulator.scenario.target import (
        ScenarioClock,
        TargetError,
        embedded_target,
        external_target,
        prepare_workspace,
        provision,
    )

    run_seed = seed or scenario.fleet.seed or scenario.name
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    with tempfile.TemporaryDirectory(prefix="clicksim-run-") as folder:
        root = Path(folder)
        workspace = prepare_workspace(scenario, seed=run_seed, root=root, ca_dir=ca_dir)
        clock = ScenarioClock()
        async with contextlib.AsyncExitStack() as stack:
            webhook = None
            if scenario.webhook:
                webhook = await stack.enter_async_context(WebhookInbox().serving())
            try:
                if api_url is None:
                    target = await stack.enter_async_context(
                        embedded_target(
                            ca_folder=workspace.ca_folder,
                            manifests=[workspace.manifest],
                            account_names=scenario.accounts,
                            seed=run_seed,
                            clock=clock,
                            db=root / "backend.db",
                        )
                    )
                else:
                    assert broker_url is not None
                    target = external_target(
                        scenario.accounts,
                        api_url=api_url,
                        broker_url=broker_url,
                        profiles=profiles,
                        region=region,
                        env=os.environ,
                    )
                    if provision_cmd is not None:
                        provision(
                            provision_cmd,
                            workspace.manifest,
                            ca_dir=workspace.ca_folder.path,
                            env=os.environ,
                        )
            except (TargetError, BackendError) as exc:
                raise InputError(f"{scenario.name}: {exc}") from None
            runner = Runner(
                scenario,
                target,
                workspace,
                seed=run_seed,
                clock=clock,
                progress=Progress(stream=sys.stderr),
                webhook=webhook,
            )
            result = await runner.run()
    click.echo(render_table(result, color=color))
    return result
