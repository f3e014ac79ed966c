"""``clicksim conformance``: check by check, where a backend departs from the Devices API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from secrets import token_hex
from typing import TYPE_CHECKING

import click

from simulator.cli.app import (
    InputError,
    check_output,
    check_target_options,
    report_options,
    target_options,
)
from simulator.cli.run import EXIT_FAILED, EXIT_UNUSABLE, profile_pair
from simulator.workspace import DEFAULT_CA_DIR

if TYPE_CHECKING:  # the runner's imports are heavy: load them when the command runs
    from simulator.conformance.catalogue import Check
    from simulator.conformance.runner import ConformanceResult

DEFAULT_SEED = "conformance"


@click.command("conformance")
@click.option("--list", "list_only", is_flag=True, help="List the checks (with --only, --kind).")
@click.option(
    "--show",
    metavar="ID",
    help="Print a check's scenario (YAML), to read it or to run it alone with 'clicksim run'.",
)
@click.option(
    "--only",
    multiple=True,
    metavar="GLOB",
    help="Run the checks whose id matches (repeatable), e.g. 'claims/*' or '*/finalize-*'.",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(["model", "reference"]),
    help="Only checks of this kind (repeatable): 'model' (the AWS service model says so) or "
    "'reference' (clicksim's reference semantics, where the model is silent).",
)
@target_options(
    fleet="the checks' fleets",
    account_help="With --api: the AWS profile an account signs with (repeatable). 'owner' "
    "defaults to the usual AWS credential chain; checks that need 'rival' are skipped "
    "without it.",
)
@click.option(
    "--seed",
    help="Seed of the fleets (and the embedded backend's accounts). Default: 'conformance' "
    "for the embedded backend; with --api, a new one per run (shown in the report), "
    "since a backend that keeps its state already holds the devices of an earlier run.",
)
@report_options("check")
def command(
    list_only: bool,
    show: str | None,
    only: tuple[str, ...],
    kinds: tuple[str, ...],
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
    """Run the conformance suite against a backend, check by check.

    Without --api, against the embedded reference backend. Exit status: 0 every check
    passed (or was skipped), 1 a check failed, 2 bad input or the backend unreachable.
    """
    from simulator.conformance.catalogue import CatalogueError, load_catalogue, select

    check_target_options(
        api_url,
        broker_url,
        region=region,
        provision_cmd=provision_cmd,
        account_profiles=account_profiles,
    )
    profiles = dict(profile_pair(pair) for pair in account_profiles)
    try:
        checks = select(load_catalogue(), only=only, kinds=kinds)
    except CatalogueError as exc:
        raise InputError(str(exc)) from None
    if show is not None:
        found = [check for check in checks if check.id == show]
        if not found:
            raise InputError(f"--show {show!r}: no such check (see 'clicksim conformance --list')")
        click.echo(found[0].text, nl=not found[0].text.endswith("\n"))
        return
    if list_only:
        for check in checks:
            click.echo(f"{check.id:<52} {check.kind:<9} {check.description}")
        return
    if not checks:
        raise InputError("no check is selected: see 'clicksim conformance --list'")
    check_output(junit_xml, "--junit-xml")
    check_output(json_path, "--json")
    result = asyncio.run(
        _run(
            checks,
            api_url=api_url,
            broker_url=broker_url,
            ca_dir=(ca_dir or DEFAULT_CA_DIR) if api_url else None,
            profiles=profiles,
            region=region,
            provision_cmd=provision_cmd,
            seed=seed or (DEFAULT_SEED if api_url is None else f"{DEFAULT_SEED}-{token_hex(4)}"),
        )
    )
    from simulator.conformance.report import render_table, write_json, write_junit_xml
    from simulator.scenario.report import Outcome

    click.echo(render_table(result, color=sys.stdout.isatty() and "NO_COLOR" not in os.environ))
    if junit_xml is not None:
        write_junit_xml(result, junit_xml)
    if json_path is not None:
        write_json(result, json_path)
    if result.count(Outcome.ERROR):
        sys.exit(EXIT_UNUSABLE)
    if result.count(Outcome.FAILED):
        sys.exit(EXIT_FAILED)


async def _run(
    checks: Sequence[Check],
    *,
    api_url: str | None,
    broker_url: str | None,
    ca_dir: Path | None,
    profiles: dict[str, str],
    region: str | None,
    provision_cmd: str | None,
    seed: str,
) -> ConformanceResult:
    from simulator.backend.server import BackendError
    from simulator.conformance.runner import ConformanceRunner, account_names, prepare_fleets
    from simulator.device.identity import KeyType
    from simulator.scenario.report import Progress
    from simulator.scenario.target import (
        ScenarioClock,
        TargetError,
        embedded_target,
        external_target,
        provision,
    )
    from simulator.workspace import CaFolder, init_ca

    names = account_names(checks)
    with tempfile.TemporaryDirectory(prefix="clicksim-conformance-") as folder:
        root = Path(folder)
        clock = ScenarioClock()
        async with contextlib.AsyncExitStack() as stack:
            try:
                if api_url is None:
                    ca_folder = init_ca(root / "certs", seed=f"{seed}/ca", key_type=KeyType.EC)
                    workspaces = prepare_fleets(
                        checks, seed=seed, root=root / "fleets", ca_folder=ca_folder
                    )
                    target = await stack.enter_async_context(
                        embedded_target(
                            ca_folder=ca_folder,
                            manifests=[w.manifest for w in workspaces.values()],
                            account_names=names,
                            seed=seed,
                            clock=clock,
                            db=root / "backend.db",
                        )
                    )
                else:
                    assert broker_url is not None
                    assert ca_dir is not None
                    target = external_target(
                        names,
                        api_url=api_url,
                        broker_url=broker_url,
                        profiles=profiles,
                        region=region,
                        env=os.environ,
                        every_account=False,
                    )
                    ca_folder = CaFolder(path=ca_dir)
                    workspaces = prepare_fleets(
                        checks, seed=seed, root=root / "fleets", ca_folder=ca_folder
                    )
                    if provision_cmd is not None:
                        for workspace in workspaces.values():
                            provision(
                                provision_cmd,
                                workspace.manifest,
                                ca_dir=ca_folder.path,
                                env=os.environ,
                            )
            except (TargetError, BackendError) as exc:
                raise InputError(f"conformance: {exc}") from None
            runner = ConformanceRunner(
                checks,
                workspaces,
                target,
                seed=seed,
                clock=clock,
                progress=Progress(stream=sys.stderr),
            )
            return await runner.run()
