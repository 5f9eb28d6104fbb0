"""The SimPy model: nodes with CPU cores, links, farms behind balancers, and the sessions
that drive protocol engines (``full`` fidelity) or recorded scripts (``replay``) through
them. Protocol engines never see SimPy: they get bytes and ``now`` and return Steps."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from heapq import heapreplace
from typing import NamedTuple

import numpy as np
import simpy
from simpy.events import Timeout

from sim.engine.costs import CostProfile
from sim.engine.scenario import Link, Scenario
from sim.protocol.api import CLIENT, AppDone, Send, SessionClosed, Step, role_of

#: time bins of the per-node load series (utilization and waiting line over the run)
SERIES_BINS = 100

#: the ledger of one end of a TLS handshake (RSA-2048 server key)
TLS_HANDSHAKE = (("tls_handshake", 2048),)


class Node:
    """A machine: ``cores`` served first come, first served, with busy-time and queue
    accounting.

    Service times are known when a job arrives, so each job's start follows the
    Kiefer-Wolfowitz recursion of the FCFS multi-server queue: it takes the core that frees
    first (``max(now, earliest free time)``). The cores are a heap of free times and a job
    costs one SimPy event (its end) instead of a Resource's request, timeout and release.
    The waiting line's integral (``queue_area``) is the sum of the jobs' waits. Busy time,
    waits, requests and service are counted within the measured window only (``account``),
    so that utilization (busy / (cores x window)) never exceeds 1, however long the run
    drains after the window.
    """

    __slots__ = (
        "bin_s",
        "busy",
        "connections",
        "contended",
        "cores",
        "down_until",
        "engines",
        "env",
        "epoch",
        "free",
        "hsm_busy",
        "hsm_free",
        "hsm_op_s",
        "hsm_units",
        "name",
        "queue_area",
        "requests",
        "role",
        "series_busy",
        "series_hsm",
        "series_hsm_wait",
        "series_wait",
        "service",
        "skew",
    )

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        role: str,
        cores: int,
        contended: bool = True,
        hsm_units: int = 0,
        hsm_op_s: float = 0.0,
        bin_s: float = 0.0,
    ) -> None:
        self.env = env
        self.name = name
        self.role = role
        self.cores = cores
        self.contended = contended
        #: when each core finishes the jobs booked on it so far (a heap; empty: uncontended)
        self.free: list[float] = [0.0] * cores if contended else []
        self.busy = 0.0  # core-seconds within the measured window
        self.requests = 0  # steps ending within the window
        self.service = 0.0  # their service seconds
        self.queue_area = 0.0  # integral of the waiting line within the window
        self.down_until = -1.0
        #: full fidelity: the protocol engine of this node, per strategy it serves
        self.engines: dict[str, object] = {}
        self.connections = 0  # for least-connections balancing
        self.skew = 0.0
        #: bumped when the node restarts and loses its per-session state
        self.epoch = 0
        # optional dedicated crypto hardware for RSA private-key operations (FCFS units)
        self.hsm_units = hsm_units
        self.hsm_free: list[float] = [0.0] * hsm_units
        self.hsm_op_s = hsm_op_s
        self.hsm_busy = 0.0
        #: with ``bin_s``: busy core-seconds and waiting-line seconds per time bin of the run
        #: (``SERIES_BINS`` bins from 0), the load over time
        self.bin_s = bin_s
        self.series_busy = [0.0] * SERIES_BINS if bin_s > 0 and contended else None
        self.series_wait = [0.0] * SERIES_BINS if bin_s > 0 and contended else None
        self.series_hsm = [0.0] * SERIES_BINS if bin_s > 0 and hsm_units else None
        self.series_hsm_wait = [0.0] * SERIES_BINS if bin_s > 0 and hsm_units else None

    def book(self, seconds: float) -> float:
        """Book a core for a job of ``seconds`` arriving now; returns when it starts."""
        now = self.env.now
        free = self.free
        if not free:
            return now
        earliest = free[0]
        start = earliest if earliest > now else now
        heapreplace(free, start + seconds)
        return start

    def account(
        self, arrival: float, start: float, seconds: float, warmup: float, until: float = math.inf
    ) -> None:
        """Count a job that arrived at ``arrival``, starts at ``start`` and runs ``seconds``,
        within the measured window [``warmup``, ``until``] only.

        Its busy core time (start to end) and its wait in line (arrival to start) are clipped
        to the window at both ends; the job itself (``requests``, ``service``) counts in the
        window in which it ends (``warmup < end <= until``). Everything is known when the
        job is booked, so it is counted then: a job still waiting when the run stops (an
        overloaded node) has its wait inside the window counted all the same."""
        end = start + seconds
        self.busy += _overlap(start, end, warmup, until)
        if warmup < end <= until:
            self.requests += 1
            self.service += seconds
        if start > arrival:  # it waited in line
            self.queue_area += _overlap(arrival, start, warmup, until)
        if self.series_busy is not None:
            _spread(self.series_busy, start, end, self.bin_s)
            if start > arrival:
                _spread(self.series_wait, arrival, start, self.bin_s)

    def work(self, seconds: float, warmup: float, until: float = math.inf):
        """Generator: occupy one core for ``seconds`` of CPU time (queueing first when all
        are busy), counted within the window [``warmup``, ``until``] (``account``)."""
        arrival = self.env.now
        start = self.book(seconds)
        self.account(arrival, start, seconds, warmup, until)
        yield self.env.timeout(start + seconds - arrival)

    def hsm_work(self, operations: int, warmup: float, until: float = math.inf):
        """Generator: RSA private-key operations on the HSM, one unit each, FCFS; the
        units' busy time is counted within the window [``warmup``, ``until``]."""
        env = self.env
        units = self.hsm_free
        op_s = self.hsm_op_s
        for _ in range(operations):
            now = env.now
            earliest = units[0]
            start = earliest if earliest > now else now
            end = start + op_s
            heapreplace(units, end)
            self.hsm_busy += _overlap(start, end, warmup, until)
            if self.series_hsm is not None:
                _spread(self.series_hsm, start, end, self.bin_s)
                if start > now:
                    _spread(self.series_hsm_wait, now, start, self.bin_s)
            yield env.timeout(end - now)


