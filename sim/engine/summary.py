"""What a replication adds to a result (``Outcome``: its summaries, the rows of nodes.csv,
links.csv, timeseries.csv, messages.csv and replications.csv, and the overload warnings),
and the combination of replications with 95 % confidence intervals.

One rule for counts: a combined summary holds totals over the replications (messages,
faults, attacks, jobs), and the per-replication means of faults and attacks under names
saying so (``faults_per_replication``); rates, latencies and shares are means. A single
replication gets its intervals from batch means (``run.batches``)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from sim.engine import capacity
from sim.engine.message_log import MessageLog
from sim.engine.replication import Replication
from sim.engine.stats import MessageStats, mser5
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
    #: the per-replication (and per-batch) values the intervals come from (replications.csv)
    replications: list[dict] = field(default_factory=list)
    partial: bool = False
    wall_s: float = 0.0
    seed_entropy: int = 0

    def add(self, outcome: Outcome) -> None:
        """Append a replication's rows and the warnings not given yet."""
        self.messages.extend(outcome.part.messages)
        self.nodes += outcome.part.nodes
        self.links += outcome.part.links
        self.timeseries += outcome.part.timeseries
        self.replications += outcome.part.replications
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
    signs = _overload_signs(rep, label)
    summaries = summarize_replication(rep, bool(signs))
    for name, summary in summaries.items():
        part.replications += replication_rows(index, name, summary)
        summary.pop("batch_means", None)
    return Outcome(summaries, part, overload_warnings(rep, label, signs))


# --- statistics ----------------------------------------------------------------------------

LATENCY_METRICS = ("mean", "p50", "p95", "p99", "max")


@functools.cache
def t95(n: int) -> float:
    """The two-sided 95 % Student t quantile for ``n`` degrees of freedom (scipy's, exact:
    a table rounding between its rows made the stopping rule's intervals too narrow)."""
    # scipy.special's inverse of the t distribution (scipy.stats.t.ppf's own, the same
    # values), imported when an interval is needed: 0.27 s against scipy.stats' 0.7
    from scipy.special import stdtrit

    return float(stdtrit(n, 0.975))


def summarize_replication(rep: Replication, overloaded: bool = False) -> dict[str, dict]:
    """Each strategy's summary of one replication; in a mixed run, ``roles`` describe the
    farms every strategy shares. ``overloaded``: the run shows signs of overload (its
    latencies are then marked unstable, as they are when the offered load reaches the
    capacity bound)."""
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
            roles[farm.role]["hsm_units"] = units  # the farm's total
            roles[farm.role]["hsm_utilization"] = sum(n.hsm_busy for n in farm.nodes) / (
                units * measured
            )
    attacks = rep.attacker.stats if rep.attacker is not None else {}
    summaries = {}
    for name, strategy in rep.strategies.items():
        stats = rep.stats[name]
        truncation = None
        if run.warmup == "mser5":
            truncation = _mser5_truncation(stats, run.warmup_s, run.duration_s)
            stats = stats.truncated(truncation)
        summary = stats.summary(run.duration_s - stats.warmup)
        summary["roles"] = {role: roles[role] for role in strategy.roles}
        demand = capacity.demand_ms(stats.demand, stats.demand_messages)
        summary["capacity"] = capacity.capacity(demand, capacity.servers_of(summary["roles"]))
        bound = summary["capacity"]["max_messages_per_s"]
        summary["latency_ms"]["unstable"] = overloaded or (
            bound is not None and summary["offered_per_s"] >= bound
        )
        if truncation is not None:
            summary["warmup"] = {"method": "mser5", "truncation_s": truncation}
        batch = summary.get("batch_means")
        if batch:
            intervals = batch_intervals(batch)
            summary["latency_ms"]["ci95"] = {"mean": intervals["latency_ms.mean"]}
            summary["throughput_per_s_ci95"] = intervals["throughput_per_s"]
            summary["ci_method"] = f"batch means ({batch['batches']} batches)"
        if rep.scenario.adversary is not None:
            from sim.engine.attacks import empty_stats  # the adversary's, when there is one

            summary["attacks"] = {
                attack: attacks.get(attack, empty_stats(attack))
                for attack in rep.scenario.adversary.attacks
            }
        summaries[name] = summary
    return summaries


