"""``simulate``: run a scenario, each strategy on the same topology and random streams, and
summarize it in the ``summary.json`` schema of DESIGN.md.

Model choices (see also ``model.py`` and ``fidelity.py``):

* Clients are many independent machines: each client charges its CPU time without
  contention (no shared core pool), so client-side crypto adds latency but never queues.
  Server roles (intermediary, STS, provider) queue on their cores.
* A transport failure (the node down or crashed while the message was on it, every
  retransmission lost) faults the client's channel, as a WCF channel faults: the client
  drops its protocol session and retries the message (``workload.retries`` times) on a
  new session, which the balancer places on a node that is up. Protocol faults are the
  client engine's own business (e.g. BadContextToken -> establish anew -> ``recovered``).
* Every application message started in the measured window ends ``completed`` or
  ``failed`` with a fault code; one still running when the run drains is counted as
  ``wssim:Unfinished``.
* Per-message records for messages.csv are bounded by ``run.record_messages`` (the first
  ones started); the summary's statistics stream over every message (``stats.py``).
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import simpy

import sim
from sim.engine.attacks import Attacker, empty_stats, security_view
from sim.engine.costs import CostProfile, load_profile
from sim.engine.fidelity import (
    CLOSE,
    SCRIPTED_MESSAGES,
    History,
    ScriptCursor,
    record_scripts,
)
from sim.engine.model import Chain, MessageRecord, Network
from sim.engine.scenario import Scenario
from sim.engine.stats import MessageLog, MessageStats
from sim.engine.stores import attach_replay, new_store
from sim.errors import ScenarioError
from sim.protocol import build_strategy
from sim.protocol.api import CLIENT, AppDone, KeyLog, Send, Step
from sim.wire.keys import default_key_dir

DRAIN_S = 120.0
#: failures of the transport, not of the protocol: the client retries on a new session
TRANSPORT_FAULTS = ("wssim:NodeDown", "wssim:Timeout")


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
    #: the kept rows of messages.csv (a sequence of row dicts, stored compactly)
    messages: MessageLog = field(default_factory=MessageLog)
    nodes: list[dict] = field(default_factory=list)
    links: list[dict] = field(default_factory=list)
    #: the load over time (timeseries.csv): per time bin, each role's farm (node ``<role>-*``)
    #: and, for farms of up to ``SERIES_NODES`` nodes, each node
    timeseries: list[dict] = field(default_factory=list)
    partial: bool = False
    wall_s: float = 0.0
    seed_entropy: int = 0


# --- one replication ---------------------------------------------------------------------


class Replication:
    """One replication: the sessions of every strategy given (one, or several sharing the
    topology in a mixed run) on one SimPy environment."""

    def __init__(
        self,
        scenario: Scenario,
        strategies: dict,
        profile: CostProfile,
        seed: np.random.SeedSequence,
        fidelity: str,
        scripts: dict | None,
        tracer: Tracer | None,
        max_sessions: int | None,
        progress: Callable[[float, int], None] | None,
    ):
        self.scenario = scenario
        #: strategy name -> Strategy; a mixed run has several, drawn by client class
        self.strategies = strategies
        self.name = "+".join(strategies)
        self.fidelity = fidelity
        #: replay: strategy name -> payload size -> Scripts
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
        roles = tuple(dict.fromkeys(r for s in strategies.values() for r in s.roles))
        self.network = Network(
            self.env,
            scenario,
            roles,
            np.random.default_rng(streams[1]),
            profile,
            memo_steps=fidelity != "full",
        )
        if tracer is not None:
            self.network.fold = False  # trace every message at its own time, in order
        #: messages kept for messages.csv (at most run.record_messages; the statistics see all)
        self.records: list[MessageRecord] = []
        self.stats = {
            name: MessageStats(scenario.run.warmup_s, scenario.run.duration_s)
            for name in strategies
        }
        self.started = 0
        self.trace_seq = 0
        #: the keys of the sessions running now, and (time, count) when too many of them
        #: stopped the arrivals
        self.live: set[int] = set()
        self.overload: tuple[float, int] | None = None
        workload = scenario.workload
        names = [None, *sorted(workload.classes)]
        self.lengths = {c: workload.table("messages_per_session", c) for c in names}
        self.sizes = {c: workload.table("payload_bytes", c) for c in names}
        self.classes = None
        if workload.classes:
            shares = np.array([workload.classes[c].share for c in names[1:]])
            self.classes = (names[1:], shares / shares.sum())
        #: per strategy and role, how long a node keeps a session's state unused
        self.idle = {
            name: {role: strategy.idle_timeout(role) for role in strategy.roles}
            for name, strategy in strategies.items()
        }
        #: farm-wide shared state per (role, strategy) (survives a node restart)
        self.shared: dict[tuple[str, str], object] = {}
        if fidelity != "full":  # see what a context cache full to capacity would evict
            for name, strategy in strategies.items():
                for role in strategy.roles:
                    capacity = strategy.context_capacity(role)
                    if capacity is not None:
                        self.network.watch_contexts(
                            name, role, capacity, strategy.idle_timeout(role), self.live
                        )
        #: full fidelity: the replay store a farm shares per (role, strategy), None where
        #: each node keeps its own (``topology.<role>.shared_replay_cache``)
        self.replay_stores: dict[tuple[str, str], object] = {}
        if fidelity == "full":
            for farm in self.network.farms.values():
                spec = getattr(scenario.topology, farm.role)
                for name, strategy in strategies.items():
                    if farm.role not in strategy.roles:
                        continue
                    shared = strategy.shared_state(farm.role) if spec.shared_cache else None
                    self.shared[farm.role, name] = shared
                    store = new_store(remote=True) if spec.shared_replay_cache else None
                    self.replay_stores[farm.role, name] = store
                    for node in farm.nodes:
                        node.engines[name] = engine = strategy.server(
                            farm.role, node.name, shared=shared
                        )
                        attach_replay(engine, store)
            if scenario.adversary is not None:
                self.network.attacker = Attacker(self.network, strategies)

    # sessions ----------------------------------------------------------------------------
    def _session(self, key: int):
        self.live.add(key)
        try:
            yield from self._session_messages(key)
        finally:
            self.live.discard(key)

    def _session_messages(self, key: int):
        workload = self.scenario.workload
        client_node = self.network.client_node(key % self.scenario.topology.client.nodes)
        client_class = None
        if self.classes:
            names, shares = self.classes
            client_class = names[int(self.arrivals.choice(len(names), p=shares))]
        name = (
            self.scenario.class_strategy(client_class)
            if self.scenario.mixed
            else next(iter(self.strategies))
        )
        strategy = self.strategies[name]
        stats = self.stats[name]
        full = self.fidelity == "full"
        engine = strategy.client(f"client-{key}") if full else History()
        tls_open: set[str] = set()
        history: dict[str, tuple[str, int, float]] = {}
        chain = Chain(self.network, key, client_node, None, None, tls_open, history)
        chain.strategy = name
        chain.idle = self.idle[name]
        position = 0  # messages of the current protocol session (reset on transport failure)
        lengths, weights = self.lengths[client_class]
        if workload.session_length == "geometric":
            length = int(self.arrivals.geometric(1.0 / workload.mean_messages(client_class)))
        elif len(lengths) == 1:
            length = lengths[0]
        else:
            length = int(lengths[self.arrivals.choice(len(lengths), p=weights)])
        # Drawn when the session starts, so every strategy sees the same sizes (common
        # random numbers); a small discrete set keeps replay exact (one script set a size).
        sizes, weights = self.sizes[client_class]
        if len(sizes) == 1:
            drawn = None
            size = sizes[0]
        else:
            drawn = self.arrivals.choice(len(sizes), size=length, p=weights)
        for index in range(length):
            if self._stop():
                break
            self.started += 1
            record = MessageRecord(
                key, index, self.env.now, client_class=client_class or "default", strategy=name
            )
            stats.start(record)
            if len(self.records) < self.scenario.run.record_messages:
                self.records.append(record)
            if drawn is not None:
                size = sizes[drawn[index]]
            while True:
                first, cursor = self._begin(chain, engine, record, position, index, size)
                yield from chain.run(client_node, first)
                if cursor is not None:
                    engine.add(cursor)
                result = chain.result
                position += 1
                if not isinstance(result, AppDone):
                    record.ok, record.fault = False, "wssim:NoResult"
                    break
                record.ok, record.fault = result.ok, result.fault
                record.recoveries += result.recoveries
                if result.ok or result.fault not in TRANSPORT_FAULTS:
                    break
                # A transport failure faults the client's channel (as WCF's does): the client
                # drops its session state and starts a new session, on any node.
                engine = strategy.client(f"client-{key}") if full else History()
                tls_open.clear()
                history.clear()
                position = 0
                if record.retries >= workload.retries or self._stop():
                    break
                record.retries += 1
            record.end = self.env.now
            stats.finish(record)
            record.op_steps = []  # counted: a kept record need not hold them
            if index + 1 < length and workload.message_gap_s:
                yield self.env.timeout(workload.message_gap_s)
        if position:
            first, _ = self._begin(chain, engine, None, CLOSE, CLOSE, sizes[0])
            yield from chain.run(client_node, first)

    def _stop(self) -> bool:
        run = self.scenario.run
        if self.env.now >= run.duration_s:
            return True
        return run.max_messages is not None and self.started >= run.max_messages

    def _begin(
        self, chain: Chain, engine, record, position: int, seq: int, size: int
    ) -> tuple[Step, ScriptCursor | None]:
        """Set ``chain`` up for one application message (or the close) and return the
        client's first step (``chain.run`` then follows it to its end) and, in replay, the
        cursor. ``engine`` is the client engine (full) or the session's History (replay)."""
        cursor = None
        now = self.env.now + chain.client.skew  # the client's clock
        if self.fidelity == "full":
            if record is not None:
                first = engine.request(_payload(size, chain.session_key, seq), now=now)
            else:
                first = engine.close(now=now)

            def handle(node, send, sender, t, fresh):
                self._trace(sender, node.name, send)
                target = engine if node.role == CLIENT else node.engines[chain.strategy]
                return target.receive(send.data, sender=sender, now=t)

            chain.engine = engine
        else:
            cursor = ScriptCursor(
                self.scripts[chain.strategy][size],
                position,
                chain.client.skew,
                engine.prior,
                now >= engine.due,
                now,
            )
            first = cursor.origin
            if self.tracer is None:
                handle = cursor.handle
            else:

                def handle(node, send, sender, t, fresh):
                    self._trace(sender, node.name, send)
                    return cursor.next(node, fresh)

        chain.begin(record, handle)
        return first, cursor

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
            if len(self.live) >= self.scenario.run.max_in_flight_sessions:
                self.overload = (self.env.now, len(self.live))
                return  # an unstable system: its backlog would only grow
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
            if fault.kind in ("sts_crash", "provider_restart"):
                # The node's process dies: work in flight on it fails, its in-memory state
                # (security contexts, replay caches) is lost; a farm-wide cache survives.
                role = "sts" if fault.kind == "sts_crash" else "provider"
                for node in nodes:
                    if node.role == role:
                        node.down_until = self.env.now + fault.duration_s
                        node.epoch += 1
                        for name in node.engines:
                            node.engines[name] = engine = self.strategies[name].server(
                                node.role, node.name, shared=self.shared.get((node.role, name))
                            )
                            attach_replay(engine, self.replay_stores.get((node.role, name)))
            elif fault.kind == "clock_skew":
                for node in nodes:
                    node.skew = fault.skew_s
            elif fault.kind == "link_outage":
                a, _, b = (fault.link or "client-provider").partition("-")
                for key in ((a, b), (b, a)):
                    self.network.wire(*key).outage(self.env.now, self.env.now + fault.duration_s)

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