def _overlap(a: float, b: float, low: float, high: float) -> float:
    """How much of [a, b] lies inside [low, high]."""
    a = a if a > low else low
    b = b if b < high else high
    return b - a if b > a else 0.0


def _spread(series: list[float], a: float, b: float, width: float) -> None:
    """Add the interval [a, b) to the per-bin totals of ``series`` (bins of ``width``)."""
    last = len(series) - 1
    i = int(a / width)
    if i > last:
        return
    j = int(b / width)
    if i == j:
        series[i] += b - a
        return
    series[i] += (i + 1) * width - a
    for k in range(i + 1, min(j, last + 1)):
        series[k] += width
    if j <= last:
        series[j] += b - j * width


class Wire:
    """One direction of a link: sender-side FIFO transmitter, then propagation (ns-3's
    point-to-point model), with loss handled by timeout and retransmission.

    The transmitter is a single FIFO server with deterministic service (bytes*8/bandwidth),
    so a frame's departure follows Lindley's recursion (start = max(now, previous frame's
    finish)) without a SimPy resource: one event per frame instead of four."""

    __slots__ = ("busy", "bytes", "env", "free_at", "link", "lossy", "name", "outages", "rng")

    def __init__(self, env: simpy.Environment, name: str, link: Link, rng: np.random.Generator):
        self.env = env
        self.name = name
        self.link = link
        self.rng = rng
        #: whether a frame can be lost other than by an outage
        self.lossy = bool(link.loss or link.bit_error_rate)
        self.free_at = 0.0  # when the transmitter finishes the frames queued so far
        self.bytes = 0
        self.busy = 0.0
        #: (start, end) of outages: a frame finishing transmission inside one is lost
        self.outages: list[tuple[float, float]] = []

    def outage(self, start: float, end: float) -> None:
        self.outages.append((start, end))

    def _down_at(self, t: float) -> bool:
        return any(start <= t < end for start, end in self.outages)

    def _queue(self, total: int, transmit: float, warmup: float, until: float) -> float:
        """Put a frame of ``total`` bytes behind the frames queued so far; returns when its
        transmission finishes. The transmitter's busy time is counted within the measured
        window [``warmup``, ``until``] (clipped at both ends), the frame's bytes in the window
        in which its transmission finishes (``warmup < finish <= until``), as a node counts
        its jobs."""
        now = self.env.now
        free_at = self.free_at
        start = free_at if free_at > now else now
        finish = self.free_at = start + transmit
        if finish > warmup and start < until:
            self.busy += (finish if finish < until else until) - (
                start if start > warmup else warmup
            )
            if finish <= until:
                self.bytes += total
        return finish

    def _delay(self) -> float:
        link = self.link
        delay = link.latency_ms / 1000
        if link.jitter_ms:
            delay += abs(self.rng.normal(0.0, link.jitter_ms / 1000))
        return delay

    def frame(self, size: int, warmup: float, until: float = math.inf) -> float:
        """``send`` without its events, for a wire that is neither ``lossy`` nor ever down:
        queue the one attempt of ``size`` bytes now; returns the seconds until it arrives."""
        link = self.link
        total = size + link.overhead_bytes
        finish = self._queue(total, total * 8 / (link.bandwidth_mbps * 1e6), warmup, until)
        if link.jitter_ms:
            return finish - self.env.now + self._delay()
        return finish - self.env.now + link.latency_ms / 1000

    def send(self, size: int, warmup: float, until: float = math.inf):
        """Generator: deliver ``size`` bytes; returns False when every attempt was lost.
        Busy time and bytes are counted within [``warmup``, ``until``] (``_queue``)."""
        link = self.link
        env = self.env
        total = size + link.overhead_bytes
        loss = link.loss
        if link.bit_error_rate:  # independent bit errors: any one loses the frame
            loss = 1 - (1 - link.loss) * (1 - link.bit_error_rate) ** (8 * total)
        transmit = total * 8 / (link.bandwidth_mbps * 1e6)
        for _attempt in range(link.retries + 1):
            now = env.now
            finish = self._queue(total, transmit, warmup, until)
            if loss > 0 and self.rng.random() < loss:
                yield env.timeout(finish - now + link.timeout_s)
                continue
            delay = self._delay()
            yield env.timeout(finish - now + delay)
            if not self.outages or not self._down_at(finish):
                return True
            # the link was down when the frame left: the sender times out
            if link.timeout_s > delay:
                yield env.timeout(link.timeout_s - delay)
        return False


