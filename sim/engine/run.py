"""``simulate``: run a scenario, each strategy on the same topology and random streams, and
summarize it in the ``summary.json`` schema (docs/architecture.md).

The pieces: ``replication.py`` runs one replication, ``parallel.py`` decides where the
replications run, ``summary.py`` summarizes and combines them.
"""

from __future__ import annotations

import os
import time

import numpy as np

import sim
from sim.engine.costs import CostProfile, load_profile
from sim.engine.fidelity import Fidelity
from sim.engine.parallel import DaskPool, InProcess, Job, ProcessPool, Progress, Runner
from sim.engine.replication import ProgressInfo, Tracer
from sim.engine.scenario import Run, Scenario
from sim.engine.summary import SimulationResult, combine, half_width
from sim.errors import ScenarioError
from sim.protocol.api import KeyLog
from sim.wire.keys import default_key_dir


def simulate(
    scenario: Scenario,
    *,
    seed: int | None = None,
    fidelity: Fidelity | str | None = None,
    replications: int | None = None,
    progress: Progress | None = None,
    tracer: Tracer | None = None,
    keylog: KeyLog | None = None,
    max_sessions: int | None = None,
    key_dir: str | os.PathLike | None = None,
    strategies: list[str] | None = None,
    workers: int = 1,
    backend: str = "local",
    scheduler: str | None = None,
) -> SimulationResult:
    """Run ``scenario``; arguments given override its ``run`` values. Ctrl-C returns what was
    measured so far, marked partial.

    ``workers`` > 1 runs the strategies' replications in that many processes (not with a
    ``tracer`` or ``keylog``, which stay in this process); the result is the same as with
    one, replication for replication, and ``progress`` then ticks once a replication.
    ``backend="dask"`` runs them on a Dask cluster instead (the one at ``scheduler``, or
    a LocalCluster of ``workers`` processes), with the same result."""
    started = time.perf_counter()
    seed = scenario.run.seed if seed is None else seed
    fidelity = Fidelity.of(fidelity or scenario.run.fidelity)
    replications = replications or scenario.run.replications
    profile = scenario_profile(scenario)
    key_dir = key_dir or default_key_dir()
    if scenario.adversary is not None and fidelity is not Fidelity.FULL:
        raise ScenarioError(
            "adversary",
            'attacks need real messages: set run.fidelity = "full" (or --fidelity full)',
        )
    root = np.random.SeedSequence(seed)
    result = SimulationResult(
        _header(scenario, seed, fidelity, replications, profile), seed_entropy=root.entropy
    )
    names = strategies or scenario.strategies
    if scenario.mixed and set(names) != set(scenario.strategies):
        raise ScenarioError(
            "strategies", "a mixed run runs all its classes' strategies together, not a subset"
        )
    run = scenario.run
    limit = run.max_replications if run.target_ci95_ms is not None else replications
    # Replication i always gets the same stream, however many replications end up running.
    rep_seeds = [np.random.SeedSequence(root.entropy, spawn_key=(i,)) for i in range(limit)]
    # One group per strategy (compared side by side on the same streams), or, in a mixed
    # run, one group holding every strategy on the shared topology. Every (group,
    # replication) is a job, run in this order: strategies compared side by side run side
    # by side too.
    groups = [tuple(names)] if scenario.mixed else [(name,) for name in names]
    jobs = [
        Job(scenario, group, profile, rep_seed, fidelity, max_sessions, key_dir, i)
        for group in groups
        for i, rep_seed in enumerate(rep_seeds)
    ]
    if backend not in ("local", "dask"):
        raise ScenarioError("backend", f'is "local" or "dask"; got {backend!r}')
    runner: Runner
    if backend == "dask":
        if tracer is not None or keylog is not None:
            raise ScenarioError("--backend", "a trace or key log is written here: not on Dask")
        runner = DaskPool(
            jobs,
            scheduler=scheduler,
            workers=workers,
            progress=progress,
            replications=replications,
        )
    elif workers > 1 and tracer is None and keylog is None and len(jobs) > 1:
        runner = ProcessPool(workers, jobs, progress=progress, replications=replications)
    else:
        runner = InProcess(
            jobs, tracer=tracer, keylog=keylog, progress=progress, replications=replications
        )
    try:
        for position, group in enumerate(groups):
            first = position * len(rep_seeds)
            per_rep = _run_group(runner, range(first, first + len(rep_seeds)), group, run, result)
            for name in group:
                result.summary["strategies"][name] = combine([r[name] for r in per_rep])
            result.summary["replications"] = (
                max(result.summary["replications"], len(per_rep))
                if run.target_ci95_ms is None
                else len(per_rep)
            )
    except KeyboardInterrupt:
        result.partial = True
    finally:
        runner.close()
    if scenario.adversary is not None:
        from sim.engine.attacks import security_view  # the adversary's, imported when there is one

        #: the security table: per strategy and attack, what got through
        result.summary["security"] = security_view(result.summary["strategies"])
    result.wall_s = time.perf_counter() - started
    return result


def scenario_profile(scenario: Scenario) -> CostProfile:
    """The scenario's cost profile, with its scale and overrides."""
    return load_profile(scenario.profile.name).with_overrides(
        scenario.profile.scale,
        {op: o.model_dump(exclude_none=True) for op, o in scenario.profile.overrides.items()},
    )


def _header(
    scenario: Scenario, seed: int, fidelity: Fidelity, replications: int, profile: CostProfile
) -> dict:
    """summary.json before any replication ran."""
    summary = {
        "scenario": scenario.name,
        "seed": seed,
        "fidelity": fidelity.value,
        "replications": replications,
        "profile": profile.name,
        "version": sim.__version__,
        "measured_s": scenario.run.duration_s - scenario.run.warmup_s,
        "strategies": {},
        #: what makes the figures describe an overloaded system (see ``overload_warnings``)
        "warnings": [],
    }
    if scenario.mixed:
        summary["mixed"] = True
        summary["classes"] = {
            name: {"strategy": c.strategy, "share": c.share}
            for name, c in sorted(scenario.workload.classes.items())
        }
    return summary


def _run_group(
    runner: Runner, jobs: range, group: tuple[str, ...], run: Run, result: SimulationResult
) -> list[dict[str, dict]]:
    """The summaries of a group's replications, one per job of ``jobs`` until the
    confidence target is met; their rows go into ``result``."""
    per_rep: list[dict[str, dict]] = []
    for k in jobs:
        if _enough(per_rep, group, run):
            break
        outcome = runner.get(k)
        per_rep.append(outcome.summaries)
        result.add(outcome)
    return per_rep


def _enough(per_rep: list[dict[str, dict]], group: tuple[str, ...], run: Run) -> bool:
    """The stopping rule: whether the replications so far meet ``run.target_ci95_ms`` for
    every strategy of the group (three at least)."""
    return (
        run.target_ci95_ms is not None
        and len(per_rep) >= 3
        and max(half_width([r[name] for r in per_rep], run.ci_metric) for name in group)
        <= run.target_ci95_ms
    )


__all__ = ["ProgressInfo", "SimulationResult", "Tracer", "simulate"]
