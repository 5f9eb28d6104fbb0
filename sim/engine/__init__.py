"""The SimPy simulation engine (see docs/architecture.md, the engine layer).

The names below are imported when first used, so that loading a scenario
(``sim.engine.scenario``) does not load SimPy, NumPy and the protocol engines."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

#: exported name -> the module defining it
_EXPORTS = {
    "CostProfile": "sim.engine.costs",
    "calibrate": "sim.engine.calibration",
    "load_profile": "sim.engine.costs",
    "ProgressInfo": "sim.engine.replication",
    "Tracer": "sim.engine.replication",
    "simulate": "sim.engine.run",
    "Scenario": "sim.engine.scenario",
    "apply_overrides": "sim.engine.scenario",
    "load_scenario": "sim.engine.scenario",
    "SimulationResult": "sim.engine.summary",
}

if TYPE_CHECKING:
    from sim.engine.calibration import calibrate
    from sim.engine.costs import CostProfile, load_profile
    from sim.engine.replication import ProgressInfo, Tracer
    from sim.engine.run import simulate
    from sim.engine.scenario import Scenario, apply_overrides, load_scenario
    from sim.engine.summary import SimulationResult


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sim.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CostProfile",
    "ProgressInfo",
    "Scenario",
    "SimulationResult",
    "Tracer",
    "apply_overrides",
    "calibrate",
    "load_profile",
    "load_scenario",
    "simulate",
]