def _summarize_replication(rep: Replication) -> dict[str, dict]:
    """Each strategy's summary of one replication; in a mixed run, ``roles`` describe the
    farms every strategy shares."""
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
        units = sum(n.hsm_units for n in farm.nodes)
        if units:
            roles[farm.role]["hsm_utilization"] = sum(n.hsm_busy for n in farm.nodes) / (
                units * measured
            )
    summaries = {}
    for name, strategy in rep.strategies.items():
        summary = rep.stats[name].summary(measured)
        summary["roles"] = {role: roles[role] for role in strategy.roles}
        if rep.scenario.adversary is not None:
            summary["attacks"] = {
                attack: rep.network.attacks.get(attack, empty_stats(attack))
                for attack in rep.scenario.adversary.attacks
            }
        summaries[name] = summary
    return summaries


def _half_width(replications: list[dict], metric: str = "latency_ms.mean") -> float:
    """95% confidence half-width (Student t) of ``metric`` (a dotted summary key) over
    replications."""
    keys = metric.split(".")
    values = []
    for summary in replications:
        for key in keys:
            summary = summary[key]
        values.append(summary)
    samples = np.array(values, dtype=float)
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
    workers: int = 1,
) -> SimulationResult:
    """Run ``scenario``; arguments given override its ``run`` values. Ctrl-C returns what was
    measured so far, marked partial.

    ``workers`` > 1 runs the strategies' replications in that many processes (not with a
    ``tracer`` or ``keylog``, which stay in this process); the result is the same as with
    one, replication for replication, and ``progress`` then ticks once a replication."""
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
        #: what makes the figures describe an overloaded system (see ``_warnings``)
        "warnings": [],
    }
    result = SimulationResult(summary, seed_entropy=root.entropy)
    names = strategies or scenario.strategies
    if scenario.mixed and set(names) != set(scenario.strategies):
        raise ScenarioError(
            "strategies", "a mixed run runs all its classes' strategies together, not a subset"
        )
    target = scenario.run.target_ci95_ms
    limit = scenario.run.max_replications if target is not None else replications
    # Replication i always gets the same stream, however many replications end up running.
    rep_seeds = [np.random.SeedSequence(root.entropy, spawn_key=(i,)) for i in range(limit)]
    # One group per strategy (compared side by side on the same streams), or, in a mixed
    # run, one group holding every strategy on the shared topology.
    groups = [list(names)] if scenario.mixed else [[name] for name in names]
    if scenario.mixed:
        summary["mixed"] = True
        summary["classes"] = {
            name: {"strategy": c.strategy, "share": c.share}
            for name, c in sorted(scenario.workload.classes.items())
        }
    parallel = (
        workers > 1 and tracer is None and keylog is None and len(rep_seeds) * len(groups) > 1
    )
    ahead = None
    if parallel:
        # Every (strategy, replication) is a job, run ahead in this order on the workers:
        # strategies compared side by side run side by side too.
        ahead = _Ahead(
            workers,
            [
                (scenario, group, profile, rep_seed, fidelity, max_sessions, key_dir, i)
                for group in groups
                for i, rep_seed in enumerate(rep_seeds)
            ],
        )
    try:
        for position, group in enumerate(groups):
            label = "+".join(group)
            per_rep: list[dict[str, dict]] = []

            def done(index: int, outcome: _Outcome, label=label, per_rep=per_rep) -> None:
                per_rep.append(outcome.summaries)
                result.messages.extend(outcome.part.messages)
                result.nodes += outcome.part.nodes
                result.links += outcome.part.links
                result.timeseries += outcome.part.timeseries
                for warning in outcome.warnings:
                    if warning not in summary["warnings"]:
                        summary["warnings"].append(warning)

            def enough(count: int, group=group, per_rep=per_rep) -> bool:
                """The stopping rule, before replication ``count`` (0-based) would run."""
                return (
                    target is not None
                    and count >= 3
                    and max(
                        _half_width([r[name] for r in per_rep[:count]], scenario.run.ci_metric)
                        for name in group
                    )
                    <= target
                )

            if ahead is not None:
                for index in range(len(rep_seeds)):
                    if enough(index):
                        break
                    outcome = ahead.get(position * len(rep_seeds) + index)
                    done(index, outcome)
                    if progress is not None:
                        count = sum(s["app_messages"] for s in outcome.summaries.values())
                        end = scenario.run.duration_s
                        progress(ProgressInfo(end, end, count, index + 1, replications, label))
            else:
                built, scripts = _prepare(scenario, group, fidelity, key_dir, keylog)
                for index, rep_seed in enumerate(rep_seeds):
                    if enough(index):
                        break
                    tick = None
                    if progress is not None:

                        def tick(t, count, index=index, label=label):
                            progress(
                                ProgressInfo(
                                    t,
                                    scenario.run.duration_s,
                                    count,
                                    index + 1,
                                    replications,
                                    label,
                                )
                            )

                    # The same seed for every strategy: common random numbers, a fair
                    # comparison.
                    rep = Replication(
                        scenario,
                        built,
                        profile,
                        rep_seed,
                        fidelity,
                        scripts,
                        tracer,
                        max_sessions,
                        tick,
                    )
                    rep.run()
                    done(index, _outcome(rep, index, label))
            for name in group:
                summary["strategies"][name] = _combine([r[name] for r in per_rep])
            summary["replications"] = (
                max(summary["replications"], len(per_rep)) if target is None else len(per_rep)
            )
    except KeyboardInterrupt:
        result.partial = True
    finally:
        if ahead is not None:
            ahead.close()
    if scenario.adversary is not None:
        #: the security table: per strategy and attack, what got through
        summary["security"] = security_view(summary["strategies"])
    result.wall_s = time.perf_counter() - started
    return result


