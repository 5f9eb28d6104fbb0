"""``run_testbed``: every strategy of a scenario on real processes and sockets, measured,
then simulated as the testbed ran it, and the two held against each other.

For each strategy: its server nodes start (one process a role, pinned to the servers'
core), the load generator (pinned to its own core) drives the scenario's workload for the
main step, then a closed workload of 1, 2, 4... users back to back finds the saturation
throughput; the nodes stop. The simulator then runs the same loads with the calibrated
profile (``predict``)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sim.errors import WssimError
from sim.testbed import ledger_gap, links, measure, predict, speed, validation
from sim.testbed.cluster import Cluster
from sim.testbed.measure import Load


@dataclass(frozen=True)
class Settings:
    """How long and how hard a testbed run drives each strategy."""

    duration_s: float = 20.0
    warmup_s: float = 3.0
    #: seconds of each saturation step (its warm-up is a quarter of it)
    step_s: float = 8.0
    #: the closed workload's user counts, stepped up until saturation (empty: skipped)
    users: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    seed: int = 1


def cores() -> dict[str, tuple[int, ...]]:
    """Which cores each role gets: the load generator the first allowed core, the servers
    the second (the same one on a single-core machine)."""
    allowed = sorted(os.sched_getaffinity(0))
    servers = allowed[1:2] or allowed[:1]
    return {"load generator": tuple(allowed[:1]), "servers": tuple(servers)}


def strategy_cluster(name: str, scenario, key_dir: str, log_dir: str | None = None) -> Cluster:
    """A cluster (not started) of one node per server role of strategy ``name``, with the
    scenario's options and shared caches for it, on the servers' cores (``cores``)."""
    from sim.protocol import build_strategy

    options = dict(scenario.strategy_options.get(name, {}))
    roles = build_strategy(name, options, key_dir=key_dir).roles
    shared = {role: getattr(scenario.topology, role).shared_cache for role in roles}
    return Cluster(
        name,
        options,
        dict.fromkeys(roles, 1),
        cores()["servers"],
        key_dir,
        time.time(),
        shared_cache=shared,
        log_dir=log_dir,
    )


def workload_config(data: Mapping) -> dict:
    """The load generator's workload values from the scenario's ``workload`` table."""
    workload = data["workload"]

    def table(value) -> list[list[float]]:
        if isinstance(value, int):
            return [[value, 1.0]]
        return [[int(k), float(w)] for k, w in value.items()]

    return {
        "messages_per_session": table(workload.get("messages_per_session", 1)),
        "payload_bytes": table(workload.get("payload_bytes", 1024)),
        "geometric": workload.get("session_length", "fixed") == "geometric",
        "message_gap_s": float(workload.get("message_gap_s", 0.0)),
    }


def main_load(scenario, settings: Settings) -> Load:
    workload = scenario.workload
    return Load(
        rate=workload.rate,
        users=workload.users,
        think_time_s=workload.think_time_s,
        duration_s=settings.duration_s,
        warmup_s=settings.warmup_s,
    )


def _step_load(settings: Settings, users: int) -> Load:
    return Load(
        users=users,
        think_time_s=0.0,
        duration_s=settings.step_s,
        warmup_s=settings.step_s / 4,
        drain_s=10.0,
    )


def measure_strategy(
    name: str,
    data: Mapping,
    scenario,
    settings: Settings,
    key_dir: str,
    scratch: Path,
    say: Callable[[str], None],
) -> tuple[dict, list[dict]]:
    """The measured figures of ``name`` (main step, saturation) and its messages."""
    layout = cores()
    work = workload_config(data)
    with strategy_cluster(name, scenario, key_dir, log_dir=str(scratch)) as cluster:
        nodes = {role: [f"{role}-0"] for role in cluster.roles}

        def step(load: Load, seed: int) -> tuple[dict, dict]:
            result = measure.run_load(
                cluster, work, load, cores=layout["load generator"], seed=seed, scratch=scratch
            )
            return measure.measured_metrics(result, nodes, load), result

        load = main_load(scenario, settings)
        say(f"{name}: main step, {_describe(load)} for {load.duration_s:g} s")
        before = os.getloadavg()[0]
        reference = speed.reference_ms(key_dir, layout["servers"])
        main, result = step(load, settings.seed)
        reference = (reference + speed.reference_ms(key_dir, layout["servers"])) / 2
        main["load_average"] = [before, os.getloadavg()[0]]
        # the machine's speed around the step, on the servers' core (``speed``)
        main["reference_ms"] = reference
        rows = result["rows"]
        main["errors"] = result["errors"]
        best, steps = None, []
        if settings.users:
            say(f"{name}: saturation, closed users {settings.users}")
            best, steps = measure.saturation(
                lambda users: step(_step_load(settings, users), settings.seed + users)[0],
                settings.users,
            )
    return {
        "main": main,
        "saturation_per_s": best,
        "saturation_bound_by": bottleneck(steps),
        "saturation_loadgen_cpu_ms_per_message": measure.loadgen_at_best(steps, best),
        "steps": steps,
    }, rows


def bottleneck(steps: list[dict]) -> str | None:
    """Which core was busiest in the last saturation step: the load generator's or the
    servers' (all server nodes share theirs)."""
    if not steps:
        return None
    last = steps[-1]
    servers = sum(last["utilization"].values())
    loadgen = last["loadgen"]["utilization"]
    side = "load generator" if loadgen > servers else "servers"
    return f"{side} (load generator core {loadgen:.2f} busy, servers core {servers:.2f})"


