"""The side-by-side table of strategies printed by ``wssim compare``."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from sim.report.labels import ROLE_ORDER, RSA_OPS, capacity_columns

#: the mark of latencies of an unstable run (offered load at or beyond the capacity)
UNSTABLE = "!"


def _latency(latency: dict, metric: str) -> str:
    ci = latency.get("ci95", {}).get(metric)
    mark = UNSTABLE if latency.get("unstable") else ""
    return f"{latency[metric]:.2f}{mark}" + (f" ±{ci:.2f}" if ci else "")


def _rate(value) -> str:
    return "-" if value is None else f"{value:,.1f}"


def comparison_table(summary: dict) -> Table:
    """One row per strategy: throughput (completed inside the window), the offered load,
    the capacity bound and its bottleneck, latency, bytes, STS requests, RSA operations per
    application message, CPU utilization of each server role, faults (± 95% CI half-widths
    from replications or batch means; latencies of an unstable run marked ``!``)."""
    strategies = summary["strategies"]
    roles = [role for role in ROLE_ORDER if any(role in s["roles"] for s in strategies.values())]
    roles += sorted({r for s in strategies.values() for r in s["roles"]} - set(roles))
    table = Table(
        title=f"{summary['scenario']}: {summary['fidelity']} fidelity, seed "
        f"{summary['seed']}, {summary['replications']} replication(s), "
        f"{summary['measured_s']:.0f} s measured"
        + (" [PARTIAL]" if summary.get("partial") else ""),
        caption=_caption(summary),
        header_style="bold",
    )
    columns = [
        ("strategy", "left"),
        ("msgs/s", "right"),
        ("offered/s", "right"),
        ("capacity/s", "right"),
        ("bottleneck", "left"),
        ("p50 ms", "right"),
        ("p95 ms", "right"),
        ("p99 ms", "right"),
        ("req B", "right"),
        ("resp B", "right"),
        ("STS B/msg", "right"),
        ("STS reqs", "right"),
        ("RSA ops/msg", "right"),
        *((f"{role} CPU", "right") for role in roles),
        ("faults", "left"),
    ]
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for name, stats in strategies.items():
        latency = stats["latency_ms"]
        sizes = stats["bytes_per_app_message"]
        rsa = sum(stats["crypto_ops_per_app_message"].get(op, 0.0) for op in RSA_OPS)
        utilization = [
            f"{stats['roles'][role]['utilization']:.1%}" if role in stats["roles"] else "-"
            for role in roles
        ]
        faults = ", ".join(f"{code} {n:g}" for code, n in stats["faults"].items()) or "-"
        capacity = stats.get("capacity") or {}
        ci = stats.get("throughput_per_s_ci95")
        table.add_row(
            name,
            f"{stats['throughput_per_s']:.1f}" + (f" ±{ci:.1f}" if ci else ""),
            _rate(stats.get("offered_per_s")),
            _rate(capacity.get("max_messages_per_s")),
            capacity.get("bottleneck") or "-",
            _latency(latency, "p50"),
            _latency(latency, "p95"),
            _latency(latency, "p99"),
            f"{sizes['request']:.0f}",
            f"{sizes['response']:.0f}",
            f"{sizes['token_service']:.0f}",
            f"{stats['sts_requests']:g}",
            f"{rsa:.2f}",
            *utilization,
            faults,
        )
    return table


def _caption(summary: dict) -> str | None:
    """The table's notes: a mixed run's classes, and what ``!`` means when it is shown."""
    notes = [_mix_caption(summary)]
    unstable = {
        name: stats["latency_ms"].get("count", stats["completed"])
        for name, stats in summary["strategies"].items()
        if stats["latency_ms"].get("unstable")
    }
    if unstable:
        counts = ", ".join(f"{name} {n:,}" for name, n in unstable.items())
        notes.append(
            f"{UNSTABLE} unstable: the offered load reaches the capacity; the latencies are of "
            f"the completed messages only ({counts}) and grow with the run's length"
        )
    return "\n".join(n for n in notes if n) or None


def capacity_table(summary: dict) -> Table | None:
    """Per strategy, the utilization law's capacity: the service demand of one application
    message on each role's resources (ms), the bottleneck and the largest rate it carries
    (c / D), beside the offered load, the throughput and the messages in flight at the
    window's end."""
    rows, columns = capacity_columns(summary)
    if not rows:
        return None
    table = Table(
        title="Capacity: service demand per application message (ms) and the bound c / D",
        caption="c: a farm's cores or HSM units, one transmitter per link direction; D "
        "measured per session (capacity.py); the bottleneck is the resource of the smallest "
        "bound",
        header_style="bold",
        box=box.SIMPLE,
    )
    for name in ("strategy", "bottleneck", "max msgs/s", "offered/s", "msgs/s", "in flight"):
        table.add_column(name, justify="left" if name in ("strategy", "bottleneck") else "right")
    for role, resource in columns:
        table.add_column(f"{role} {resource}", justify="right")
    for name, stats in rows.items():
        capacity = stats["capacity"]
        demand = capacity["demand_ms"]
        cells = [
            f"{demand[role][resource]:.3f}" if resource in demand.get(role, {}) else "-"
            for role, resource in columns
        ]
        table.add_row(
            name,
            capacity.get("bottleneck") or "-",
            _rate(capacity.get("max_messages_per_s")),
            _rate(stats.get("offered_per_s")),
            _rate(stats.get("throughput_per_s")),
            f"{stats.get('in_flight_at_end', 0):,.0f}",
            *cells,
        )
    return table