@dataclass
class _Outcome:
    """What one replication adds to a result (picklable: it may come from a worker)."""

    summaries: dict[str, dict]
    part: SimulationResult
    warnings: list[str]


def _outcome(rep: Replication, index: int, label: str) -> _Outcome:
    part = SimulationResult({})
    _collect(part, rep, index, label)
    return _Outcome(_summarize_replication(rep), part, _warnings(rep, label))


#: per worker process: strategies built and replay scripts recorded, by configuration
_PREPARED: dict[tuple, tuple[dict, dict | None]] = {}


def _replicate(job: tuple) -> _Outcome:
    """Run one replication in a worker process (see ``simulate(workers=...)``); an error
    that would not survive the trip back (unpicklable) comes back as a RuntimeError, as the
    pool would otherwise wait for it forever."""
    try:
        return _replicate_here(job)
    except Exception as error:
        import pickle

        try:
            pickle.loads(pickle.dumps(error))
        except Exception:
            raise RuntimeError(f"{type(error).__name__}: {error}") from None
        raise


def _prepared(job: tuple) -> tuple[dict, dict | None]:
    """``_prepare`` for a job, once per process and configuration."""
    scenario, group, _, _, fidelity, _, key_dir, _ = job
    key = (scenario.model_dump_json(), tuple(group), fidelity, str(key_dir))
    prepared = _PREPARED.get(key)
    if prepared is None:
        prepared = _PREPARED[key] = _prepare(scenario, group, fidelity, key_dir)
    return prepared


