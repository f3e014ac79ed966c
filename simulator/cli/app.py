"""What every command group shares: the input errors and how they end a command."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import click

from simulator.device.fleet import FleetError
from simulator.device.gestures import GestureError
from simulator.device.identity import IdentityError
from simulator.device.profile import ProfileError
from simulator.protocol import ProtocolError
from simulator.runtime.connection import BrokerUrlError
from simulator.workspace import WorkspaceError

INPUT_ERRORS: Final = (
    BrokerUrlError,
    FleetError,
    GestureError,
    IdentityError,
    ProfileError,
    ProtocolError,
    WorkspaceError,
)
"""Errors that mean the user's input is wrong: exit 2 with the message, no traceback."""


class InputError(click.ClickException):
    exit_code = 2


CA_DIR_OPTION: Final = click.option(
    "--ca-dir",
    type=click.Path(file_okay=False, path_type=str),
    default="certs",
    show_default=True,
    envvar="CLICKSIM_CA_DIR",
    help="The CA folder (made by 'clicksim ca init'). Env: CLICKSIM_CA_DIR.",
)

FLEET_OPTION: Final = click.option(
    "--fleet",
    "fleet_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="certs/fleet.json",
    show_default=True,
    help="The fleet manifest (made by 'clicksim fleet create').",
)

BROKER_OPTION: Final = click.option(
    "--broker",
    required=True,
    envvar="CLICKSIM_BROKER",
    help="mqtts://HOST:PORT (device certificates) or mqtt://USER:PASS@HOST:PORT. "
    "Env: CLICKSIM_BROKER.",
)


def target_options(
    *, fleet: str, account_help: str | None = None
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """--api, --broker, --ca-dir, [--account], --region and --provision-cmd: where the
    commands that drive a backend (run, conformance, load) point, and how they sign.

    ``fleet`` says whose fleets the CA signs and the command provisions ("the
    scenario's fleet"); without ``account_help`` there is no --account.
    """
    options = [
        click.option(
            "--api", "api_url", help="A backend's Devices API endpoint (default: embedded)."
        ),
        click.option("--broker", "broker_url", help="The broker its devices use (with --api)."),
        click.option(
            "--ca-dir",
            type=click.Path(file_okay=False, path_type=Path),
            envvar="CLICKSIM_CA_DIR",
            help=f"With --api: the CA the broker trusts, which signs {fleet}. "
            "Env: CLICKSIM_CA_DIR.",
        ),
        click.option(
            "--region", help="With --api: the signing region (default: from the AWS config)."
        ),
        click.option(
            "--provision-cmd",
            help=f"With --api: a command that adds {fleet} to the backend's inventory; it is "
            "run with a fleet manifest's path as its last argument (once per manifest).",
        ),
    ]
    if account_help is not None:
        options.insert(
            3,
            click.option(
                "--account",
                "account_profiles",
                multiple=True,
                metavar="NAME=PROFILE",
                help=account_help,
            ),
        )

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def report_options(case: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """--junit-xml (one test case per ``case``) and --json: the reports of run and conformance."""
    junit = click.option(
        "--junit-xml",
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"Write a JUnit XML report (one test case per {case}).",
    )
    json = click.option(
        "--json",
        "json_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write a JSON report.",
    )

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        return junit(json(command))

    return decorate


def check_target_options(
    api_url: str | None,
    broker_url: str | None,
    *,
    region: str | None,
    provision_cmd: str | None,
    account_profiles: Sequence[str] | None = None,
) -> None:
    """Refuse what only makes sense against --api when there is none.

    ``account_profiles`` is None for a command without --account. CLICKSIM_CA_DIR, set
    for every command, must not make an embedded run fail: only a --ca-dir flag counts.
    """
    if (api_url is None) != (broker_url is None):
        raise click.UsageError("--api and --broker go together")
    ca_dir_given = click.get_current_context().get_parameter_source("ca_dir") is (
        click.core.ParameterSource.COMMANDLINE
    )
    if api_url is None and (account_profiles or provision_cmd or ca_dir_given or region):
        names = [] if account_profiles is None else ["--account"]
        raise click.UsageError(
            ", ".join([*names, "--ca-dir", "--region"]) + " and --provision-cmd need --api"
        )


def check_output(path: Path | None, option: str, *, folder: bool = False) -> None:
    """Make sure a report can be written there before the run, not after it.

    Makes the folder (``folder``) or the file's parent, and refuses one that cannot be
    made or written to, in one line naming the option.
    """
    if path is None:
        return
    where = path if folder else path.parent
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"{option} {path}: cannot make the folder {where}: {exc.strerror}"
        ) from None
    if not os.access(where, os.W_OK):
        raise InputError(f"{option} {path}: the folder {where} is not writable")