class Farm:
    """The nodes of one role behind a load balancer."""

    def __init__(self, role: str, nodes: list[Node], balancer: str, rng: np.random.Generator):
        self.role = role
        self.nodes = nodes
        self.balancer = balancer
        self.rng = rng
        self._next = itertools.cycle(range(len(nodes)))

    def pick(self, session_key: int) -> Node:
        up = [n for n in self.nodes if n.down_until <= n.env.now] or self.nodes
        if self.balancer == "sticky":
            return up[session_key % len(up)]
        if self.balancer == "random":
            return up[int(self.rng.integers(len(up)))]
        if self.balancer == "least_connections":
            return min(up, key=lambda n: (n.connections, n.name))
        for _ in range(len(self.nodes)):
            node = self.nodes[next(self._next)]
            if node in up:
                return node
        return up[0]


@dataclass(slots=True)
class MessageRecord:
    """One application message, for messages.csv and the summary."""

    session: int
    seq: int
    start: float
    end: float = 0.0
    client_class: str = "default"
    #: the strategy the message's session ran (several in one run when client classes
    #: carry their own strategies)
    strategy: str = ""
    ok: bool = False
    fault: str | None = None
    request_bytes: int = 0
    response_bytes: int = 0
    token_bytes: int = 0
    sts_exchanges: int = 0
    retries: int = 0
    recoveries: int = 0
    #: the op counts (``Network.op_counts``) of each step the message took, in order (the
    #: statistics take them when the message ends; the record then lets them go)
    op_steps: list[tuple[tuple[str, int], ...]] = field(default_factory=list)


#: how a Send counts in its MessageRecord (see ``Chain._bill``)
NO_BILL, TOKEN_REQUEST, TOKEN_REPLY, APP_REQUEST, APP_RESPONSE = range(5)


