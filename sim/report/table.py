"""The side-by-side table of strategies printed by ``wssim compare``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

RSA_OPS = ("rsa_sign", "rsa_verify", "rsa_encrypt", "rsa_decrypt", "rsa_keygen")


def comparison_table(summary: dict) -> Table:
    table = Table(
        title=f"{summary['scenario']}: {summary['fidelity']} fidelity, seed "
        f"{summary['seed']}, {summary['measured_s']:.0f} s measured",
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
        ("busiest role util", "right"),
        ("faults", "left"),
    ]
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for name, stats in summary["strategies"].items():
        latency = stats["latency_ms"]
        sizes = stats["bytes_per_app_message"]
        rsa = sum(stats["crypto_ops_per_app_message"].get(op, 0.0) for op in RSA_OPS)
        busiest = max(
            stats["roles"].items(), key=lambda kv: kv[1]["utilization"], default=(None, None)
        )
        util = f"{busiest[0]} {busiest[1]['utilization']:.1%}" if busiest[0] else "-"
        faults = ", ".join(f"{code} {n:g}" for code, n in stats["faults"].items()) or "-"
        table.add_row(
            name,
            f"{stats['throughput_per_s']:.1f}",
            f"{latency['p50']:.2f}",
            f"{latency['p95']:.2f}",
            f"{latency['p99']:.2f}",
            f"{sizes['request']:.0f}",
            f"{sizes['response']:.0f}",
            f"{sizes['token_service']:.0f}",
            f"{stats['sts_requests']:g}",
            f"{rsa:.2f}",
            util,
            faults,
        )
    return table


def security_table(summary: dict) -> Table | None:
    """Per strategy and attack: accepted / attempts, and the checks that refused the rest."""
    rows = {
        name: stats["attacks"]
        for name, stats in summary["strategies"].items()
        if "attacks" in stats
    }
    if not rows:
        return None
    attacks = sorted({attack for per in rows.values() for attack in per})
    table = Table(
        title="Security: attacks accepted / attempted (refusing checks)", header_style="bold"
    )
    table.add_column("strategy")
    for attack in attacks:
        table.add_column(attack)
    for name, per in rows.items():
        cells = []
        for attack in attacks:
            stats = per.get(attack)
            if not stats or not stats["attempts"]:
                cells.append("n/a")
                continue
            refused = ", ".join(f"{check} {n:g}" for check, n in sorted(stats["refused"].items()))
            style = "red" if stats["accepted"] else "green"
            cells.append(
                f"[{style}]{stats['accepted']:g}/{stats['attempts']:g}[/{style}]"
                + (f" ({refused})" if refused else "")
            )
        table.add_row(name, *cells)
    return table


def print_comparison(summary: dict, console: Console | None = None) -> None:
    console = console or Console()
    if not console.is_terminal:
        console.width = max(console.width, 180)  # a pipe or file gets the whole table
    console.print(comparison_table(summary))
    security = security_table(summary)
    if security is not None:
        console.print(security)
