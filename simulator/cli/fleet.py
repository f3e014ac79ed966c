"""``clicksim fleet``: batches of virtual buttons with their own identities."""

from __future__ import annotations

from pathlib import Path

import click

from simulator.cli.app import CA_DIR_OPTION
from simulator.resources import load_profile
from simulator.workspace import CaFolder, create_fleet, new_seed


@click.group("fleet")
def group() -> None:
    """Create fleets of virtual buttons."""


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
    seed = seed if seed is not None else new_seed()
    manifest = create_fleet(
        profile,
        ca_folder=CaFolder(path=Path(ca_dir)),
        count=count,
        seed=seed,
        claim_code=claim_code,
        out=out,
    )
    first = manifest.devices[0].device_id
    click.echo(
        f"{count} {profile.name} device(s) written to {out} (identities in {out.with_suffix('')}/)"
    )
    click.echo(f"  seed {seed}   claim code {manifest.claim_code}   first device {first}")
