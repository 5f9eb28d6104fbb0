"""Sans-I/O protocol engines, one set per session strategy (see :mod:`sim.protocol.api`)."""

from sim.protocol.api import STRATEGY_NAMES
from sim.protocol.registry import Strategy, build_strategy

__all__ = ["STRATEGY_NAMES", "Strategy", "build_strategy"]