def batch_intervals(batch_means: dict) -> dict[str, float]:
    """95 % confidence half-widths (Student t, batches - 1 degrees of freedom) of the mean
    latency and the throughput of one run from its batch means (``batch_means``)."""
    return {
        metric: _half_width(np.array(batch_means[metric], dtype=float))
        for metric in ("latency_ms.mean", "throughput_per_s")
    }


def _mser5_truncation(stats: MessageStats, warmup: float, end: float) -> float:
    """The automatic warm-up: where MSER-5 truncates the latencies of the messages that
    ended inside [``warmup``, ``end``], in the order they ended (``warmup`` when it drops
    none)."""
    latencies, ends = stats.ended_latencies()
    inside = (ends > warmup) & (ends <= end)
    latencies, ends = latencies[inside], ends[inside]
    dropped = mser5(latencies)
    return float(ends[dropped - 1]) if dropped else warmup


def replication_rows(index: int, name: str, summary: dict) -> list[dict]:
    """replications.csv's rows of one replication of strategy ``name``: the replication's
    values (``batch`` empty), then one row per batch of its batch means."""
    latency = summary["latency_ms"]
    rows = [
        {
            "replication": index,
            "strategy": name,
            "batch": "",
            **{f"latency_ms.{m}": latency[m] for m in LATENCY_METRICS},
            "throughput_per_s": summary["throughput_per_s"],
            "offered_per_s": summary["offered_per_s"],
            "in_flight_at_end": summary["in_flight_at_end"],
            "app_messages": summary["app_messages"],
            "completed": summary["completed"],
            "failed": summary["failed"],
            "warmup_s": summary.get("warmup", {}).get("truncation_s", ""),
        }
    ]
    batch = summary.get("batch_means")
    if batch:
        for k, (mean, rate) in enumerate(
            zip(batch["latency_ms.mean"], batch["throughput_per_s"], strict=True)
        ):
            rows.append(
                {
                    "replication": index,
                    "strategy": name,
                    "batch": k,
                    "latency_ms.mean": mean,
                    "throughput_per_s": rate,
                }
            )
    return rows


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


#: counts summed over replications, at the top of a strategy's summary
COUNTS = (
    "app_messages",
    "completed",
    "failed",
    "completed_in_window",
    "in_flight_at_end",
    "sts_requests",
)


def combine(replications: list[dict]) -> dict:
    """Combine replications: totals for every count, means for the rest, 95 % confidence
    half-widths over the replications; the capacity from the mean demands."""
    if len(replications) == 1:
        return replications[0]
    combined = _combine(replications, ())
    for metric in LATENCY_METRICS:
        samples = np.array([r["latency_ms"][metric] for r in replications])
        combined["latency_ms"].setdefault("ci95", {})[metric] = _half_width(samples)
    samples = np.array([r["throughput_per_s"] for r in replications])
    combined["throughput_per_s_ci95"] = _half_width(samples)
    combined["ci_method"] = f"replications ({len(replications)})"
    for key in ("faults", "attacks"):
        if key in combined:
            combined[f"{key}_per_replication"] = _combine(
                [r.get(key, {}) for r in replications], (), total=False
            )
    if "capacity" in combined:  # the mean demand of the replications that measured one
        measured = [r["capacity"]["demand_ms"] for r in replications if r["capacity"]["demand_ms"]]
        demand = _combine(measured, ("capacity", "demand_ms")) if measured else {}
        combined["capacity"] = capacity.capacity(demand, capacity.servers_of(combined["roles"]))
    return combined


def _summed(path: tuple) -> bool:
    """Whether the summary value at ``path`` is a count (summed over replications)."""
    if len(path) == 1:
        return path[0] in COUNTS
    return (
        path[0] in ("faults", "attacks")
        or path == ("latency_ms", "count")
        or (path[0] == "roles" and path[-1] == "requests")
    )


