"""``clicksim ca``: the certificate authority that signs every device."""

from __future__ import annotations

from pathlib import Path

import click

from simulator.device.identity import KeyType
from simulator.workspace import init_ca, new_seed


@click.group("ca")
def group() -> None:
    """The CA that signs device, broker and backend identities."""


@group.command("init")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default="certs",
    show_default=True,
    envvar="CLICKSIM_CA_DIR",
    help="Where to write the CA. Env: CLICKSIM_CA_DIR.",
)
@click.option(
    "--key-type",
    type=click.Choice([k.value for k in KeyType]),
    default=KeyType.EC.value,
    show_default=True,
    help="ec: ECDSA P-256; rsa: RSA 2048 (slower).",
)
@click.option("--seed", help="Derive every key from this text, to replay a run.")
@click.option("--force", is_flag=True, help="Replace a CA that is already there.")
def init(directory: Path, key_type: str, seed: str | None, force: bool) -> None:
    """Create a CA, a broker server identity and the backend client identity."""
    seed = seed if seed is not None else new_seed()
    folder = init_ca(directory, seed=seed, key_type=KeyType(key_type), replace=force)
    click.echo(f"CA ({key_type}) written to {folder.path}/ (seed {seed})")
    click.echo("  ca.crt, ca.key            signs every device")
    click.echo("  server.crt, server.key    for brokers: localhost, 127.0.0.1, ::1")
    click.echo("  backend.crt, backend.key  the backend's client identity (clicksim-backend)")
