"""One load step on a running cluster (the load generator as a pinned process of its own)
and what it measured: per role CPU milliseconds per application message and utilization,
throughput, latency percentiles; and the saturation search (the load stepped up until the
p99 explodes or messages fail)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.errors import WssimError
from sim.testbed.cluster import Cluster

#: seconds the load generator may take beyond its run and drain before it is killed
GRACE_S = 60.0
#: the saturation search stops once the p99 exceeds this many times the lightest step's
P99_EXPLODES = 10.0
#: ... or more than this share of the messages fail
ERRORS_ALLOWED = 0.01
#: ... or the throughput grew by less than this factor over the best step before it
PLATEAU = 1.05
#: steps in a row without that growth that end the search (one can be a shared machine's
#: noise: a dip from one user to two ended it before)
PATIENCE = 2


@dataclass(frozen=True)
class Load:
    """What the load generator offers in one step."""

    rate: float | None = None
    users: int | None = None
    think_time_s: float = 1.0
    duration_s: float = 20.0
    warmup_s: float = 3.0
    drain_s: float = 15.0


def run_load(
    cluster: Cluster,
    workload: dict,
    load: Load,
    *,
    cores: tuple[int, ...],
    seed: int,
    scratch: Path,
) -> dict:
    """Drive ``load`` against ``cluster``; the load generator's result (rows, snapshots)."""
    config = {
        "strategy": cluster.strategy,
        "options": cluster.options,
        "key_dir": cluster.key_dir,
        "t0": cluster.t0,
        "endpoints": cluster.endpoints(),
        "seed": seed,
        "cores": list(cores),
        "rate": load.rate,
        "users": load.users,
        "think_time_s": load.think_time_s,
        "duration_s": load.duration_s,
        "warmup_s": load.warmup_s,
        "drain_s": load.drain_s,
        **workload,
    }
    out = scratch / f"load-{cluster.strategy}-{seed}.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "sim.testbed.loadgen", json.dumps(config), str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, error = process.communicate(timeout=load.duration_s + load.drain_s + GRACE_S)
    except BaseException:
        process.kill()
        process.wait()
        raise
    if process.returncode != 0 or not out.exists():
        raise WssimError(f"the load generator failed: {error.strip()[-2000:]}")
    result = json.loads(out.read_text())
    out.unlink()
    return result


def measured_metrics(result: dict, roles: dict[str, list[str]], load: Load) -> dict:
    """The figures of one step: ``cpu_ms_per_message.<role>``, ``utilization.<role>``,
    ``p50_ms``, ``p95_ms``, ``p99_ms``, ``throughput_per_s`` and the counts; the load
    generator's own CPU per message and utilization (``loadgen``). Messages count when
    started in the measured window, as in the simulator's summary."""
    opening, closing = result["opening"], result["closing"]
    window = closing["t"] - opening["t"]
    inside = [r for r in result["rows"] if opening["t"] <= r["start_s"] < closing["t"]]
    completed = [r for r in inside if r["ok"]]
    latencies = np.array([r["latency_ms"] for r in completed]) if completed else np.zeros(1)
    count = max(len(completed), 1)
    metrics: dict = {
        "app_messages": len(inside),
        "completed": len(completed),
        "failed": len(inside) - len(completed),
        "window_s": window,
        "window_start_s": opening["t"],
        "window_end_s": closing["t"],
        "throughput_per_s": len(completed) / window,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p95_ms": float(np.percentile(latencies, 95)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "cpu_ms_per_message": {},
        "utilization": {},
        # time ready to run but waiting for a core (other processes of the machine)
        "run_queue_ms_per_message": {},
        # of the CPU, what the engine's own steps took (the rest: HTTP, the event loop)
        "engine_cpu_ms_per_message": {},
    }
    for role, nodes in roles.items():
        cpu = sum(closing["servers"][n]["cpu_s"] - opening["servers"][n]["cpu_s"] for n in nodes)
        metrics["cpu_ms_per_message"][role] = cpu / count * 1000
        metrics["utilization"][role] = cpu / (window * len(nodes))
        wait = sum(
            closing["servers"][n].get("wait_s", 0.0) - opening["servers"][n].get("wait_s", 0.0)
            for n in nodes
        )
        metrics["run_queue_ms_per_message"][role] = wait / count * 1000
        engine = sum(
            closing["servers"][n].get("engine_cpu_s", 0.0)
            - opening["servers"][n].get("engine_cpu_s", 0.0)
            for n in nodes
        )
        metrics["engine_cpu_ms_per_message"][role] = engine / count * 1000
    loadgen = closing["loadgen_cpu_s"] - opening["loadgen_cpu_s"]
    wait = closing.get("loadgen_wait_s", 0.0) - opening.get("loadgen_wait_s", 0.0)
    metrics["loadgen"] = {
        "cpu_ms_per_message": loadgen / count * 1000,
        "utilization": loadgen / window,
        "run_queue_ms_per_message": wait / count * 1000,
    }
    faults: dict[str, int] = {}
    for row in inside:
        if not row["ok"]:
            faults[row["fault"]] = faults.get(row["fault"], 0) + 1
    metrics["faults"] = faults
    metrics["overloaded"] = result["overloaded"]
    return metrics


def exploded(step: dict, first: dict) -> bool:
    """Whether a step is past saturation: the p99 exploded, messages failed, or the load
    generator gave up on an open workload."""
    failed = step["failed"] / max(step["app_messages"], 1)
    return (
        step["p99_ms"] > P99_EXPLODES * first["p99_ms"]
        or failed > ERRORS_ALLOWED
        or step.get("overloaded", False)
    )


def saturation(measure: Callable[[int], dict], users: tuple[int, ...]) -> tuple[float, list[dict]]:
    """Step a closed workload (``users`` back to back, no think time) up through ``users``
    until a step explodes or the throughput stops growing (by ``PLATEAU``, ``PATIENCE``
    steps in a row: a closed system past saturation only queues); the saturation
    throughput is the best throughput of the steps before an explosion (messages per
    second), and every step's figures."""
    steps: list[dict] = []
    best = 0.0
    flat = 0
    for count in users:
        step = measure(count)
        step["users"] = count
        steps.append(step)
        if steps[0] is not step and exploded(step, steps[0]):
            break
        flat = 0 if step["throughput_per_s"] > best * PLATEAU else flat + 1
        best = max(best, step["throughput_per_s"])
        if flat >= PATIENCE:
            break
    return best, steps


def loadgen_at_best(steps: list[dict], best: float | None) -> float | None:
    """The load generator's CPU ms a message at the saturation search's best step (the
    first whose throughput is ``best``), or None without one."""
    for step in steps:
        if best and step["throughput_per_s"] == best:
            return step["loadgen"]["cpu_ms_per_message"]
    return None
