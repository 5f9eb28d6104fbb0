"""The SimPy simulation engine (see DESIGN.md, "Time and cost")."""

from sim.engine.costs import CostProfile, calibrate, load_profile
from sim.engine.run import ProgressInfo, SimulationResult, Tracer, simulate
from sim.engine.scenario import Scenario, apply_overrides, load_scenario

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
