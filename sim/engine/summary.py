"""What a replication adds to a result (``Outcome``: its summaries, the rows of nodes.csv,
links.csv, timeseries.csv and messages.csv, and the overload warnings), and the combination
of replications with 95 % confidence intervals."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from sim.engine.attacks import empty_stats
from sim.engine.replication import Replication
from sim.engine.stats import MessageLog
from sim.protocol.api import CLIENT

#: farms up to this size get one load series per node besides the farm's
SERIES_NODES = 32


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

    def add(self, outcome: Outcome) -> None:
        """Append a replication's rows and the warnings not given yet."""
        self.messages.extend(outcome.part.messages)
        self.nodes += outcome.part.nodes
        self.links += outcome.part.links
        self.timeseries += outcome.part.timeseries
        warnings = self.summary["warnings"]
        for warning in outcome.warnings:
            if warning not in warnings:
                warnings.append(warning)


@dataclass
class Outcome:
    """What one replication adds to a result (picklable: it may come from a worker)."""

    summaries: dict[str, dict]
    part: SimulationResult
    warnings: list[str]


def outcome_of(rep: Replication, index: int, label: str) -> Outcome:
    """The Outcome of replication number ``index`` of the strategies ``label`` names."""
    part = SimulationResult({})
    _collect(part, rep, index, label)
    return Outcome(summarize_replication(rep), part, overload_warnings(rep, label))


# --- statistics ----------------------------------------------------------------------------


@functools.cache
def t95(n: int) -> float:
    """The two-sided 95 % Student t quantile for ``n`` degrees of freedom (scipy's, exact:
    a table rounding between its rows made the stopping rule's intervals too narrow)."""
    from scipy.stats import t  # imported when an interval is needed: scipy loads slowly

    return float(t.ppf(0.975, n))


def summarize_replication(rep: Replication) -> dict[str, dict]:
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
            "cores": cores,  # the farm's total; topology.<role>.cores is per node
            "cores_per_node": farm.nodes[0].cores,
            "utilization": busy / (cores * measured),
            "requests": requests,
            "mean_service_ms": service / requests * 1000 if requests else 0.0,
        }
        units = sum(n.hsm_units for n in farm.nodes)
        if units:
            roles[farm.role]["hsm_utilization"] = sum(n.hsm_busy for n in farm.nodes) / (
                units * measured
            )
    attacks = rep.attacker.stats if rep.attacker is not None else {}
    summaries = {}
    for name, strategy in rep.strategies.items():
        summary = rep.stats[name].summary(measured)
        summary["roles"] = {role: roles[role] for role in strategy.roles}
        if rep.scenario.adversary is not None:
            summary["attacks"] = {
                attack: attacks.get(attack, empty_stats(attack))
                for attack in rep.scenario.adversary.attacks
            }
        summaries[name] = summary
    return summaries


def half_width(replications: list[dict], metric: str = "latency_ms.mean") -> float:
    """95% confidence half-width (Student t) of ``metric`` (a dotted summary key) over
    replications."""
    keys = metric.split(".")
    values = []
    for summary in replications:
        for key in keys:
            summary = summary[key]
        values.append(summary)
    return _half_width(np.array(values, dtype=float))


def _half_width(samples: np.ndarray) -> float:
    n = len(samples)
    return float(t95(n - 1) * samples.std(ddof=1) / math.sqrt(n))


def combine(replications: list[dict]) -> dict:
    """Mean over replications, with 95% confidence half-widths when there are several."""
    if len(replications) == 1:
        return replications[0]
    n = len(replications)
    combined = _mean(replications)
    for metric in ("mean", "p50", "p95", "p99", "max"):
        samples = np.array([r["latency_ms"][metric] for r in replications])
        combined["latency_ms"].setdefault("ci95", {})[metric] = _half_width(samples)
    samples = np.array([r["throughput_per_s"] for r in replications])
    combined["throughput_per_s_ci95"] = _half_width(samples)
    for key in ("app_messages", "completed", "failed", "sts_requests"):
        combined[key] = round(combined[key] * n)  # totals over replications
    return combined


def _mean(values: list):
    """The mean of equally shaped summaries, key by key (a key one lacks counts as 0)."""
    first = values[0]
    if isinstance(first, dict):
        keys = sorted({k for v in values for k in v})
        return {k: _mean([v.get(k, 0.0) for v in values]) for k in keys}
    return float(np.mean(values))


# --- overload warnings ---------------------------------------------------------------------


def overload_warnings(rep: Replication, label: str) -> list[str]:
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
    for (strategy, where), shadow in rep.shadows.items():
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


# --- rows of the CSV outputs ---------------------------------------------------------------


def _collect(result: SimulationResult, rep: Replication, index: int, name: str) -> None:
    """messages.csv, nodes.csv, links.csv and timeseries.csv rows of one replication."""
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