def _replicate_here(job: tuple) -> _Outcome:
    scenario, group, profile, rep_seed, fidelity, max_sessions, _, index = job
    built, scripts = _prepared(job)
    rep = Replication(
        scenario, built, profile, rep_seed, fidelity, scripts, None, max_sessions, None
    )
    rep.run()
    return _outcome(rep, index, "+".join(group))


class _Ahead:
    """Replication jobs on worker processes, asked for in order: asking for job ``k`` makes
    sure jobs ``k`` to ``k + workers - 1`` are running, so the workers stay busy while the
    outcomes are taken in order (the same result as a sequential run). Workers ignore
    Ctrl-C; this process stops them (``close``) when it stops."""

    def __init__(self, workers: int, jobs: list[tuple]) -> None:
        import multiprocessing

        # fork where the platform has it: workers inherit the loaded modules and keys
        methods = multiprocessing.get_all_start_methods()
        fork = "fork" in methods
        context = multiprocessing.get_context("fork" if fork else None)
        if fork:
            # Prepared here once, the strategies (and replay scripts) reach every worker
            # with the fork instead of being prepared again in each; frozen, the objects
            # made so far are left out of the workers' garbage collections, which would
            # otherwise write to (and so copy) every page they live on.
            for job in jobs:
                _prepared(job)
            gc.freeze()
        self.workers = min(workers, len(jobs))
        self.jobs = jobs
        try:
            self.pool = context.Pool(self.workers, initializer=_ignore_interrupts)
        except BaseException:
            gc.unfreeze()
            raise
        self.pending: dict[int, object] = {}

    def get(self, k: int) -> _Outcome:
        for j in range(k, min(k + self.workers, len(self.jobs))):
            if j not in self.pending:
                self.pending[j] = self.pool.apply_async(_replicate, (self.jobs[j],))
        return self.pending.pop(k).get()

    def close(self) -> None:
        """Stop the workers, and with them what is still running or queued (an interrupted
        run, or one its confidence target stopped early)."""
        self.pool.terminate()
        self.pool.join()
        gc.unfreeze()


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C to the main process, and die quietly when it stops them."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _prepare(
    scenario: Scenario, group: list[str], fidelity: str, key_dir, keylog: KeyLog | None = None
) -> tuple[dict, dict | None]:
    """The strategies of ``group`` built and, for replay fidelity, their scripts recorded."""
    built = {
        name: build_strategy(
            name, scenario.strategy_options.get(name, {}), keylog=keylog, key_dir=key_dir
        )
        for name in group
    }
    scripts = None
    if fidelity == "replay":
        scripts = {name: _record(scenario, strategy) for name, strategy in built.items()}
    return built, scripts


