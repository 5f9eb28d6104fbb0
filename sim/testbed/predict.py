"""The simulator's prediction of a testbed run: the scenario as the testbed runs it (one node
of one core per server role, each node its own replay store, loopback links, no faults or
adversary, the calibrated profile), simulated at the same load, and the same figures as
``measure.measured_metrics`` computes from the real run.

Two cores the simulation cannot share are added by the utilization law: the model's client
machines never queue (``topology.client``: each session its own machine), while the
testbed's clients are one load-generator process on one core; and the model gives each
server role its own node, while the testbed's server processes share one core. The
predicted saturation is the simulated one, capped by what each shared core can do: 1000 /
the load generator's CPU ms per message (``client_cpu_ms``: the client steps' ledgers,
engine overhead, HTTP and connection costs priced with the profile) and 1000 / the sum of
the server roles' simulated CPU ms per message."""

from __future__ import annotations

import copy
from collections.abc import Mapping

from sim.testbed.measure import Load

#: the shared cores that may bound the predicted saturation
LOAD_GENERATOR, SERVERS, SIMULATED = "load generator", "servers", "simulated"

#: the loopback as a link: one-way delay and rate (a memory copy between two processes)
LOOPBACK_LATENCY_MS = 0.02
LOOPBACK_MBPS = 20_000.0
#: a profile's ``http`` figures of the load generator back to back (``loadcost``): its own
#: CPU a message, and a request's as it makes them
LOADGEN_MESSAGE = "loadgen_message_us"
LOADGEN_REQUEST, LOADGEN_TLS_REQUEST = "loadgen_request_us", "loadgen_tls_request_us"
#: the shortest simulated window: the model's figures are cheap, and then less noisy
MIN_SIMULATED_S = 60.0


def low_load_profile(data: Mapping) -> dict | None:
    """The profile ``data`` (a calibrated profile's JSON) with its request and engine costs
    measured at low load (its ``low_load`` section, ``wssim calibrate`` without
    ``--quick``) in place of the back-to-back ones; None without that section. A node
    serving a few tens of messages a second idles between them, and each step then runs
    with the CPU caches other processes left: the testbed's main step is predicted with
    these figures, its saturation steps (back to back) with the others."""
    from sim.engine.costs import CostProfile
    from sim.errors import ScenarioError

    low = data.get("low_load")
    if low is None:
        return None
    try:
        out = copy.deepcopy(dict(data))
        out.pop("low_load")
        out["http"] = {**out.get("http", {}), **low.get("http", {})}
        overhead = copy.deepcopy(out.get("engine_overhead_us", {}))
        for strategy, roles in low.get("engine_overhead_us", {}).items():
            for role, kinds in roles.items():
                overhead.setdefault(strategy, {}).setdefault(role, {}).update(kinds)
        out["engine_overhead_us"] = overhead
        out.setdefault("meta", {})["costs_at"] = f"low load ({low.get('pause_s')} s idle a step)"
        CostProfile.from_json(out)  # every figure a number
    except (TypeError, ValueError, AttributeError, ScenarioError) as exc:
        raise ScenarioError(
            "profile.name", f"the profile's low_load section is not a calibrate's: {exc}"
        ) from None
    return out


def testbed_scenario(
    data: Mapping, strategy: str, profile: str, load: Load, seed: int, scale: float = 1.0
) -> dict:
    """The scenario data of ``strategy`` as the testbed runs it under ``load``, its profile
    scaled by ``scale`` (how much slower the machine runs than when it was calibrated)."""
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
    out["profile"] = {"name": profile, "scale": scale}
    for key in ("variability", "cv"):
        if key in previous:
            out["profile"][key] = previous[key]
    return out


def predicted_metrics(
    data: Mapping, strategy: str, profile: str, load: Load, seed: int, scale: float = 1.0
) -> dict:
    """The simulated figures of ``strategy`` under ``load``, shaped as the measured ones
    (the profile scaled by ``scale``)."""
    from sim.engine import load_scenario, simulate
    from sim.engine.costs import load_profile

    scenario = load_scenario(testbed_scenario(data, strategy, profile, load, seed, scale))
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
    # a node's CPU serving nothing (its event loops' timers), over the window (the
    # testbed runs one node of one core per role)
    idle = load_profile(profile).http.get("server_idle_us_per_s", 0.0) * 1e-6 * scale
    for role, figures in summary["roles"].items():
        busy = (figures["utilization"] + idle) * figures["cores"] * window
        metrics["cpu_ms_per_message"][role] = busy / completed * 1000
        metrics["utilization"][role] = figures["utilization"] + idle
    return metrics


def busy_loadgen_profile(profile):
    """``profile`` (a CostProfile) with its client's cost per request the one the load
    generator pays back to back (``loadcost``); the profile itself without that figure."""
    http = profile.http
    if LOADGEN_REQUEST not in http:
        return profile
    busy = copy.copy(profile)
    busy.http = {
        **http,
        "client_request_us": http[LOADGEN_REQUEST],
        "client_tls_request_us": http.get(LOADGEN_TLS_REQUEST, http[LOADGEN_REQUEST]),
    }
    return busy


def client_cpu_ms(
    name: str,
    options: Mapping,
    profile,
    *,
    messages: int,
    size: int,
    key_dir: str | None = None,
    busy: bool = False,
) -> float:
    """The model's CPU per application message of ``name``'s clients under ``profile`` (a
    CostProfile): their steps (recorded in the harness) priced as the simulator prices
    them — ledger, engine overhead, the HTTP client's cost per request and byte — plus a new
    connection per session and server role (and a TLS handshake on a TLS one), as the
    testbed's load generator opens them. ``busy``: the load generator back to back (the
    saturation steps): each request at its cost there and each message with the load
    generator's own bookkeeping (the profile's ``http.loadgen_*``, ``loadcost``)."""
    from sim.engine.chain import TLS_HANDSHAKE
    from sim.protocol import build_strategy
    from sim.protocol.api import CLIENT
    from sim.testbed.ledger_gap import time_steps

    own = 0.0
    if busy:
        own = profile.http.get(LOADGEN_MESSAGE, 0.0) * 1e-6 * profile.scale
        profile = busy_loadgen_profile(profile)
    strategy = build_strategy(name, dict(options), key_dir=key_dir)
    times = time_steps(
        strategy, profile, messages=messages, size=size, sessions=10, warmup_sessions=2
    )
    total = 0.0
    for (role, kind), charged in times.charged.items():
        if role == CLIENT:
            steps = times.steps[role, kind]
            total += charged + steps * profile.overhead_seconds(name, CLIENT, kind)
            total += times.http.get((role, kind), 0.0)
    plain = times.connections - times.tls_connections
    total += plain * profile.connection_seconds(server=False)
    total += times.tls_connections * (
        profile.cost(TLS_HANDSHAKE) + profile.connection_seconds(server=False, tls=True)
    )
    return (total / times.messages + own) * 1000


def capped_saturation(
    simulated: float | None, loadgen_ms: float, server_ms: Mapping[str, float]
) -> tuple[float | None, str]:
    """The predicted saturation throughput: the simulated one, or what the load
    generator's core or the servers' shared core can do at most when that is less; and
    which of the three bounds it."""
    if simulated is None:
        return None, SIMULATED
    bounds = {SIMULATED: simulated}
    if loadgen_ms > 0:
        bounds[LOAD_GENERATOR] = 1000.0 / loadgen_ms
    servers = sum(server_ms.values())
    if servers > 0:
        bounds[SERVERS] = 1000.0 / servers
    bound = min(bounds, key=bounds.__getitem__)
    return bounds[bound], bound
