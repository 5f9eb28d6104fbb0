"""``python -m sim.cli``."""

from sim.cli import entry

entry()
