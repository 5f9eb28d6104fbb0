"""The network of one replication: its nodes, farms and wires, and what a protocol Step
costs on them (``Network.step_info``: its CPU seconds, HSM operations, waits, where its
Send goes and how the Send counts in its message's record)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from enum import IntEnum
from typing import NamedTuple

import numpy as np
import simpy

from sim.engine.balancer import Farm
from sim.engine.costs import CostProfile
from sim.engine.resources import SERIES_BINS, ClientMachine, Node, SkewedClientMachine, Wire
from sim.engine.scenario import Scenario
from sim.engine.steps import first_events
from sim.protocol.api import CLIENT, AppDone, MessageKind, Send, SessionClosed, Step, role_of
from sim.wire.ledger import Op

#: the ledger ops an HSM takes off the cores (RSA private-key operations)
HSM_OPS = (Op.RSA_SIGN, Op.RSA_DECRYPT)


class Bill(IntEnum):
    """How a delivered Send counts in its message's record (``Chain._bill``)."""

    NONE = 0
    TOKEN_REQUEST = 1
    TOKEN_REPLY = 2
    APP_REQUEST = 3
    APP_RESPONSE = 4


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
    bill: Bill
    size: int


def bill_of(send: Send, role: str) -> Bill:
    """How ``send``, going to ``role``, counts in its message's record."""
    if send.token_service:
        return Bill.TOKEN_REPLY if send.reply else Bill.TOKEN_REQUEST
    if send.kind == MessageKind.APP_REQUEST and role != CLIENT:
        return Bill.APP_REQUEST
    if send.kind == MessageKind.APP_RESPONSE:
        return Bill.APP_RESPONSE
    return Bill.NONE


class Network:
    """Nodes, farms and wires of one simulated replication, and the service-time draw."""

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
        #: the client machines' clock skew (``skew_clients``): of all, and of named ones
        self.client_skew = 0.0
        self.client_skews: dict[str, float] = {}
        #: a client machine's clock is read through the network only where it may be off
        self._client_class = (
            SkewedClientMachine
            if any(f.kind == "clock_skew" for f in scenario.faults)
            else ClientMachine
        )
        self.wires: dict[tuple[str, str], Wire] = {}
        #: ledger -> (op counts, CPU seconds, CPU seconds beside an HSM, HSM operations)
        self._ledgers: dict[tuple, tuple] = {}
        self._steps: dict[int, StepInfo] = {}
        #: remember each Step's info by object: replayed steps recur, while full fidelity
        #: makes a new Step (holding its message) every time, and memos would only hold them
        self.memo_steps = memo_steps
        kinds = {fault.kind for fault in scenario.faults}
        #: whether any link goes down in this run (frames can be lost to an outage)
        self.link_outages = "link_outage" in kinds
        #: fold a delivery to a node that never queues into that node's CPU time (see
        #: ``Chain.run``): exact while nothing can change between the send and the arrival
        #: (no clock skew or outage faults, no adversary); a tracer turns it off so that
        #: the trace is written in time order
        self.fold = not kinds & {"clock_skew", "link_outage"} and scenario.adversary is None
        self.deterministic, self.jitter = _variability(
            scenario.profile.variability,
            scenario.profile.cv,
            rng,
            _draws_alone(scenario, self.farms.values()),
        )

    def client_node(self, index: int) -> ClientMachine:
        """Client machine ``index`` for a session (light: made anew each time)."""
        return self._client_class(self, f"client-{index}")

    def skew_clients(self, node: str | None, skew: float) -> None:
        """A clock-skew fault on the client machines: every one (``node`` None or
        "client") or the one named."""
        if node in (None, CLIENT):
            self.client_skew = skew
            self.client_skews.clear()
        else:
            self.client_skews[node] = skew

    def client_skew_of(self, name: str) -> float:
        skews = self.client_skews
        return skews.get(name, self.client_skew) if skews else self.client_skew

    def wire(self, a: str, b: str) -> Wire:
        wire = self.wires.get((a, b))
        if wire is None:
            wire = Wire(self.env, f"{a}-{b}", self.scenario.link(a, b), self.rng)
            self.wires[a, b] = wire
        return wire

    def cpu(self, node: Node, ops) -> float:
        """CPU seconds of a ledger on ``node``, with the service-time variability drawn."""
        seconds = self.ledger_info(ops)[1]
        return seconds if self.deterministic else seconds * self.jitter()

    def step_info(self, step: Step, role: str = "", strategy: str = "") -> StepInfo:
        """What the model needs of ``step`` (taken by a node of ``role`` running
        ``strategy``: whose engine overhead it costs); with ``memo_steps``, computed once per
        Step object (replayed steps are the same objects every time)."""
        if not self.memo_steps:
            return self._step_info(step, role, strategy)
        info = self._steps.get(id(step))
        if info is None or info.step is not step:
            if len(self._steps) > 50_000:
                self._steps.clear()
            info = self._steps[id(step)] = self._step_info(step, role, strategy)
        return info

    def _step_info(self, step: Step, role_taking: str, strategy: str) -> StepInfo:
        send, result = first_events(step)
        counts, seconds, beside_hsm, private, wait = self.ledger_info(step.ops)
        role, bill = "", Bill.NONE
        if send is not None:
            role = role_of(send.to)
            bill = bill_of(send, role)
            http = self.profile.http_seconds(send.reply, send.tls, len(send.data))
            seconds, beside_hsm = seconds + http, beside_hsm + http
        # the engine's own CPU beyond its ledger (a calibrated profile's engine_overhead_us)
        extra = self.profile.overhead_seconds(strategy, role_taking, send and send.kind)
        seconds, beside_hsm = seconds + extra, beside_hsm + extra
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
            private = sum(counts.get(op, 0) for op in HSM_OPS)
            rest = tuple((op, size) for op, size in ops if op not in HSM_OPS)
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


def _draws_alone(scenario: Scenario, farms: Iterable[Farm]) -> bool:
    """Whether the service-time variability is the only draw from the network's stream: no
    random balancer, no link with jitter or loss, no adversary (each draws from it too)."""
    return (
        scenario.adversary is None
        and all(farm.balancer != "random" for farm in farms)
        and not any(
            link.jitter_ms or link.loss or link.bit_error_rate for link in scenario.links.values()
        )
    )


def _variability(
    variability: str, cv: float, rng: np.random.Generator, alone: bool = False
) -> tuple[bool, Callable[[], float]]:
    """(deterministic, the draw a service time is multiplied by) for ``profile.variability``
    with coefficient of variation ``cv`` (lognormal of mean 1). ``alone``: nothing else draws
    from ``rng``, so the draws come 1,024 at a time (the same numbers as one at a time, a
    numpy call each costing as much as a message's whole step)."""
    if variability == "deterministic":
        return True, lambda: 1.0
    if variability == "exponential":
        if alone:
            return False, _batches(lambda: rng.exponential(1.0, size=_BATCH)).__next__
        return False, lambda: float(rng.exponential(1.0))
    sigma2 = np.log(1 + cv * cv)
    mu = -sigma2 / 2
    sigma = np.sqrt(sigma2)
    if alone:
        return False, _batches(lambda: rng.lognormal(mu, sigma, size=_BATCH)).__next__
    return False, lambda: float(rng.lognormal(mu, sigma))


#: draws made at a time by ``_batches``
_BATCH = 1024


def _batches(draw: Callable[[], np.ndarray]) -> Iterator[float]:
    """The values of ``draw()`` arrays, one after the other, as floats."""
    while True:
        yield from draw().tolist()
