"""``clicksim fleet``: batches of virtual buttons with their own identities."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import click

from simulator.cli.app import BROKER_OPTION, CA_DIR_OPTION, FLEET_OPTION
from simulator.resources import is_bundled, load_profile, profile_path
from simulator.runtime.connection import parse_broker_url
from simulator.runtime.fleet import Fleet
from simulator.runtime.swarm import Progress, run_fleet
from simulator.workspace import CaFolder, create_fleet, new_seed


@click.group("fleet")
def group() -> None:
    """Create fleets of virtual buttons, and run them."""


@group.command("create")
@click.option("--profile", "profile_ref", required=True, help="A profile name or .toml path.")
@click.option("--count", required=True, type=int, help="How many devices (1..1,000,000).")
@click.option("--seed", help="Derive ids, keys and the claim code from this text.")
@click.option("--claim-code", help="The batch's claim code: C- and 10..38 letters or digits.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default="certs/fleet.json",
    show_default=True,
    help="The manifest to write; identities go in a folder of the same name.",
)
@CA_DIR_OPTION
def create(
    profile_ref: str,
    count: int,
    seed: str | None,
    claim_code: str | None,
    out: Path,
    ca_dir: str,
) -> None:
    """Create COUNT devices of a profile, each with a certificate signed by the CA."""
    profile = load_profile(profile_ref)
    source = profile_path(profile_ref)
    seed = seed if seed is not None else new_seed()
    manifest = create_fleet(
        profile,
        ca_folder=CaFolder(path=Path(ca_dir)),
        count=count,
        seed=seed,
        claim_code=claim_code,
        out=out,
        profile_file=None if is_bundled(source) else source,
    )
    first = manifest.devices[0].device_id
    click.echo(
        f"{count} {profile.name} device(s) written to {out} (identities in {out.with_suffix('')}/)"
    )
    click.echo(f"  seed {seed}   claim code {manifest.claim_code}   first device {first}")


@group.command("run")
@FLEET_OPTION
@BROKER_OPTION
@click.option(
    "--duration",
    type=click.FloatRange(min=0.1, max=7 * 86_400),
    default=30.0,
    show_default=True,
    help="Seconds of pressing; then every click is let out before the summary.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0.001, max=100_000),
    help="Clicks per second over the whole fleet (default: each profile's habits).",
)
@click.option("--seed", help="Replay the same presses and backoff.")
def run(
    fleet_path: Path, broker: str, duration: float, rate: float | None, seed: str | None
) -> None:
    """Every device presses at random, per its profile's habits, with live progress.

    Exit status 1 when a click was dropped or still undelivered at the end.
    """
    address = parse_broker_url(broker)
    fleet = Fleet.open(fleet_path)
    seed = seed if seed is not None else new_seed()
    live = sys.stdout.isatty()
    last_print = [0.0]

    def show(progress: Progress) -> None:
        if live:
            click.echo(f"\r{progress.line()}", nl=False)
        elif time.monotonic() - last_print[0] >= 5:
            last_print[0] = time.monotonic()
            click.echo(progress.line())

    click.echo(f"{len(fleet.devices)} device(s) on {address} for {duration:g} s (seed {seed})")
    final = asyncio.run(
        run_fleet(fleet, broker=address, duration=duration, rate=rate, seed=seed, on_progress=show)
    )
    if live:
        click.echo()
    click.echo(f"summary: {final.line()}")
    click.echo(f"progress (seq, battery) saved to {fleet_path}")
    if final.dropped or final.queued or final.acknowledged < final.clicks:
        raise SystemExit(1)