class StepInfo(NamedTuple):
    """A Step as the model uses it (``Network.step_info``)."""

    step: Step
    #: its first Send (every strategy keeps one message in flight per chain), or None
    send: Send | None
    #: its last AppDone or SessionClosed, or None
    result: AppDone | SessionClosed | None
    counts: tuple[tuple[str, int], ...]
    #: CPU seconds before the variability draw; beside an HSM; RSA private-key ops for it
    seconds: float
    beside_hsm: float
    private: int
    #: seconds the step waits holding no core (round trips to a farm's replay store)
    wait: float
    #: the role the Send goes to, how it counts in the record, its size in bytes
    role: str
    bill: int
    size: int


class ContextShadow:
    """Replay fidelity's account of a context cache it does not model: the sessions a node
    (or a farm-wide shared cache) holds contexts of, least recently used first, and how
    often a full cache would have evicted the context of a session still running (the
    session would then meet wsc:BadContextToken and recover, as ``full`` fidelity shows).

    Touched at every delivery of a session to the node; a close that reaches the node (a
    Cancel) removes the session, and a node's restart all of them (not a shared cache's,
    which outlives the nodes). An entry idle longer than the cache's idle timeout is not
    counted when it goes: replay models idle evictions already."""

    __slots__ = ("capacity", "epoch", "evicted", "idle_timeout", "live", "sessions", "shared")

    def __init__(self, capacity: int, idle_timeout: float, live: set[int], shared: bool) -> None:
        self.capacity = capacity
        self.idle_timeout = idle_timeout
        #: the sessions running now (the replication's set)
        self.live = live
        self.shared = shared
        self.epoch = 0
        self.sessions: dict[int, float] = {}
        #: contexts of running sessions a full cache would have evicted
        self.evicted = 0

    def touch(self, session: int, now: float, epoch: int) -> None:
        sessions = self.sessions
        if epoch != self.epoch and not self.shared:  # the node restarted: its cache is empty
            sessions.clear()
            self.epoch = epoch
        sessions.pop(session, None)
        sessions[session] = now
        while len(sessions) > self.capacity:
            oldest = next(iter(sessions))
            last = sessions.pop(oldest)
            if oldest in self.live and now - last <= self.idle_timeout:
                self.evicted += 1

    def drop(self, session: int) -> None:
        self.sessions.pop(session, None)


