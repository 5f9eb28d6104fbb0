"""Sans-I/O protocol engines, one set per session strategy (see :mod:`sim.protocol.api`)."""

from sim.protocol.api import STRATEGY_NAMES

__all__ = ["STRATEGY_NAMES", "Strategy", "build_strategy"]


def __getattr__(name: str):
    # the registry loads every strategy (lxml, cryptography): only when asked for, so that
    # sim.protocol.api's names cost nothing (``wssim --help``, a scenario's validation)
    if name in ("Strategy", "build_strategy"):
        from sim.protocol import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'sim.protocol' has no attribute {name!r}")