def predict_strategy(
    name: str,
    data: Mapping,
    scenario,
    settings: Settings,
    profile: str,
    key_dir: str | None,
    scale: float = 1.0,
    main_profile: str | None = None,
) -> dict:
    """The simulated figures of ``name`` at the loads the testbed ran, with the profile
    scaled by ``scale`` (the machine's speed then against its calibration's); the load
    generator's CPU per message priced with the profile; the saturation capped by the
    shared cores (``predict.capped_saturation``). ``main_profile``: the profile of the main
    step where it differs (its low-load figures, ``predict.low_load_profile``); the
    saturation steps run back to back, priced with ``profile``."""
    from sim.engine.costs import load_profile

    load = main_load(scenario, settings)
    workload = scenario.workload

    def client_ms(path: str, busy: bool = False) -> float:
        return predict.client_cpu_ms(
            name,
            scenario.strategy_options.get(name, {}),
            load_profile(path).with_overrides(scale, {}),
            messages=min(workload.all_values("messages_per_session")[0], 20),
            size=workload.all_values("payload_bytes")[0],
            key_dir=key_dir,
            busy=busy,
        )

    main = predict.predicted_metrics(
        data, name, main_profile or profile, load, settings.seed, scale
    )
    main["loadgen"] = {"cpu_ms_per_message": client_ms(main_profile or profile)}
    best, steps, bound, loadgen_ms = None, [], None, None
    if settings.users:
        simulated, steps = measure.saturation(
            lambda users: predict.predicted_metrics(
                data, name, profile, _step_load(settings, users), settings.seed + users, scale
            ),
            settings.users,
        )
        busy = main
        if main_profile:  # the shared cores' bounds at back-to-back costs
            busy = predict.predicted_metrics(data, name, profile, load, settings.seed, scale)
        # the load generator back to back, its own bookkeeping a message included
        loadgen_ms = client_ms(profile, busy=True)
        best, bound = predict.capped_saturation(simulated, loadgen_ms, busy["cpu_ms_per_message"])
    return {
        "main": main,
        "saturation_per_s": best,
        "saturation_bound_by": bound,
        "saturation_loadgen_cpu_ms_per_message": loadgen_ms,
        "steps": steps,
    }


def strategy_gap(name: str, scenario, profile: str, key_dir: str) -> dict:
    """``ledger_gap`` of strategy ``name`` with the run's profile (at the scenario's first
    payload size and session length)."""
    from sim.engine.costs import load_profile
    from sim.protocol import build_strategy

    strategy = build_strategy(name, scenario.strategy_options.get(name, {}), key_dir=key_dir)
    workload = scenario.workload
    return ledger_gap.ledger_gap(
        strategy,
        load_profile(profile),
        messages=min(workload.all_values("messages_per_session")[0], 20),
        size=workload.all_values("payload_bytes")[0],
    )