class Network:
    """Nodes, farms and wires of one simulated replication."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        roles: tuple[str, ...],
        rng: np.random.Generator,
        profile: CostProfile,
        *,
        memo_steps: bool = True,
    ) -> None:
        self.env = env
        self.scenario = scenario
        self.rng = rng
        self.profile = profile
        #: the measured window [warmup, until]: nodes and wires count their load inside it
        self.warmup = scenario.run.warmup_s
        self.until = scenario.run.duration_s
        self.farms: dict[str, Farm] = {}
        self.nodes: dict[str, Node] = {}
        for role in roles:
            spec = getattr(scenario.topology, role)
            nodes = [
                Node(
                    env,
                    f"{role}-{i}",
                    role,
                    spec.cores,
                    hsm_units=spec.hsm_units,
                    hsm_op_s=spec.hsm_op_ms / 1000,
                    bin_s=scenario.run.duration_s / SERIES_BINS,
                )
                for i in range(spec.nodes)
            ]
            self.farms[role] = Farm(role, nodes, spec.balancer, rng)
            self.nodes.update({n.name: n for n in nodes})
        self.client_spec = scenario.topology.client
        self.wires: dict[tuple[str, str], Wire] = {}
        variability = scenario.profile.variability
        cv = scenario.profile.cv
        self.deterministic = variability == "deterministic"
        #: ledger -> (op counts, CPU seconds, CPU seconds beside an HSM, HSM operations)
        self._ledgers: dict[tuple, tuple] = {}
        self._steps: dict[int, StepInfo] = {}
        #: remember each Step's info by object: replayed steps recur, while full fidelity
        #: makes a new Step (holding its message) every time, and memos would only hold them
        self.memo_steps = memo_steps
        #: replay fidelity: (strategy, node name, or role for a shared cache) -> the
        #: ContextShadow of a node that keeps security contexts (``watch_contexts``)
        self.shadows: dict[tuple[str, str], ContextShadow] = {}
        self._shadow_keys: dict[tuple[str, str], tuple[str, str]] = {}
        self.adversary = scenario.adversary
        kinds = {fault.kind for fault in scenario.faults}
        #: whether any link goes down in this run (frames can be lost to an outage)
        self.link_outages = "link_outage" in kinds
        #: fold a delivery to a node that never queues into that node's CPU time (see
        #: ``Chain.run``): exact while nothing can change between the send and the arrival
        #: (no clock skew or outage faults, no adversary); a tracer turns it off so that
        #: the trace is written in time order
        self.fold = not kinds & {"clock_skew", "link_outage"} and self.adversary is None
        #: per attack: attempts, accepted, refused {check: count} (measured window only)
        self.attacks: dict[str, dict] = {}
        #: the adversary's ``attacks.Attacker`` (full fidelity), which ``Chain.run`` shows
        #: every delivery
        self.attacker = None
        if variability == "deterministic":
            self.jitter: Callable[[], float] = lambda: 1.0
        elif variability == "exponential":
            self.jitter = lambda: float(rng.exponential(1.0))
        else:
            sigma2 = np.log(1 + cv * cv)
            mu = -sigma2 / 2
            self.jitter = lambda: float(rng.lognormal(mu, np.sqrt(sigma2)))

    def client_node(self, index: int) -> Node:
        name = f"client-{index}"
        node = self.nodes.get(name)
        if node is None:
            node = Node(self.env, name, CLIENT, 1, contended=False)
            self.nodes[name] = node
        return node

    def wire(self, a: str, b: str) -> Wire:
        wire = self.wires.get((a, b))
        if wire is None:
            wire = Wire(self.env, f"{a}-{b}", self.scenario.link(a, b), self.rng)
            self.wires[a, b] = wire
        return wire

    def watch_contexts(
        self, strategy: str, role: str, capacity: int, idle_timeout: float, live: set[int]
    ) -> None:
        """Keep a ContextShadow for ``strategy`` on each ``role`` node (one for the farm
        when its cache is shared)."""
        farm = self.farms.get(role)
        if farm is None:
            return
        shared = getattr(self.scenario.topology, role).shared_cache
        for node in farm.nodes:
            key = (strategy, role if shared else node.name)
            if key not in self.shadows:
                self.shadows[key] = ContextShadow(capacity, idle_timeout, live, shared)
            self._shadow_keys[strategy, node.name] = key

    def shadow(self, strategy: str, node: Node) -> ContextShadow | None:
        """The ContextShadow ``node`` keeps for ``strategy``, if any."""
        key = self._shadow_keys.get((strategy, node.name))
        return None if key is None else self.shadows[key]

    def cpu(self, node: Node, ops) -> float:
        """CPU seconds of a ledger on ``node``, with the service-time variability drawn."""
        seconds = self.ledger_info(ops)[1]
        return seconds if self.deterministic else seconds * self.jitter()

    def step_info(self, step: Step) -> StepInfo:
        """What the model needs of ``step``; with ``memo_steps``, computed once per Step
        object (replayed steps are the same objects every time)."""
        if not self.memo_steps:
            return self._step_info(step)
        info = self._steps.get(id(step))
        if info is None or info.step is not step:
            if len(self._steps) > 50_000:
                self._steps.clear()
            info = self._steps[id(step)] = self._step_info(step)
        return info

    def _step_info(self, step: Step) -> StepInfo:
        send = result = None
        for event in step.events:
            if isinstance(event, Send):
                # every strategy keeps one message in flight per chain
                send = send or event
            elif isinstance(event, (AppDone, SessionClosed)):
                result = event
        counts, seconds, beside_hsm, private, wait = self.ledger_info(step.ops)
        role, bill = "", NO_BILL
        if send is not None:
            role = role_of(send.to)
            if send.token_service:
                bill = TOKEN_REPLY if send.reply else TOKEN_REQUEST
            elif send.kind == "app-request" and role != CLIENT:
                bill = APP_REQUEST
            elif send.kind == "app-response":
                bill = APP_RESPONSE
        return StepInfo(
            step,
            send,
            result,
            counts,
            seconds,
            beside_hsm,
            private,
            wait,
            role,
            bill,
            0 if send is None else len(send.data),
        )

    def ledger_info(self, ops) -> tuple[tuple[tuple[str, int], ...], float, float, int, float]:
        """Of a ledger: its op counts, its CPU seconds, its CPU seconds beside an HSM (which
        takes the RSA private-key operations), how many of those there are, and the seconds
        it waits holding no core (``CostProfile.wait``). Keyed by the
        ledger's value: full fidelity's messages of one kind have equal ledgers, and they
        share one counts tuple (the statistics aggregate by it)."""
        info = self._ledgers.get(ops)
        if info is None:
            if len(self._ledgers) > 50_000:
                self._ledgers.clear()
            counts: dict[str, int] = {}
            for op, _ in ops:
                counts[op] = counts.get(op, 0) + 1
            private = counts.get("rsa_sign", 0) + counts.get("rsa_decrypt", 0)
            rest = tuple((op, size) for op, size in ops if op not in ("rsa_sign", "rsa_decrypt"))
            info = self._ledgers[ops] = (
                tuple(counts.items()),
                self.profile.cost(ops),
                self.profile.cost(rest),
                private,
                self.profile.wait(ops),
            )
        return info

    def op_counts(self, ops) -> tuple[tuple[str, int], ...]:
        """How many of each op a ledger holds (see ``ledger_info``)."""
        return self.ledger_info(ops)[0]


class Chain:
    """Runs one application message (or a close) from its first Step to its AppDone,
    moving each Send over the network to the node that handles it."""

    __slots__ = (
        "bound",
        "capture",
        "client",
        "engine",
        "handle",
        "history",
        "idle",
        "network",
        "record",
        "result",
        "session_key",
        "strategy",
        "tls_open",
    )

    def __init__(
        self,
        network: Network,
        session_key: int,
        client: Node,
        handle: Callable[[Node, Send, str, float, bool], Step] | None,
        record: MessageRecord | None,
        tls_open: set[str] | None = None,
        history: dict[str, tuple[str, int, float]] | None = None,
    ):
        self.network = network
        self.session_key = session_key
        self.client = client
        self.handle = handle
        self.record = record
        self.bound: dict[str, Node] = {CLIENT: client}
        #: TLS connections this session has open (reused across its messages)
        self.tls_open = tls_open if tls_open is not None else set()
        #: per role, the node (its name and epoch) that last handled this session, and when
        self.history = history if history is not None else {}
        #: per role, how long a node keeps the session's state unused (replay: a node that
        #: was idle longer counts as new to the session, as its cache has evicted the state)
        self.idle: dict[str, float] = {}
        self.result: AppDone | SessionClosed | None = None
        #: the strategy the session runs (set by the replication)
        self.strategy = ""
        #: full fidelity: the session's client engine; the adversary's request waiting
        #: for its response
        self.engine = None
        self.capture = None

    def begin(
        self, record: MessageRecord | None, handle: Callable[[Node, Send, str, float, bool], Step]
    ) -> None:
        """Make the chain ready for the session's next message (or its close)."""
        self.record = record
        self.handle = handle
        self.bound = {CLIENT: self.client}
        self.result = None
        self.capture = None

    def run(self, node: Node, step: Step):
        """Generator: charge ``step`` on ``node`` and follow its events to the end.

        A step costs one event (the end of its CPU time) and a hop one more (the arrival).
        With ``Network.fold``, a hop to a node that never queues (a client) costs none: its
        arrival time is known when the frame is queued, and the node's CPU time starts
        then, so one timeout covers both (the receiving engine is asked at send time, with
        the arrival time as ``now``)."""
        network = self.network
        env = network.env
        warmup = network.warmup
        until = network.until
        jitter = None if network.deterministic else network.jitter
        record = self.record
        steps = record.op_steps if record is not None else None
        ahead = 0.0  # seconds until a folded delivery reaches ``node``
        while True:
            info = network.step_info(step)
            if steps is not None:
                steps.append(info.counts)
            epoch = node.epoch
            private = 0
            if node.hsm_units:
                seconds = info.beside_hsm
                private = info.private
            else:
                seconds = info.seconds
            if jitter is not None:
                seconds *= jitter()
            arrival = env.now
            # a wait (a replay-store round trip) holds no core: the step ends that much later
            if ahead:  # the node never queues: its CPU time starts on arrival
                start = arrival + ahead
                node.account(start, start, seconds, warmup, until)
                yield Timeout(env, ahead + seconds + info.wait)
                ahead = 0.0
            else:
                start = node.book(seconds)
                node.account(arrival, start, seconds, warmup, until)
                yield Timeout(env, start + seconds - arrival + info.wait)
            if private:
                yield from node.hsm_work(private, warmup, until)
            if node.epoch != epoch:  # the node crashed while the message was on it
                self.result = AppDone(ok=False, fault="wssim:NodeDown")
                return
            if info.result is not None:
                self.result = info.result
            send = info.send
            if send is None:
                return
            target = self._target(info.role, send.reply)
            if target.down_until > env.now:
                self.result = AppDone(ok=False, fault="wssim:NodeDown")
                return
            wire = network.wire(node.role, target.role)
            if (
                wire.lossy
                or network.link_outages
                or (send.tls and not send.reply and target.name not in self.tls_open)
            ):
                delivered = yield from self._transfer(node, target, send)
                if not delivered:
                    self.result = AppDone(ok=False, fault="wssim:Timeout")
                    return
            else:  # one attempt, always delivered
                wait = wire.frame(info.size, warmup, until)
                if network.fold and not target.free and not target.hsm_units:
                    ahead = wait
                else:
                    yield Timeout(env, wait)
            if info.bill and record is not None:
                self._bill(info.bill, info.size)
            if network.attacker is not None:
                network.attacker.watch(self, send, node, target)
            sender = node.name
            node = target
            fresh = False
            if node.role != CLIENT:
                arrived = env.now + ahead + node.skew
                previous = self.history.get(node.role)
                fresh = previous is not None and (
                    previous[0] != node.name
                    or previous[1] != node.epoch
                    or arrived - previous[2] > self.idle.get(node.role, math.inf)
                )
                self.history[node.role] = (node.name, node.epoch, arrived)
                if network.shadows:
                    shadow = network.shadow(self.strategy, node)
                    if shadow is not None:
                        if self.record is None:  # the close reaching the node: a Cancel
                            shadow.drop(self.session_key)
                        else:
                            shadow.touch(self.session_key, arrived, node.epoch)
            node.connections += 1
            try:
                step = self.handle(node, send, sender, env.now + ahead + node.skew, fresh)
            finally:
                node.connections -= 1

    def _target(self, role: str, reply: bool) -> Node:
        if reply:
            return self.bound[role]  # the node of that role in this exchange
        bound = self.bound.get(role)
        if bound is None or bound.down_until > self.network.env.now:
            bound = self.bound[role] = self.network.farms[role].pick(self.session_key)
        return bound

    def _transfer(self, source: Node, target: Node, send: Send):
        network = self.network
        wire = network.wire(source.role, target.role)
        if send.tls and target.name not in self.tls_open and not send.reply:
            # TLS connection set-up on first use: a round trip of handshake records, and the
            # handshake's CPU work on both ends (then the connection is reused).
            self.tls_open.add(target.name)
            back = network.wire(target.role, source.role)
            size = wire.link.tls_handshake_bytes
            window = network.warmup, network.until
            if not (yield from wire.send(size // 2, *window)):
                return False
            yield from target.work(network.cpu(target, TLS_HANDSHAKE), *window)
            if not (yield from back.send(size // 2, *window)):
                return False
            yield from source.work(network.cpu(source, TLS_HANDSHAKE), *window)
            if self.record is not None:
                counts = network.op_counts(TLS_HANDSHAKE)
                self.record.op_steps += (counts, counts)
        return (yield from wire.send(len(send.data), network.warmup, network.until))

    def _bill(self, bill: int, size: int) -> None:
        """Count a delivered Send of ``size`` bytes in the message's record."""
        record = self.record
        if bill == TOKEN_REQUEST:
            record.token_bytes += size
            record.sts_exchanges += 1
        elif bill == TOKEN_REPLY:
            record.token_bytes += size
        elif bill == APP_REQUEST:
            record.request_bytes = max(record.request_bytes, size)
        elif bill == APP_RESPONSE:
            record.response_bytes = max(record.response_bytes, size)