def _mix_caption(summary: dict) -> str | None:
    """For a mixed run: which class ran which strategy, and that the farms are shared."""
    classes = summary.get("classes")
    if not summary.get("mixed") or not classes:
        return None
    parts = ", ".join(
        f"{name} -> {c['strategy']} (share {c['share']:g})" for name, c in classes.items()
    )
    return f"one mixed run: {parts}; CPU columns are the farms all classes share"


def security_table(summary: dict) -> Table | None:
    """Per strategy and attack: accepted / attempts, and the checks that refused the rest;
    for the padding oracle the blocks recovered and the queries spent, for the replay-store
    flood its size."""
    rows = {
        name: stats["attacks"]
        for name, stats in summary["strategies"].items()
        if "attacks" in stats
    }
    if not rows:
        return None
    attacks = list(dict.fromkeys(attack for per in rows.values() for attack in per))
    table = Table(
        title="Security: attacks accepted / attempted (refusing checks)",
        caption="red: an attack got through. padding-oracle: campaigns in which a block "
        "fell / campaigns, then blocks recovered and queries spent; replay-flood: a replay "
        "after that many messages flooded the replay store",
        header_style="bold",
    )
    table.add_column("strategy")
    for attack in attacks:
        table.add_column(attack)
    for name, per in rows.items():
        table.add_row(name, *(_security_cell(attack, per.get(attack)) for attack in attacks))
    return table


def _security_cell(attack: str, stats: dict | None) -> str:
    if not stats or not stats["attempts"]:
        return "n/a"
    refused = ", ".join(f"{check} {n:g}" for check, n in sorted(stats["refused"].items()))
    style = "red" if stats["accepted"] else "green"
    cell = f"[{style}]{stats['accepted']:g}/{stats['attempts']:g}[/{style}]" + (
        f" ({refused})" if refused else ""
    )
    if attack == "padding-oracle":
        cell += f"; {stats.get('blocks', 0):g} block(s) in {stats.get('queries', 0):,.0f} queries"
        algorithms = ", ".join(sorted(stats.get("encryption", {})))
        if algorithms:
            cell += f" ({algorithms})"
    elif attack == "replay-flood":
        cell += f"; after {stats.get('flood_messages', 0):,.0f} messages"
    return cell


def print_comparison(summary: dict, console: Console | None = None) -> None:
    console = console or Console()
    comparison = comparison_table(summary)
    capacity = capacity_table(summary)
    if not console.is_terminal:  # a pipe or file gets the whole tables, a row a line
        wide = console.options.update(max_width=100_000)
        widths = [console.measure(t, options=wide).maximum for t in (comparison, capacity) if t]
        console.width = max(console.width, 180, *widths)
    console.print(comparison)
    if capacity is not None:
        console.print(capacity)
    security = security_table(summary)
    if security is not None:
        if not console.is_terminal:  # a row a line, however many attacks
            wide = console.options.update(max_width=100_000)
            console.width = max(console.width, console.measure(security, options=wide).maximum)
        console.print(security)
