"""Capacity analysis by the utilization law: per role and resource, the service demand of
one application message (``D``), the bound it puts on throughput (``c / D`` for ``c``
servers), the bottleneck, and the largest rate a configuration carries.

The demand is measured per session, not divided out of busy times: a ``MeteredChain``
adds up what each of its messages (and its close) asks of every resource — the mean CPU
seconds of each step's ledger on a server node's cores (the cost profile's figure, without
the variability draw, whose mean is 1), the HSM operations times ``hsm_op_ms``, each
frame's transmission time on its link, TLS handshakes included. Busy time divided by
completed messages would be right only in a stable run: in overload the resources before
the bottleneck work for the offered messages and those after it for the completed ones.
Sessions started inside the measured window and not cut short by its end are metered — all
of them in a short run, a sample spread evenly over the window in a long one
(``SessionSample``: metering costs a tenth of the run's time) — and the demand is their
total over their application messages. Lost frames' retransmissions are not counted (they
wait on a timer, not on a resource, mostly).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from sim.engine.chain import TLS_HANDSHAKE, Chain
from sim.engine.network import StepInfo
from sim.engine.resources import Node, Wire
from sim.engine.scenario import Scenario
from sim.protocol.api import CLIENT

#: the pseudo-role under which links appear in ``demand_ms`` (``links.client-sts``)
LINKS = "links"


#: about how many sessions of a replication are metered at most
METERED_SESSIONS = 2000


class SessionSample:
    """Which sessions are metered: those started inside the measured window whose key
    falls in a share of a multiplicative hash's range, the share chosen so that about
    ``METERED_SESSIONS`` are (all of them when the window expects fewer). The hash spreads
    the sample over the window, the client nodes and the farms' nodes alike."""

    def __init__(self, scenario: Scenario, sessions: int = METERED_SESSIONS) -> None:
        run, workload = scenario.run, scenario.workload
        self.start, self.end = run.warmup_s, run.duration_s
        measured = run.duration_s - run.warmup_s
        if workload.rate is not None:
            expected = workload.rate * measured
        else:  # at most one session a think time per user (never under 50 ms)
            expected = workload.users * measured / max(workload.think_time_s, 0.05)
        share = min(1.0, sessions / expected) if expected > 0 else 1.0
        self.threshold = int(share * 2**32)

    def __call__(self, key: int, now: float) -> bool:
        """Whether the session ``key``, starting at ``now``, is metered."""
        return self.start <= now < self.end and (key * 0x9E3779B1) & 0xFFFFFFFF < self.threshold


class MeteredChain(Chain):
    """A Chain that also adds up its session's demand on each resource in ``demand``:
    (role, "cores" | "hsm") or ("links", wire name) -> seconds."""

    __slots__ = ("demand",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.demand: dict[tuple[str, str], float] = {}

    def _charge(self, node: Node, info: StepInfo, ahead: float) -> float:
        demand = self.demand
        role = node.role
        if node.free:  # a server node's cores (clients never queue: no resource)
            key = (role, "cores")
            seconds = info.beside_hsm if node.hsm_units else info.seconds
            demand[key] = demand.get(key, 0.0) + seconds
        if node.hsm_units and info.private:
            key = (role, "hsm")
            demand[key] = demand.get(key, 0.0) + info.private * node.hsm_op_s
        if info.send is not None:
            self._frame(self.network.wire(role, info.role), info.size)
        return super()._charge(node, info, ahead)

    def _frame(self, wire: Wire, size: int) -> None:
        link = wire.link
        key = (LINKS, wire.name)
        seconds = (size + link.overhead_bytes) * 8 / (link.bandwidth_mbps * 1e6)
        self.demand[key] = self.demand.get(key, 0.0) + seconds

    def _open_tls(self, source: Node, target: Node, wire: Wire):
        network = self.network
        half = wire.link.tls_handshake_bytes // 2
        self._frame(wire, half)
        self._frame(network.wire(target.role, source.role), half)
        cpu = network.ledger_info(TLS_HANDSHAKE)[1]
        for node in (source, target):
            if node.free:
                key = (node.role, "cores")
                self.demand[key] = self.demand.get(key, 0.0) + cpu
        return (yield from super()._open_tls(source, target, wire))


def servers(scenario: Scenario, roles: Mapping[str, object] | None = None) -> dict:
    """How many servers each resource has: a farm's cores (nodes x cores) and HSM units,
    one transmitter per link direction; roles as in the topology (only those given)."""
    counts: dict[tuple[str, str], int] = {}
    for role in roles if roles is not None else ("intermediary", "sts", "provider"):
        spec = getattr(scenario.topology, role, None)
        if spec is None or role == CLIENT:
            continue
        counts[role, "cores"] = spec.nodes * spec.cores
        if spec.hsm_units:
            counts[role, "hsm"] = spec.nodes * spec.hsm_units
    return counts


def servers_of(roles: Mapping[str, Mapping]) -> dict[tuple[str, str], int]:
    """How many servers each resource has, from a summary's ``roles`` (the farms' totals
    of cores and HSM units)."""
    counts: dict[tuple[str, str], int] = {}
    for role, figures in roles.items():
        counts[role, "cores"] = figures["cores"]
        if figures.get("hsm_units"):
            counts[role, "hsm"] = figures["hsm_units"]
    return counts


def demand_ms(demand: Mapping[tuple[str, str], float], messages: int) -> dict:
    """``{role: {resource: ms per application message}}`` of a metered total."""
    table: dict[str, dict[str, float]] = {}
    if not messages:
        return table
    for (role, resource), seconds in sorted(demand.items()):
        table.setdefault(role, {})[resource] = seconds / messages * 1000
    return table


def bounds(demand: Mapping[str, Mapping[str, float]], count: Mapping) -> dict[str, float]:
    """Each resource's throughput bound c / D (application messages per second), named
    ``role.resource``: ``count`` gives c per (role, resource); a link has one server."""
    found = {}
    for role, resources in demand.items():
        for resource, ms in resources.items():
            if ms <= 0:
                continue
            c = 1 if role == LINKS else count.get((role, resource))
            if c:
                found[f"{role}.{resource}"] = c / (ms / 1000)
    return found


def capacity(demand: Mapping[str, Mapping[str, float]], count: Mapping) -> dict:
    """summary.json's ``capacity``: the bottleneck (the resource of the smallest bound),
    ``max_messages_per_s`` (that bound) and ``demand_ms``; without any demand measured
    the bottleneck and bound are None."""
    found = bounds(demand, count)
    if not found:
        return {"bottleneck": None, "max_messages_per_s": None, "demand_ms": dict(demand)}
    bottleneck = min(found, key=lambda name: (found[name], name))
    return {
        "bottleneck": bottleneck,
        "max_messages_per_s": found[bottleneck],
        "demand_ms": {role: dict(resources) for role, resources in demand.items()},
    }


def utilization(offered_per_s: float, capacity_entry: Mapping) -> float:
    """The bottleneck's utilization at the offered load (offered / the bound; inf when
    the bound is unknown and something is offered)."""
    bound = capacity_entry.get("max_messages_per_s")
    if bound is None:
        return math.inf if offered_per_s else 0.0
    return offered_per_s / bound
