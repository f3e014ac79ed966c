"""``python -m simulator.cli``: the same as the ``clicksim`` command."""

from simulator.cli import main

main(prog_name="clicksim")