def _combine(values: list, path: tuple, total: bool = True):
    """Equally shaped summaries combined key by key (a key one lacks counts as 0): counts
    summed (unless not ``total``), numbers averaged, flags or-ed, labels kept when equal;
    confidence intervals and batch means of single replications are dropped."""
    if any(isinstance(v, dict) for v in values):  # a table one lacks counts as empty
        values = [v if isinstance(v, dict) else {} for v in values]
    first = values[0]
    if isinstance(first, dict):
        keys = sorted({k for v in values for k in v} - {"ci95", "batch_means", "ci_method"})
        keys = [k for k in keys if not (k.endswith("_ci95") and not path)]
        return {k: _combine([v.get(k, 0) for v in values], (*path, k), total) for k in keys}
    if isinstance(first, bool):
        return any(values)
    if first is None or isinstance(first, str):
        return first if all(v == first for v in values) else None
    if total and _summed(path):
        return sum(values)
    return float(np.mean(values))


# --- overload warnings ---------------------------------------------------------------------


def overload_warnings(rep: Replication, label: str, signs: list[str] | None = None) -> list[str]:
    """Signs that the offered load exceeds the capacity (``_overload_signs``, unless given),
    and context caches too small for the sessions running at once (replay fidelity)."""
    found = list(_overload_signs(rep, label) if signs is None else signs)
    for (strategy, where), shadow in rep.shadows.items():
        if shadow.evicted:
            found.append(
                f"{label}: {where}'s {strategy} context cache (cache_capacity "
                f"{shadow.capacity:,}) is too small for the sessions running at once: it "
                f"would have evicted contexts still in use (at least {shadow.evicted:,} times), "
                "which replay fidelity does not model (such sessions meet wsc:BadContextToken "
                "and recover, or fail): run with fidelity full"
            )
    return found


def _overload_signs(rep: Replication, label: str) -> list[str]:
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
        for name, busy_attr, wait_attr, servers in resources:
            utilization = _series_mean(nodes, busy_attr, bins, width) / servers
            first = _series_mean(nodes, wait_attr, bins[:quarter], width)
            last = _series_mean(nodes, wait_attr, bins[-quarter:], width)
            if utilization >= 0.98 and last > 1.25 * first + 1:
                found.append(
                    f"{label}: the {farm.role} farm's {name} are saturated "
                    f"({utilization:.0%} busy) and their waiting line grew from {first:,.0f} "
                    f"to {last:,.0f} jobs over the measured window: the offered load exceeds "
                    "the capacity, latencies grow with the run's length"
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
    totals = _bin_totals(nodes, attr)
    return sum(totals[k] for k in bins) / (width * len(bins))


def _bin_totals(nodes: list, attr: str) -> list[float]:
    """Per time bin, the total ``attr`` (a per-bin series) of ``nodes``: one array sum over
    the farm, not a loop per bin (numpy adds the rows in order, as ``sum`` does: the same
    floats)."""
    if len(nodes) == 1:
        return list(getattr(nodes[0], attr))
    return np.array([getattr(n, attr) for n in nodes]).sum(axis=0).tolist()


# --- rows of the CSV outputs ---------------------------------------------------------------


def _collect(result: SimulationResult, rep: Replication, index: int, name: str) -> None:
    """messages.csv, nodes.csv, links.csv and timeseries.csv rows of one replication."""
    result.messages.extend(rep.log, replication=index)
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
            busy = _bin_totals(members, "series_busy")
            wait = _bin_totals(members, "series_wait")
            hsm = _bin_totals(members, "series_hsm") if units else None
            hsm_wait = _bin_totals(members, "series_hsm_wait") if units else None
            for k in range(len(busy)):
                result.timeseries.append(
                    {
                        "replication": index,
                        "strategy": name,
                        "node": label,
                        "role": farm.role,
                        "t_start_s": round(k * width, 6),
                        "t_end_s": round((k + 1) * width, 6),
                        "utilization": busy[k] / (cores * width),
                        "mean_queue_len": wait[k] / width,
                        "hsm_utilization": "" if hsm is None else hsm[k] / (units * width),
                        "hsm_queue_len": "" if hsm_wait is None else hsm_wait[k] / width,
                    }
                )
