"""What every command group shares: the input errors and how they end a command."""

from __future__ import annotations

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
