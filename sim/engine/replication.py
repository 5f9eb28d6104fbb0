"""One replication: the sessions of a scenario's strategies on one SimPy environment.

Model choices (see also ``chain.py`` and ``fidelity.py``):

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

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np
import simpy

from sim.engine.arrivals import back_to_back, closed, open_arrivals
from sim.engine.capacity import MeteredChain, SessionSample
from sim.engine.chain import NODE_DOWN, TIMEOUT, Chain, MessageRecord
from sim.engine.costs import CostProfile
from sim.engine.fidelity import CLOSE, Fidelity, History, ScriptCursor
from sim.engine.loop import run_until
from sim.engine.message_log import MessageLog
from sim.engine.network import Network
from sim.engine.preparation import payload
from sim.engine.replay_session import replay_session
from sim.engine.resources import Node
from sim.engine.scenario import Fault, Scenario
from sim.engine.shadows import ContextShadows
from sim.engine.stats import message_stats
from sim.engine.stores import attach_replay, new_store
from sim.protocol.api import CLIENT, AppDone, Send, SessionClosed, Step

if TYPE_CHECKING:
    from sim.engine.attacks import Attacker

#: how long a run goes on after the measured window, for the messages started in it
DRAIN_S = 120.0
#: failures of the transport, not of the protocol: the client retries on a new session
TRANSPORT_FAULTS = (NODE_DOWN, TIMEOUT)


class Tracer(Protocol):
    """What a run tells its tracer of each message (``report.trace.TraceWriter``)."""

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


class Session(NamedTuple):
    """What a new session draws and holds (``Replication.open_session``)."""

    client: Node
    #: its client class ("default" without classes), its strategy's name
    label: str
    strategy: str
    #: whether it measures its service demand (capacity.py)
    metered: bool
    chain: Chain
    #: how many application messages it sends, the payload sizes it draws from, and the
    #: index of each message's size into them (None: one size)
    length: int
    sizes: list[int]
    drawn: list[int] | None


@dataclass(frozen=True)
class ProgressInfo:
    sim_time_s: float
    end_time_s: float
    app_messages: int
    replication: int
    replications: int
    strategy: str


class Replication:
    """One replication: the sessions of every strategy given (one, or several sharing the
    topology in a mixed run) on one SimPy environment. ``progress`` is called with (the
    simulated time, the messages started) fifty times a run."""

    def __init__(
        self,
        scenario: Scenario,
        strategies: dict,
        profile: CostProfile,
        seed: np.random.SeedSequence,
        fidelity: Fidelity,
        *,
        scripts: dict | None = None,
        tracer: Tracer | None = None,
        max_sessions: int | None = None,
        progress: Callable[[float, int], None] | None = None,
    ):
        self.scenario = scenario
        #: strategy name -> Strategy; a mixed run has several, drawn by client class
        self.strategies = strategies
        self.name = "+".join(strategies)
        self.fidelity = fidelity
        self.full = fidelity is Fidelity.FULL
        #: whether client classes carry their strategies (read once: a property per session)
        self.mixed = scenario.mixed
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
            memo_steps=not self.full,
        )
        if tracer is not None:
            self.network.fold = False  # trace every message at its own time, in order
        #: the rows of messages.csv, each added as its message starts (at most
        #: run.record_messages; the statistics see all) and filled in as it ends
        self.log = MessageLog()
        self.stats = {name: message_stats(scenario.run) for name in strategies}
        #: replay's sessions run as one generator each (``replay_session``), but with a
        #: tracer or an automatic warm-up (which keeps every message's record)
        self.fast = not self.full and tracer is None and scenario.run.warmup != "mser5"
        self.started = 0
        #: when sessions stop starting messages (``_stop``)
        self.end = scenario.run.duration_s
        self.max_messages = scenario.run.max_messages
        #: which sessions measure their service demand (capacity.py)
        self.metered = SessionSample(scenario)
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
        #: replay fidelity: what context caches full to capacity would evict
        self.shadows = ContextShadows()
        #: full fidelity: the replay store a farm shares per (role, strategy), None where
        #: each node keeps its own (``topology.<role>.shared_replay_cache``)
        self.replay_stores: dict[tuple[str, str], object] = {}
        #: full fidelity with an adversary: it watches every chain's deliveries
        self.attacker: Attacker | None = None
        if self.full:
            self._build_servers()
            if scenario.adversary is not None:
                # imported here: the adversary's machinery costs every other run its import
                from sim.engine.attacks import Attacker

                self.attacker = Attacker(self.network, strategies)
        else:
            self._watch_contexts()

    def _watch_contexts(self) -> None:
        """Replay: shadow the context caches of capacity-bound roles."""
        for name, strategy in self.strategies.items():
            for role in strategy.roles:
                capacity = strategy.context_capacity(role)
                farm = self.network.farms.get(role)
                if capacity is not None and farm is not None:
                    shared = getattr(self.scenario.topology, role).shared_cache
                    self.shadows.watch(
                        farm, name, capacity, strategy.idle_timeout(role), self.live, shared
                    )

    def _build_servers(self) -> None:
        """Full fidelity: each server node's engine per strategy, with its farm's shared
        state and replay store."""
        for farm in self.network.farms.values():
            spec = getattr(self.scenario.topology, farm.role)
            for name, strategy in self.strategies.items():
                if farm.role not in strategy.roles:
                    continue
                shared = strategy.shared_state(farm.role) if spec.shared_cache else None
                self.shared[farm.role, name] = shared
                store = new_store(remote=True) if spec.shared_replay_cache else None
                self.replay_stores[farm.role, name] = store
                for node in farm.nodes:
                    self._start_engine(node, name)

    def _start_engine(self, node: Node, name: str) -> None:
        """A new server engine of strategy ``name`` on ``node`` (at start or restart)."""
        key = (node.role, name)
        engine = self.strategies[name].server(node.role, node.name, shared=self.shared.get(key))
        attach_replay(engine, self.replay_stores.get(key))
        node.engines[name] = engine

    # sessions ----------------------------------------------------------------------------
    def _session(self, key: int) -> Generator:
        """Generator: session ``key``'s application messages, then its close."""
        if self.fast:
            return replay_session(self, key)
        return self._general_session(key)

    def open_session(self, key: int) -> Session:
        """What a new session ``key`` draws and holds, its chain made."""
        client_node = self.network.client_node(key % self.scenario.topology.client.nodes)
        client_class = self._draw_class()
        name = (
            self.scenario.class_strategy(client_class)
            if self.mixed
            else next(iter(self.strategies))
        )
        metered = self.metered(key, self.env.now)  # a sample of the window's (capacity.py)
        chain = (MeteredChain if metered else Chain)(
            self.network,
            key,
            client_node,
            name,
            self.idle[name],
            shadows=self.shadows,
            watcher=self.attacker,
        )
        length = self._draw_length(client_class)
        # Drawn when the session starts, so every strategy sees the same sizes (common
        # random numbers); a small discrete set keeps replay exact (one script set a size).
        sizes, weights = self.sizes[client_class]
        drawn = None
        if len(sizes) > 1:
            drawn = self.arrivals.choice(len(sizes), size=length, p=weights).tolist()
        return Session(
            client_node, client_class or "default", name, metered, chain, length, sizes, drawn
        )

    def _general_session(self, key: int):
        """Generator: a session's application messages, then its close, each message's
        chain followed by ``Chain.run`` (full fidelity, or replay traced or keeping every
        record)."""
        self.live.add(key)
        try:
            env = self.env
            workload = self.scenario.workload
            record_limit = self.scenario.run.record_messages
            log = self.log
            session = self.open_session(key)
            client_node, label, name = session.client, session.label, session.strategy
            metered, chain, length = session.metered, session.chain, session.length
            sizes, drawn = session.sizes, session.drawn
            strategy = self.strategies[name]
            stats = self.stats[name]
            engine = self._new_client(strategy, key)
            position = 0  # messages of the current protocol session (reset on transport failure)
            sent = 0  # application messages started
            end, max_messages = self.end, self.max_messages
            for index in range(length):
                # ``_stop`` inlined; ``env._now`` is ``env.now`` without the property's call
                if env._now >= end or (max_messages is not None and self.started >= max_messages):
                    break
                self.started += 1
                sent = index + 1
                record = MessageRecord(key, index, env._now, 0.0, label, name)
                stats.start(record)
                row = -1
                if len(log) < record_limit:
                    refs = (log.ref(name), log.ref(label), log.ref(""))
                    row = log.open_row(key, index, record.start, refs)
                size = sizes[0] if drawn is None else sizes[drawn[index]]
                while True:
                    first, cursor = self._begin(chain, engine, record, position, index, size)
                    yield from chain.run(client_node, first)
                    if chain.connected:
                        chain.release()
                    if cursor is not None:
                        result = chain.result
                        engine.add(cursor, isinstance(result, AppDone) and result.ok)
                    position += 1
                    if not self._settle(record, chain.result):
                        break
                    # A transport failure faults the client's channel (as WCF's does): the
                    # client drops its session state and starts a new session, on any node.
                    engine = self._new_client(strategy, key)
                    chain.new_session()
                    position = 0
                    if record.retries >= workload.retries or self._stop():
                        break
                    record.retries += 1
                record.end = env._now
                stats.finish(record)
                if row >= 0:
                    log.close_row(
                        row,
                        record.end,
                        record.ok,
                        record.fault,
                        record.request_bytes,
                        record.response_bytes,
                        record.token_bytes,
                        record.sts_exchanges,
                        record.retries,
                        record.recoveries,
                    )
                record.op_steps = []  # counted: a kept record need not hold them
                if index + 1 < length and workload.message_gap_s:
                    yield env.timeout(workload.message_gap_s)
            if position:
                first, _ = self._begin(chain, engine, None, CLOSE, CLOSE, sizes[0])
                yield from chain.run(client_node, first)
                if chain.connected:
                    chain.release()
            if metered and sent == length:  # a whole session: its close included
                stats.add_demand(chain.demand, sent)
        finally:
            self.live.discard(key)

    def _draw_class(self) -> str | None:
        """The client class of a new session (None without classes)."""
        if not self.classes:
            return None
        names, shares = self.classes
        return names[int(self.arrivals.choice(len(names), p=shares))]

    def _draw_length(self, client_class: str | None) -> int:
        """How many application messages a new session sends."""
        workload = self.scenario.workload
        lengths, weights = self.lengths[client_class]
        if workload.session_length == "geometric":
            return int(self.arrivals.geometric(1.0 / workload.mean_messages(client_class)))
        if len(lengths) == 1:
            return lengths[0]
        return int(lengths[self.arrivals.choice(len(lengths), p=weights)])

    def _new_client(self, strategy, key: int):
        """A new protocol session's client: its engine (full) or its History (replay)."""
        return strategy.client(f"client-{key}") if self.full else History()

    def _settle(self, record: MessageRecord, result: AppDone | SessionClosed | None) -> bool:
        """Write the chain's ``result`` into ``record``; whether the message failed in the
        transport (the client then retries it on a new protocol session)."""
        if not isinstance(result, AppDone):
            record.ok, record.fault = False, "wssim:NoResult"
            return False
        record.ok, record.fault = result.ok, result.fault
        record.recoveries += result.recoveries
        return not result.ok and result.fault in TRANSPORT_FAULTS

    def _stop(self) -> bool:
        if self.env.now >= self.end:
            return True
        return self.max_messages is not None and self.started >= self.max_messages

    def _begin(
        self, chain: Chain, engine, record, position: int, seq: int, size: int
    ) -> tuple[Step, ScriptCursor | None]:
        """Set ``chain`` up for one application message (or the close) and return the
        client's first step (``chain.run`` then follows it to its end) and, in replay, the
        cursor. ``engine`` is the client engine (full) or the session's History (replay)."""
        skew = chain.client.skew
        now = self.env._now + skew  # the client's clock (``env.now`` without its call)
        if self.full:
            if record is not None:
                first = engine.request(payload(size, chain.session_key, seq), now=now)
            else:
                first = engine.close(now=now)

            def handle(node, send, sender, t, fresh):
                self._trace(sender, node.name, send)
                target = engine if node.role == CLIENT else node.engines[chain.strategy]
                return target.receive(send.data, sender=sender, now=t)

            chain.begin(record, handle, engine)
            return first, None
        cursor = ScriptCursor(
            self.scripts[chain.strategy][size], position, skew, engine.prior, now >= engine.due, now
        )
        if self.tracer is None:
            chain.begin(record, cursor.handle, cursor=cursor)
        else:

            def traced(node, send, sender, t, fresh):
                self._trace(sender, node.name, send)
                return cursor.next(node, fresh)

            chain.begin(record, traced)
        return cursor.script.origin, cursor

    def _trace(self, sender: str, receiver: str, send: Send) -> None:
        if self.tracer is not None:
            self.trace_seq += 1
            self.tracer.on_message(
                self.trace_seq, self.env.now, sender, receiver, send.action, send.data, send.fault
            )

    # faults ------------------------------------------------------------------------------
    def _faults(self):
        for fault in sorted(self.scenario.faults, key=lambda f: f.at_s):
            if fault.at_s > self.env.now:
                yield self.env.timeout(fault.at_s - self.env.now)
            nodes = [n for n in self.network.nodes.values() if fault.node in (None, n.name, n.role)]
            if fault.kind in ("sts_crash", "provider_restart"):
                self._crash(fault, nodes)
            elif fault.kind == "clock_skew":
                for node in nodes:
                    node.skew = fault.skew_s
                if fault.node is None or fault.node.startswith(CLIENT):
                    self.network.skew_clients(fault.node, fault.skew_s)
            elif fault.kind == "link_outage":
                a, _, b = (fault.link or "client-provider").partition("-")
                for key in ((a, b), (b, a)):
                    self.network.wire(*key).outage(self.env.now, self.env.now + fault.duration_s)

    def _crash(self, fault: Fault, nodes: list[Node]) -> None:
        """The node's process dies: work in flight on it fails, its in-memory state
        (security contexts, replay caches) is lost; a farm-wide cache survives."""
        role = "sts" if fault.kind == "sts_crash" else "provider"
        for node in nodes:
            if node.role == role:
                self.network.farms[role].take_down(node, self.env.now + fault.duration_s)
                node.epoch += 1
                for name in node.engines:
                    self._start_engine(node, name)

    def _progress_ticks(self):
        run = self.scenario.run
        step = max(run.duration_s / 50, 0.001)
        while self.env.now < run.duration_s:
            yield self.env.timeout(step)
            self.progress(self.env.now, self.started)

    def run(self) -> None:
        workload = self.scenario.workload
        if workload.rate is not None:
            self.env.process(open_arrivals(self, workload.rate))
        elif workload.think_time_s:
            first_now = workload.first_session == "at_start"
            self.env.process(closed(self, workload.think_time_s, first_now))
        else:
            for user in range(workload.users):
                self.env.process(back_to_back(self, user))
        if self.scenario.faults:
            self.env.process(self._faults())
        if self.progress is not None:
            self.env.process(self._progress_ticks())
        # replay makes no reference cycles: the collector would only walk the records
        run_until(self.env, self.scenario.run.duration_s + DRAIN_S, collect_cycles=self.full)