def _record(scenario: Scenario, strategy) -> dict:
    """Replay fidelity: the scripts of ``strategy``, per payload size the workload draws."""
    workload = scenario.workload
    geometric = workload.session_length == "geometric"
    longest = max(workload.all_values("messages_per_session"))
    topology = scenario.topology
    shared = {r for r in strategy.roles if getattr(topology, r).shared_cache}
    replay = {r for r in strategy.roles if getattr(topology, r).shared_replay_cache}
    return {
        size: record_scripts(
            strategy,
            SCRIPTED_MESSAGES if geometric else longest,
            _payload(size, 0, 0),
            shared,
            replay,
        )
        for size in workload.all_values("payload_bytes")
    }


def _collect(result: SimulationResult, rep: Replication, index: int, name: str) -> None:
    messages = result.messages
    for r in rep.records:
        messages.append_record(index, r.strategy or name, r)
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
    _collect_series(result, rep, index, name)
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


def _warnings(rep: Replication, label: str) -> list[str]:
    """Signs that the offered load exceeds the capacity, so that the figures depend on the
    run's length: arrivals stopped by too many sessions in flight; a farm's cores or HSMs
    saturated with a waiting line that keeps growing over the measured window; a link busy
    all the time."""
    run = rep.scenario.run
    found = []
    if rep.overload is not None:
        at, count = rep.overload
        found.append(
            f"{label}: {count:,} sessions in flight at t={at:,.1f} s "
            f"(run.max_in_flight_sessions): the offered load exceeds the capacity; "
            "arrivals stopped there"
        )
    for farm in rep.network.farms.values():
        nodes = farm.nodes
        width = nodes[0].bin_s
        bins = [k for k in range(len(nodes[0].series_busy)) if k * width >= run.warmup_s]
        if len(bins) < 8:
            continue
        resources = [("cores", "series_busy", "series_wait", sum(n.cores for n in nodes))]
        units = sum(n.hsm_units for n in nodes)
        if units:
            resources.append(("HSMs", "series_hsm", "series_hsm_wait", units))
        quarter = len(bins) // 4
        for name, busy_attr, wait_attr, capacity in resources:
            utilization = _series_mean(nodes, busy_attr, bins, width) / capacity
            first = _series_mean(nodes, wait_attr, bins[:quarter], width)
            last = _series_mean(nodes, wait_attr, bins[-quarter:], width)
            if utilization >= 0.98 and last > 1.25 * first + 1:
                found.append(
                    f"{label}: the {farm.role} farm's {name} are saturated "
                    f"({utilization:.0%} busy) and their waiting line grew from {first:,.0f} "
                    f"to {last:,.0f} jobs over the measured window: the offered load exceeds "
                    "the capacity, latencies grow with the run's length"
                )
    for (strategy, where), shadow in rep.network.shadows.items():
        if shadow.evicted:
            found.append(
                f"{label}: {where}'s {strategy} context cache (cache_capacity "
                f"{shadow.capacity:,}) is too small for the sessions running at once: it "
                f"would have evicted contexts still in use (at least {shadow.evicted:,} times), "
                "which replay fidelity does not model (such sessions meet wsc:BadContextToken "
                "and recover, or fail): run with fidelity full"
            )
    measured = run.duration_s - run.warmup_s
    for wire in rep.network.wires.values():
        if wire.busy / measured >= 0.98:
            found.append(
                f"{label}: the {wire.name} link is saturated ({wire.busy / measured:.0%} busy): "
                "messages queue at its sender"
            )
    return found