def links_note(support: links.LinkSupport) -> str:
    """What the run did about the scenario's client links, and why."""
    if support.netem:
        return (
            "netem works here, but this testbed drives the client over the loopback: the "
            "scenario's client links are not emulated (the namespace run is not built)"
        )
    return f"loopback only, the scenario's client links are not emulated: {support.reason}"


def _describe(load: Load) -> str:
    if load.rate is not None:
        return f"{load.rate:g} sessions/s (open)"
    return f"{load.users} users, think {load.think_time_s:g} s (closed)"


def _low_load_profile_file(profile: str, scratch: Path) -> str | None:
    """The path of ``profile`` with its low-load figures in place (written into
    ``scratch``), or None when it has none (``predict.low_load_profile``)."""
    from sim.report.outputs import write_json

    if profile == "default":
        return None
    low = predict.low_load_profile(json.loads(Path(profile).read_text()))
    if low is None:
        return None
    path = scratch / "profile-low-load.json"
    write_json(path, low)
    return str(path)


def run_testbed(
    data: Mapping,
    scenario,
    out: Path,
    *,
    profile: str,
    settings: Settings,
    key_dir: str,
    say: Callable[[str], None] = print,
) -> dict:
    """Measure and predict every strategy of ``scenario``; write ``testbed.json``,
    ``validation.json``, ``messages.csv`` and ``plots/validation.png`` into ``out``.
    Returns the validation."""
    from sim.engine.costs import load_profile
    from sim.report.outputs import MESSAGE_COLUMNS, write_csv, write_json

    support = links.probe()
    layout = cores()
    scratch = out / "logs"
    scratch.mkdir(parents=True, exist_ok=True)
    details: dict = {
        "scenario": scenario.name,
        "cores": {role: list(c) for role, c in layout.items()},
        "links": {"netem": support.netem, "note": links_note(support)},
        "topology": "one node (one process, one core) per server role, every role's node on "
        "the servers' core; the prediction simulates that topology over loopback links",
        "profile": profile,
        "settings": settings.__dict__,
        "strategies": {},
    }
    main_profile = _low_load_profile_file(profile, scratch)
    details["main_step_costs"] = (
        "at low load (the profile's low_load section)"
        if main_profile
        else "back to back (the profile has no low_load section: wssim calibrate without --quick)"
    )
    rows: list[dict] = []
    compared: dict[str, dict] = {}
    result = {"strategies": compared}
    for name in scenario.strategies:
        try:
            measured, messages = measure_strategy(
                name, data, scenario, settings, key_dir, scratch, say
            )
        except WssimError as error:  # one strategy's failure leaves the others' results
            say(f"[red]{name} failed: {error}")
            details["strategies"][name] = {"error": str(error)}
            write_json(out / "testbed.json", details)
            continue
        rows += messages
        factor = speed.speed_factor(load_profile(profile).meta, measured["main"]["reference_ms"])
        say(
            f"{name}: simulating the same loads (the machine ran {factor:.2f}x its calibration's CPU time)"
        )
        predicted = predict_strategy(
            name, data, scenario, settings, profile, key_dir, factor, main_profile
        )
        gap = strategy_gap(name, scenario, profile, key_dir)
        for role, figures in gap.items():
            say(
                f"{name} {role}: the ledger charges {figures['ledger_ms']:.2f} ms of the "
                f"{figures['engine_ms']:.2f} ms of CPU its engine spends per message "
                f"({figures['charged']:.0%})"
            )
        details["strategies"][name] = {
            "speed_factor": factor,
            "measured": measured,
            "predicted": predicted,
            "ledger_gap": gap,
        }
        compared[name] = validation.entry(
            validation.flatten(
                predicted["main"],
                predicted["saturation_per_s"],
                predicted["saturation_loadgen_cpu_ms_per_message"],
            ),
            validation.flatten(
                measured["main"],
                measured["saturation_per_s"],
                measured["saturation_loadgen_cpu_ms_per_message"],
            ),
        )
        # written after every strategy: an interrupted run keeps what it measured
        write_json(out / "validation.json", result)
        write_json(out / "testbed.json", details)
        write_csv(out / "messages.csv", rows, MESSAGE_COLUMNS)
    validation.plot(compared, out / "plots" / "validation.png")
    return result
