"""``simulate``: run a scenario, each strategy on the same topology and random streams, and
summarize it in the ``summary.json`` schema of DESIGN.md."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import simpy

import sim
from sim.engine.costs import CostProfile, load_profile
from sim.engine.model import Chain, MessageRecord, Network, Node
from sim.engine.scenario import Scenario
from sim.engine.stats import MessageStats
from sim.errors import ScenarioError
from sim.protocol import build_strategy
from sim.protocol.api import CLIENT, AppDone, KeyLog, Send, Step
from sim.protocol.harness import Harness
from sim.wire.keys import default_key_dir

SCRIPTED_MESSAGES = 3
#: messages kept for messages.csv per replication and strategy (the summary sees them all)
MAX_RECORDED = 200_000
DRAIN_S = 120.0


class Tracer(Protocol):
    def on_message(
        self,
        seq: int,
        t: float,
        sender: str,
        receiver: str,
        action: str,
        data: bytes,
        fault: str | None,
    ) -> None: ...


@dataclass(frozen=True)
class ProgressInfo:
    sim_time_s: float
    end_time_s: float
    app_messages: int
    replication: int
    replications: int
    strategy: str


@dataclass
class SimulationResult:
    summary: dict
    messages: list[dict] = field(default_factory=list)
    nodes: list[dict] = field(default_factory=list)
    links: list[dict] = field(default_factory=list)
    partial: bool = False
    wall_s: float = 0.0
    seed_entropy: int = 0


# --- replay scripts ------------------------------------------------------------------------


@dataclass
class MessageScript:
    """One application message as recorded from real engines: the client's first step and
    the step each receiver took, in order."""

    origin: Step
    handled: list[Step]


def record_session(strategy, messages: int, payload: bytes):
    """Record a session of ``min(messages, 3)`` messages and its close with real engines.

    Message sizes and ledgers are deterministic for a configuration, so later messages of a
    longer session repeat the last recorded one exactly."""
    harness = Harness(strategy)
    scripts = [
        _record(harness.request(payload, float(index)))
        for index in range(min(messages, SCRIPTED_MESSAGES))
    ]
    return scripts, _record(harness.close(float(messages)))


def _record(outcome) -> MessageScript:
    return MessageScript(outcome.origins[0], [d.handled for d in outcome.deliveries])


# --- one replication ---------------------------------------------------------------------


class Replication:
    def __init__(
        self,
        scenario: Scenario,
        strategy_name: str,
        strategy,
        profile: CostProfile,
        seed: np.random.SeedSequence,
        fidelity: str,
        scripts,
        tracer: Tracer | None,
        max_sessions: int | None,
        progress: Callable[[float, int], None] | None,
    ):
        self.scenario = scenario
        self.name = strategy_name
        self.strategy = strategy
        self.fidelity = fidelity
        self.scripts = scripts
        self.tracer = tracer
        self.max_sessions = max_sessions
        self.progress = progress
        # Children derived by key, not by spawn(): every strategy of a run sees the same
        # streams (common random numbers, a fair comparison).
        streams = [
            np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, k)) for k in range(3)
        ]
        self.arrivals = np.random.default_rng(streams[0])
        self.env = simpy.Environment()
        self.network = Network(
            self.env, scenario, strategy.roles, np.random.default_rng(streams[1]), profile
        )
        #: messages kept for messages.csv (at most MAX_RECORDED; the statistics see them all)
        self.records: list[MessageRecord] = []
        self.stats = MessageStats(scenario.run.warmup_s, scenario.run.duration_s)
        self.started = 0
        self.trace_seq = 0
        if fidelity == "full":
            for farm in self.network.farms.values():
                spec = getattr(scenario.topology, farm.role)
                shared = strategy.shared_state(farm.role) if spec.shared_cache else None
                for node in farm.nodes:
                    node.engine = strategy.server(farm.role, node.name, shared=shared)

    # sessions ----------------------------------------------------------------------------
    def _session(self, key: int):
        workload = self.scenario.workload
        client_node = self.network.client_node(key % self.scenario.topology.client.nodes)
        engine = self.strategy.client(f"client-{key}") if self.fidelity == "full" else None
        tls_open: set[str] = set()
        length = workload.messages_per_session
        if workload.session_length == "geometric":
            length = int(self.arrivals.geometric(1.0 / workload.messages_per_session))
        for index in range(length):
            if self._stop():
                break
            self.started += 1
            record = MessageRecord(session=key, seq=index, start=self.env.now)
            self.stats.start(record)
            if len(self.records) < MAX_RECORDED:
                self.records.append(record)
            yield from self._chain(key, client_node, engine, record, index, tls_open)
            if index + 1 < length and workload.message_gap_s:
                yield self.env.timeout(workload.message_gap_s)
        yield from self._chain(key, client_node, engine, None, -1, tls_open)

    def _stop(self) -> bool:
        run = self.scenario.run
        if self.env.now >= run.duration_s:
            return True
        return run.max_messages is not None and self.started >= run.max_messages

    def _chain(self, key: int, client_node: Node, engine, record, index: int, tls_open: set):
        now = self.env.now
        if self.fidelity == "full":
            payload = _payload(self.scenario.workload.payload_bytes, key, index)
            first = engine.request(payload, now=now) if record else engine.close(now=now)

            def handle(node, send, sender, t):
                self._trace(sender, node.name, send)
                target = engine if node.role == CLIENT else node.engine
                return target.receive(send.data, sender=sender, now=t)
        else:
            messages, close = self.scripts
            script = close if record is None else messages[min(index, len(messages) - 1)]
            steps = iter(script.handled)
            first = script.origin

            def handle(node, send, sender, t):
                self._trace(sender, node.name, send)
                return next(steps)

        chain = Chain(self.network, key, client_node, handle, record, tls_open)
        yield from chain.run(client_node, first)
        if record is not None:
            record.end = self.env.now
            result = chain.result
            if isinstance(result, AppDone):
                record.ok, record.fault, record.recoveries = (
                    result.ok,
                    result.fault,
                    result.recoveries,
                )
            else:
                record.fault = "wssim:NoResult"
            self.stats.finish(record)

    def _trace(self, sender: str, receiver: str, send: Send) -> None:
        if self.tracer is not None:
            self.trace_seq += 1
            self.tracer.on_message(
                self.trace_seq, self.env.now, sender, receiver, send.action, send.data, send.fault
            )

    def _open_arrivals(self, rate: float):
        key = 0
        while True:
            yield self.env.timeout(self.arrivals.exponential(1.0 / rate))
            if self._stop() or (self.max_sessions is not None and key >= self.max_sessions):
                return
            self.env.process(self._session(key))
            key += 1

    def _user(self, user: int, think: float):
        key = user
        users = self.scenario.workload.users
        sessions = 0
        while not self._stop():
            if self.max_sessions is not None and sessions >= self.max_sessions:
                return
            yield from self._session(key)
            sessions += 1
            key += users
            if think:
                yield self.env.timeout(self.arrivals.exponential(think))

    def _faults(self):
        for fault in sorted(self.scenario.faults, key=lambda f: f.at_s):
            if fault.at_s > self.env.now:
                yield self.env.timeout(fault.at_s - self.env.now)
            nodes = [n for n in self.network.nodes.values() if fault.node in (None, n.name, n.role)]
            if fault.kind == "sts_crash":
                for node in nodes:
                    if node.role == "sts":
                        node.down_until = self.env.now + fault.duration_s
            elif fault.kind == "provider_restart":
                for node in nodes:
                    if node.role == "provider":
                        node.down_until = self.env.now + fault.duration_s
                        contexts = getattr(node.engine, "contexts", None)
                        if contexts is not None:
                            contexts.clear()
            elif fault.kind == "clock_skew":
                for node in nodes:
                    node.skew = fault.skew_s
            elif fault.kind == "link_outage":
                a, _, b = (fault.link or "client-provider").partition("-")
                for key in ((a, b), (b, a)):
                    self.network.wire(*key).down_until = self.env.now + fault.duration_s

    def _progress_ticks(self):
        run = self.scenario.run
        step = max(run.duration_s / 50, 0.001)
        while self.env.now < run.duration_s:
            yield self.env.timeout(step)
            self.progress(self.env.now, self.started)

    def run(self) -> None:
        workload = self.scenario.workload
        if workload.rate is not None:
            self.env.process(self._open_arrivals(workload.rate))
        else:
            for user in range(workload.users):
                self.env.process(self._user(user, workload.think_time_s))
        if self.scenario.faults:
            self.env.process(self._faults())
        if self.progress is not None:
            self.env.process(self._progress_ticks())
        self.env.run(until=self.scenario.run.duration_s + DRAIN_S)


def _payload(size: int, session: int, index: int) -> bytes:
    seed = f"{session}:{index}:".encode()
    return (seed * (size // len(seed) + 1))[:size]


# --- statistics ----------------------------------------------------------------------------


def _t95(n: int) -> float:
    table = {
        1: 12.706,
        2: 4.303,
        3: 3.182,
        4: 2.776,
        5: 2.571,
        6: 2.447,
        7: 2.365,
        8: 2.306,
        9: 2.262,
        10: 2.228,
        15: 2.131,
        20: 2.086,
        30: 2.042,
    }
    if n in table:
        return table[n]
    for k in sorted(table):
        if k > n:
            return table[k]
    return 1.96


def _summarize_replication(rep: Replication) -> dict:
    run = rep.scenario.run
    measured = run.duration_s - run.warmup_s
    roles = {}
    for farm in rep.network.farms.values():
        busy = sum(n.busy for n in farm.nodes)
        cores = sum(n.cores for n in farm.nodes)
        requests = sum(n.requests for n in farm.nodes)
        service = sum(n.service for n in farm.nodes)
        roles[farm.role] = {
            "nodes": len(farm.nodes),
            "cores": cores,
            "utilization": busy / (cores * measured),
            "requests": requests,
            "mean_service_ms": service / requests * 1000 if requests else 0.0,
        }
        units = sum(n.hsm.capacity for n in farm.nodes if n.hsm is not None)
        if units:
            roles[farm.role]["hsm_utilization"] = sum(n.hsm_busy for n in farm.nodes) / (
                units * measured
            )
    summary = rep.stats.summary(measured)
    summary["roles"] = roles
    if rep.scenario.adversary is not None:
        summary["attacks"] = {
            attack: rep.network.attacks.get(attack, {"attempts": 0, "accepted": 0, "refused": {}})
            for attack in rep.scenario.adversary.attacks
        }
    return summary


def _half_width(replications: list[dict]) -> float:
    """95% confidence half-width of the mean latency over replications."""
    samples = np.array([r["latency_ms"]["mean"] for r in replications])
    return float(_t95(len(samples) - 1) * samples.std(ddof=1) / math.sqrt(len(samples)))


def _combine(replications: list[dict]) -> dict:
    """Mean over replications, with 95% confidence half-widths when there are several."""
    if len(replications) == 1:
        return replications[0]
    n = len(replications)

    def merge(values: list):
        first = values[0]
        if isinstance(first, dict):
            keys = sorted({k for v in values for k in v})
            return {k: merge([v.get(k, 0.0) for v in values]) for k in keys}
        return float(np.mean(values))

    combined = merge(replications)
    for metric in ("mean", "p50", "p95", "p99", "max"):
        samples = np.array([r["latency_ms"][metric] for r in replications])
        combined["latency_ms"].setdefault("ci95", {})[metric] = float(
            _t95(n - 1) * samples.std(ddof=1) / math.sqrt(n)
        )
    samples = np.array([r["throughput_per_s"] for r in replications])
    combined["throughput_per_s_ci95"] = float(_t95(n - 1) * samples.std(ddof=1) / math.sqrt(n))
    for key in ("app_messages", "completed", "failed", "sts_requests"):
        combined[key] = round(combined[key] * n)  # totals over replications
    return combined


def simulate(
    scenario: Scenario,
    *,
    seed: int | None = None,
    fidelity: str | None = None,
    replications: int | None = None,
    progress: Callable[[ProgressInfo], None] | None = None,
    tracer: Tracer | None = None,
    keylog: KeyLog | None = None,
    max_sessions: int | None = None,
    key_dir: str | os.PathLike | None = None,
    strategies: list[str] | None = None,
) -> SimulationResult:
    """Run ``scenario``; arguments given override its ``run`` values. Ctrl-C returns what was
    measured so far, marked partial."""
    started = time.perf_counter()
    seed = scenario.run.seed if seed is None else seed
    fidelity = fidelity or scenario.run.fidelity
    replications = replications or scenario.run.replications
    profile = load_profile(scenario.profile.name).with_overrides(
        scenario.profile.scale,
        {op: o.model_dump(exclude_none=True) for op, o in scenario.profile.overrides.items()},
    )
    key_dir = key_dir or default_key_dir()
    if scenario.adversary is not None and fidelity != "full":
        raise ScenarioError(
            "adversary",
            'attacks need real messages: set run.fidelity = "full" (or --fidelity full)',
        )
    root = np.random.SeedSequence(seed)
    summary = {
        "scenario": scenario.name,
        "seed": seed,
        "fidelity": fidelity,
        "replications": replications,
        "profile": profile.name,
        "version": sim.__version__,
        "measured_s": scenario.run.duration_s - scenario.run.warmup_s,
        "strategies": {},
    }
    result = SimulationResult(summary, seed_entropy=root.entropy)
    names = strategies or scenario.strategies
    target = scenario.run.target_ci95_ms
    limit = scenario.run.max_replications if target is not None else replications
    # Replication i always gets the same stream, however many replications end up running.
    rep_seeds = [np.random.SeedSequence(root.entropy, spawn_key=(i,)) for i in range(limit)]
    try:
        for name in names:
            strategy = build_strategy(
                name, scenario.strategy_options.get(name, {}), keylog=keylog, key_dir=key_dir
            )
            scripts = None
            if fidelity == "replay":
                geometric = scenario.workload.session_length == "geometric"
                scripts = record_session(
                    strategy,
                    SCRIPTED_MESSAGES if geometric else scenario.workload.messages_per_session,
                    _payload(scenario.workload.payload_bytes, 0, 0),
                )
            per_rep: list[dict] = []
            for index, rep_seed in enumerate(rep_seeds):
                if target is not None and index >= 3 and _half_width(per_rep) <= target:
                    break
                tick = None
                if progress is not None:

                    def tick(t, count, index=index, name=name):
                        progress(
                            ProgressInfo(
                                t, scenario.run.duration_s, count, index + 1, replications, name
                            )
                        )

                # The same seed for every strategy: common random numbers, a fair comparison.
                rep = Replication(
                    scenario,
                    name,
                    strategy,
                    profile,
                    rep_seed,
                    fidelity,
                    scripts,
                    tracer,
                    max_sessions,
                    tick,
                )
                rep.run()
                per_rep.append(_summarize_replication(rep))
                _collect(result, rep, index, name)
            summary["strategies"][name] = _combine(per_rep)
            summary["replications"] = (
                max(summary["replications"], len(per_rep)) if target is None else len(per_rep)
            )
    except KeyboardInterrupt:
        result.partial = True
    result.wall_s = time.perf_counter() - started
    return result


def _collect(result: SimulationResult, rep: Replication, index: int, name: str) -> None:
    for r in rep.records:
        result.messages.append(
            {
                "replication": index,
                "strategy": name,
                "class": "default",
                "session": r.session,
                "seq": r.seq,
                "start_s": round(r.start, 6),
                "end_s": round(r.end, 6),
                "latency_ms": round((r.end - r.start) * 1000, 4),
                "request_bytes": r.request_bytes,
                "response_bytes": r.response_bytes,
                "token_service_bytes": r.token_bytes,
                "sts_exchanges": r.sts_exchanges,
                "retries": r.retries,
                "recoveries": r.recoveries,
                "ok": r.ok,
                "fault": r.fault or "",
            }
        )
    measured = rep.scenario.run.duration_s - rep.scenario.run.warmup_s
    for node in rep.network.nodes.values():
        if node.role == CLIENT:
            continue
        result.nodes.append(
            {
                "replication": index,
                "node": node.name,
                "role": node.role,
                "strategy": name,
                "cores": node.cores,
                "utilization": node.busy / (node.cores * measured),
                "requests": node.requests,
                "mean_service_ms": node.service / node.requests * 1000 if node.requests else 0.0,
                "mean_queue_len": node.queue_area / measured,
                "busy_s": node.busy,
            }
        )
    for wire in rep.network.wires.values():
        result.links.append(
            {
                "replication": index,
                "strategy": name,
                "link": wire.name,
                "bytes": wire.bytes,
                "utilization": wire.busy / measured,
            }
        )


__all__ = ["ProgressInfo", "SimulationResult", "Tracer", "simulate"]
