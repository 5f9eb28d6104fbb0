"""The SimPy simulation engine (see docs/architecture.md, the engine layer)."""

from sim.engine.costs import CostProfile, calibrate, load_profile
from sim.engine.replication import ProgressInfo, Tracer
from sim.engine.run import simulate
from sim.engine.scenario import Scenario, apply_overrides, load_scenario
from sim.engine.summary import SimulationResult

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
