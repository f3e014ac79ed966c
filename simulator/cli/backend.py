"""``clicksim backend``: run the reference backend of the Devices API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

from simulator.cli.app import CA_DIR_OPTION, InputError

if TYPE_CHECKING:  # the backend's imports are heavy: load them when the command runs
    from simulator.backend.server import ReferenceBackend


@click.group("backend")
def group() -> None:
    """The reference backend: the whole Devices API, SQLite, MQTT ingest."""


@group.command("serve")
@CA_DIR_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="HTTP API port."
)
@click.option(
    "--mqtt-port",
    type=click.IntRange(0, 65535),
    default=8883,
    show_default=True,
    help="Port of the embedded MQTT broker (mutual TLS).",
)
@click.option(
    "--broker",
    "broker_url",
    help="Consume clicks from this broker (mqtts://HOST:PORT, as the backend identity of "
    "--ca-dir) instead of running the embedded one.",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default="clicksim.db",
    show_default=True,
    help="The SQLite database (made if missing).",
)
@click.option(
    "--fleet",
    "fleets",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A fleet manifest to add to the inventory (repeatable).",
)
@click.option(
    "--account",
    "account_specs",
    multiple=True,
    metavar="ID:ACCESS_KEY:SECRET",
    help="An account that may call the API (repeatable). None: one development account.",
)
@click.option(
    "--admin-token",
    envvar="CLICKSIM_ADMIN_TOKEN",
    help="Bearer token of the admin endpoint (/_clicksim/). Default: a random one, shown at "
    "start. Env: CLICKSIM_ADMIN_TOKEN.",
)
@click.option("--region", default="us-east-1", show_default=True, help="Region of the ARNs.")
def serve(
    ca_dir: str,
    host: str,
    port: int,
    mqtt_port: int,
    broker_url: str | None,
    db: Path,
    fleets: tuple[Path, ...],
    account_specs: tuple[str, ...],
    admin_token: str | None,
    region: str,
) -> None:
    """Serve the Devices API over HTTP and ingest clicks over MQTT until Ctrl-C."""
    from simulator.backend.accounts import AccountError, Accounts, parse_account
    from simulator.backend.server import BackendConfig, BackendError, ReferenceBackend
    from simulator.runtime.connection import parse_broker_url

    try:
        accounts = [parse_account(spec) for spec in account_specs]
        Accounts(accounts)  # refuses a repeated key or id before anything starts
    except AccountError as exc:
        raise InputError(str(exc)) from None
    if broker_url is not None:
        parse_broker_url(broker_url)
    ca = Path(ca_dir)
    if not (ca / "ca.crt").is_file():
        raise InputError(f"{ca}: no CA here (no ca.crt); run 'clicksim ca init --dir {ca}' first")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = BackendConfig(
        ca_dir=ca,
        db=db,
        host=host,
        port=port,
        mqtt_port=mqtt_port,
        broker_url=broker_url,
        fleets=fleets,
        accounts=accounts,
        admin_token=admin_token,
        region=region,
    )

    async def run() -> None:
        async with ReferenceBackend(config) as backend:
            _announce(backend, developer=not accounts, token_given=admin_token is not None)
            await asyncio.Event().wait()

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
    except (BackendError, OSError) as exc:
        raise InputError(f"backend serve: {exc}") from None


def _announce(backend: ReferenceBackend, *, developer: bool, token_given: bool) -> None:
    click.echo(f"Devices API   {backend.api_url}  (OpenAPI: {backend.api_url}/openapi.json)")
    click.echo(f"MQTT ingest   {backend.mqtt_url}")
    click.echo(f"database      {backend.config.db}  ({backend.store.count_devices()} devices)")
    for account in backend.accounts.all.values():
        click.echo(f"account       {account.account_id}  key {account.credentials.access_key}")
    if developer:
        (account,) = backend.accounts.all.values()
        click.echo("development account credentials (this database's own):")
        click.echo(f"  export AWS_ACCESS_KEY_ID={account.credentials.access_key}")
        click.echo(f"  export AWS_SECRET_ACCESS_KEY={account.credentials.secret_key}")
        click.echo(f"  export AWS_DEFAULT_REGION={backend.config.region}")
    if not token_given:
        click.echo(f"admin token   {backend.admin_token}")
