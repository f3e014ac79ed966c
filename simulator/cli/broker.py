"""``clicksim broker``: the embedded broker, and configurations for real ones."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from pathlib import Path

import click

from simulator.broker.mosquitto import write_mosquitto_config
from simulator.cli.app import CA_DIR_OPTION


@click.group("broker")
def group() -> None:
    """Brokers that authenticate devices by certificate."""


@group.command("mosquitto-config")
@CA_DIR_OPTION
@click.option("--port", type=click.IntRange(1, 65535), default=8883, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default="mosquitto",
    show_default=True,
    help="Folder for mosquitto.conf and mosquitto.acl.",
)
@click.option("--user", help="User mosquitto drops to when started as root; it must read the keys.")
def mosquitto_config(ca_dir: str, port: int, host: str, out: Path, user: str | None) -> None:
    """Write a mosquitto config: mutual TLS, CN as username, per-device ACL."""
    folder = Path(ca_dir)
    for name in ("ca.crt", "server.crt", "server.key"):
        if not (folder / name).is_file():
            raise click.UsageError(f"{folder / name} is missing: run 'clicksim ca init' first")
    files = write_mosquitto_config(ca_dir=folder, out_dir=out, host=host, port=port, user=user)
    click.echo(f"wrote {files.config} and {files.acl}")
    click.echo(f"run: mosquitto -c {files.config}")


DEFAULT_PORT = 8883


@group.command("serve")
@CA_DIR_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help=f"Port to listen on; by default {DEFAULT_PORT}, or a free one if that is taken.",
)
def serve(ca_dir: str, host: str, port: int | None) -> None:
    """Run the embedded broker (amqtt): mutual TLS, CN = client id, per-device ACL."""
    from simulator.broker.embedded import EmbeddedBroker, EmbeddedBrokerError  # amqtt is slow

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    if port is None:
        port = DEFAULT_PORT if _is_free(host, DEFAULT_PORT) else 0
        if port == 0:
            click.echo(f"port {DEFAULT_PORT} is taken; taking a free one", err=True)

    async def run() -> None:
        broker = EmbeddedBroker(host=host, port=port, ca_dir=Path(ca_dir))
        try:
            await broker.start()
        except EmbeddedBrokerError as exc:
            raise click.UsageError(str(exc)) from None
        click.echo(f"embedded broker on mqtts://{host}:{broker.port} (CA in {ca_dir}/)")
        try:
            await asyncio.Event().wait()
        finally:
            await broker.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


def _is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True