def _series_mean(nodes: list, attr: str, bins: list[int], width: float) -> float:
    """The mean over ``bins`` of the per-bin totals ``attr`` of ``nodes``, per second."""
    return sum(sum(getattr(n, attr)[k] for n in nodes) for k in bins) / (width * len(bins))


#: farms up to this size get one load series per node besides the farm's
SERIES_NODES = 32


def _collect_series(result: SimulationResult, rep: Replication, index: int, name: str) -> None:
    """Per time bin: utilization (busy core time / (cores x bin)), the mean waiting line
    (waiting time / bin) and, with HSMs, their utilization and waiting line, of each farm and
    of each node of a small farm."""
    for farm in rep.network.farms.values():
        nodes = farm.nodes
        width = nodes[0].bin_s
        groups = [(f"{farm.role}-*", nodes)]
        if len(nodes) <= SERIES_NODES:
            groups += [(node.name, [node]) for node in nodes]
        for label, members in groups:
            cores = sum(n.cores for n in members)
            units = sum(n.hsm_units for n in members)
            for k in range(len(members[0].series_busy)):
                busy = sum(n.series_busy[k] for n in members)
                wait = sum(n.series_wait[k] for n in members)
                hsm = sum(n.series_hsm[k] for n in members) if units else None
                hsm_wait = sum(n.series_hsm_wait[k] for n in members) if units else None
                result.timeseries.append(
                    {
                        "replication": index,
                        "strategy": name,
                        "node": label,
                        "role": farm.role,
                        "t_start_s": round(k * width, 6),
                        "t_end_s": round((k + 1) * width, 6),
                        "utilization": busy / (cores * width),
                        "mean_queue_len": wait / width,
                        "hsm_utilization": "" if hsm is None else hsm / (units * width),
                        "hsm_queue_len": "" if hsm_wait is None else hsm_wait / width,
                    }
                )


__all__ = ["ProgressInfo", "SimulationResult", "Tracer", "simulate"]
