"""The simulator's prediction of a testbed run: the scenario as the testbed runs it (one node
of one core per server role, each node its own replay store, loopback links, no faults or
adversary, the calibrated profile), simulated at the same load, and the same figures as
``measure.measured_metrics`` computes from the real run."""

from __future__ import annotations

import copy
from collections.abc import Mapping

from sim.testbed.measure import Load

#: the loopback as a link: one-way delay and rate (a memory copy between two processes)
LOOPBACK_LATENCY_MS = 0.02
LOOPBACK_MBPS = 20_000.0
#: the shortest simulated window: the model's figures are cheap, and then less noisy
MIN_SIMULATED_S = 60.0


def testbed_scenario(data: Mapping, strategy: str, profile: str, load: Load, seed: int) -> dict:
    """The scenario data of ``strategy`` as the testbed runs it under ``load``."""
    from sim.protocol import build_strategy

    out = copy.deepcopy(dict(data))
    out["strategies"] = [strategy]
    out.pop("adversary", None)
    out["faults"] = []
    roles = build_strategy(strategy, out.get("strategy_options", {}).get(strategy, {})).roles
    topology = out.setdefault("topology", {})
    for role in roles:
        spec = topology.setdefault(role, {})
        spec.update(nodes=1, cores=1, shared_replay_cache=False, hsm_units=0)
        spec.pop("hsm_op_ms", None)
    links = out.get("links", {})
    for name in {"default", *links}:
        spec = dict(links.get(name, {}))
        spec.update(latency_ms=LOOPBACK_LATENCY_MS, bandwidth_mbps=LOOPBACK_MBPS)
        spec.update(jitter_ms=0.0, loss=0.0, bit_error_rate=0.0)
        links[name] = spec
    out["links"] = links
    workload = dict(out["workload"])
    workload.pop("rate", None)
    workload.pop("users", None)
    workload.pop("classes", None)
    if load.rate is not None:
        workload["rate"] = load.rate
    else:
        workload["users"] = load.users
        workload["think_time_s"] = load.think_time_s
    out["workload"] = workload
    measured = max(load.duration_s - load.warmup_s, MIN_SIMULATED_S)
    out["run"] = {
        "duration_s": load.warmup_s + measured,
        "warmup_s": load.warmup_s,
        "seed": seed,
        "fidelity": "replay",
        "replications": 1,
        "record_messages": 0,
    }
    previous = out.get("profile", {})
    out["profile"] = {"name": profile}
    for key in ("variability", "cv"):
        if key in previous:
            out["profile"][key] = previous[key]
    return out


def predicted_metrics(data: Mapping, strategy: str, profile: str, load: Load, seed: int) -> dict:
    """The simulated figures of ``strategy`` under ``load``, shaped as the measured ones."""
    from sim.engine import load_scenario, simulate

    scenario = load_scenario(testbed_scenario(data, strategy, profile, load, seed))
    result = simulate(scenario, workers=1)
    summary = result.summary["strategies"][strategy]
    run = scenario.run
    window = run.duration_s - run.warmup_s
    completed = max(summary["completed"], 1)
    metrics: dict = {
        "app_messages": summary["app_messages"],
        "completed": summary["completed"],
        "failed": summary["failed"],
        "window_s": window,
        "throughput_per_s": summary["throughput_per_s"],
        "p50_ms": summary["latency_ms"]["p50"],
        "p95_ms": summary["latency_ms"]["p95"],
        "p99_ms": summary["latency_ms"]["p99"],
        "cpu_ms_per_message": {},
        "utilization": {},
        "overloaded": bool(result.summary.get("warnings")),
    }
    for role, figures in summary["roles"].items():
        busy = figures["utilization"] * figures["cores"] * window
        metrics["cpu_ms_per_message"][role] = busy / completed * 1000
        metrics["utilization"][role] = figures["utilization"]
    return metrics
