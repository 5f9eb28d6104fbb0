"""The side-by-side table of strategies printed by ``wssim compare``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

RSA_OPS = ("rsa_sign", "rsa_verify", "rsa_encrypt", "rsa_decrypt", "rsa_keygen")


ROLE_ORDER = ("intermediary", "sts", "provider")


def _latency(latency: dict, metric: str) -> str:
    ci = latency.get("ci95", {}).get(metric)
    return f"{latency[metric]:.2f}" + (f" ±{ci:.2f}" if ci else "")


def comparison_table(summary: dict) -> Table:
    """One row per strategy: latency, throughput, bytes, STS requests, RSA operations per
    application message, CPU utilization of each server role, faults (± 95% CI half-widths
    when the run had several replications)."""
    strategies = summary["strategies"]
    roles = [role for role in ROLE_ORDER if any(role in s["roles"] for s in strategies.values())]
    roles += sorted({r for s in strategies.values() for r in s["roles"]} - set(roles))
    table = Table(
        title=f"{summary['scenario']}: {summary['fidelity']} fidelity, seed "
        f"{summary['seed']}, {summary['replications']} replication(s), "
        f"{summary['measured_s']:.0f} s measured"
        + (" [PARTIAL]" if summary.get("partial") else ""),
        caption=_mix_caption(summary),
        header_style="bold",
    )
    columns = [
        ("strategy", "left"),
        ("msgs/s", "right"),
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
        table.add_row(
            name,
            f"{stats['throughput_per_s']:.1f}",
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
    if not console.is_terminal:
        console.width = max(console.width, 180)  # a pipe or file gets the whole table
    console.print(comparison_table(summary))
    security = security_table(summary)
    if security is not None:
        if not console.is_terminal:  # a row a line, however many attacks
            wide = console.options.update(max_width=100_000)
            console.width = max(console.width, console.measure(security, options=wide).maximum)
        console.print(security)
