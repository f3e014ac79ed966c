"""The ``clicksim`` command: one module per command group (hatch style).

Every failure caused by the user's input (a flag, a profile, a fleet file, a
folder) ends as one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

from typing import Any

import click

from simulator import __version__
from simulator.cli import backend, broker, ca, click_, conformance, fleet, load, profiles, run
from simulator.cli.app import INPUT_ERRORS, InputError


class _Root(click.Group):
    """Turns input errors, the domain's and click's own, into one-line failures."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _one_line(exc) from None
        except INPUT_ERRORS as exc:
            raise InputError(str(exc)) from None


def _one_line(exc: click.UsageError) -> InputError:
    """Click's usage block, folded into the one line a script's log can show."""
    command = exc.ctx.command_path if exc.ctx is not None else "clicksim"
    return InputError(f"{command}: {exc.format_message()} (see '{command} --help')")


@click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="clicksim")
def main() -> None:
    """A test bench for backends of the AWS IoT 1-Click Devices API."""


main.add_command(backend.group)
main.add_command(broker.group)
main.add_command(ca.group)
main.add_command(click_.command)
main.add_command(conformance.command)
main.add_command(fleet.group)
main.add_command(load.command)
main.add_command(profiles.group)
main.add_command(run.command)
