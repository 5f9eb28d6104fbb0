"""The report's HTML tables: strategies with confidence intervals, capacity, the differences
between two runs, sweep and plan rows. Every figure cell carries ``data-key`` (what it is)
and ``data-value`` (the number as summary.json has it), so a test can read them back."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence

from sim.report.labels import ROLE_ORDER, RSA_OPS, capacity_columns

LATENCY = ("mean", "p50", "p95", "p99", "max")


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def number(value, digits: int = 2) -> str:
    """A figure for a reader: thousands separated, ``digits`` decimals for non-integers."""
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return (
            f"{value:,.0f}" if value.is_integer() and abs(value) >= 100 else f"{value:,.{digits}f}"
        )
    return esc(value)


def cell(key: str, value, ci=None, digits: int = 2, css: str = "num") -> str:
    """A figure cell; ``± ci`` (the 95 % half-width) after it when there is one."""
    text = number(value, digits)
    if ci:
        text += f' <span class="ci">±{number(float(ci), digits)}</span>'
    attributes = f' data-key="{esc(key)}"'
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        attributes += f' data-value="{value!r}"'
    return f'<td class="{css}"{attributes}>{text}</td>'


def table(headers: Sequence[str], rows: Iterable[str], css: str = "", caption: str = "") -> str:
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "\n".join(f"<tr>{r}</tr>" for r in rows)
    cap = f"<caption>{caption}</caption>" if caption else ""
    return (
        f'<div class="table-wrap"><table class="{css}">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def roles_of(strategies: Mapping) -> list[str]:
    present = {r for s in strategies.values() for r in s.get("roles", {})}
    return [r for r in ROLE_ORDER if r in present] + sorted(present - set(ROLE_ORDER))


def strategy_table(summary: Mapping, run: str = "") -> str:
    """One row per strategy: messages, throughput, latency, bytes, STS requests, RSA
    operations, CPU per role and faults, each with its 95 % CI when replications > 1."""
    strategies = summary["strategies"]
    roles = roles_of(strategies)
    headers = [
        "strategy",
        "messages started",
        "completed",
        "failed",
        "throughput (msg/s)",
        *(f"{m} latency (ms)" for m in LATENCY),
        "request (B)",
        "response (B)",
        "token service (B/msg)",
        "STS requests",
        "RSA ops/msg",
        *(f"{r} CPU (%)" for r in roles),
        "faults",
    ]
    rows = []
    for name, stats in strategies.items():
        key = f"{run}{name}"
        latency = stats["latency_ms"]
        ci = latency.get("ci95", {})
        sizes = stats["bytes_per_app_message"]
        rsa = sum(stats["crypto_ops_per_app_message"].get(op, 0.0) for op in RSA_OPS)
        faults = ", ".join(f"{esc(c)} {n:g}" for c, n in stats.get("faults", {}).items()) or "–"
        parts = [
            f'<th class="name" scope="row">{esc(name)}</th>',
            cell(f"{key}/app_messages", stats["app_messages"]),
            cell(f"{key}/completed", stats["completed"]),
            cell(f"{key}/failed", stats["failed"], css="num bad" if stats["failed"] else "num"),
            cell(
                f"{key}/throughput_per_s",
                stats["throughput_per_s"],
                stats.get("throughput_per_s_ci95"),
            ),
            *(cell(f"{key}/latency_ms.{m}", latency[m], ci.get(m)) for m in LATENCY),
            cell(f"{key}/bytes.request", sizes["request"], digits=0),
            cell(f"{key}/bytes.response", sizes["response"], digits=0),
            cell(f"{key}/bytes.token_service", sizes["token_service"], digits=0),
            cell(f"{key}/sts_requests", stats["sts_requests"]),
            cell(f"{key}/rsa_ops", round(rsa, 4)),
            *(
                cell(f"{key}/roles.{r}.utilization", stats["roles"][r]["utilization"] * 100)
                if r in stats["roles"]
                else "<td>–</td>"
                for r in roles
            ),
            f"<td>{faults}</td>",
        ]
        rows.append("".join(parts))
    return table(headers, rows, "figures")


def capacity_table(summary: Mapping, run: str = "") -> str | None:
    """Per strategy: the bottleneck, the largest sustainable rate, the offered rate and what
    each role's resources spend per message (``capacity`` in summary.json)."""
    strategies, columns = capacity_columns(summary)
    if not strategies:
        return None
    headers = [
        "strategy",
        "bottleneck",
        "largest rate (msg/s)",
        "offered (msg/s)",
        "completed (msg/s)",
        "in flight at end",
        *(f"{role} {resource} (ms/msg)" for role, resource in columns),
    ]
    rows = []
    for name, stats in strategies.items():
        capacity = stats["capacity"]
        demand = capacity.get("demand_ms") or {}
        key = f"{run}{name}"
        offered = stats.get("offered_per_s")
        limit = capacity.get("max_messages_per_s")
        over = (
            isinstance(offered, (int, float))
            and isinstance(limit, (int, float))
            and offered > limit
        )
        rows.append(
            "".join(
                [
                    f'<th class="name" scope="row">{esc(name)}</th>',
                    f'<td data-key="{esc(key)}/capacity.bottleneck">'
                    f"{esc(capacity.get('bottleneck', '–'))}</td>",
                    cell(f"{key}/capacity.max_messages_per_s", limit),
                    cell(f"{key}/offered_per_s", offered, css="num bad" if over else "num"),
                    cell(f"{key}/throughput_per_s", stats.get("throughput_per_s")),
                    cell(f"{key}/in_flight_at_end", stats.get("in_flight_at_end")),
                    *(
                        cell(
                            f"{key}/capacity.demand_ms.{role}.{resource}",
                            demand.get(role, {}).get(resource),
                            digits=3,
                        )
                        for role, resource in columns
                    ),
                ]
            )
        )
    return table(headers, rows, "figures capacity")


def _figures(stats: Mapping) -> dict[str, tuple[float, float | None]]:
    """The figures a comparison of two runs shows for one strategy: (value, 95 % CI)."""
    latency = stats["latency_ms"]
    ci = latency.get("ci95", {})
    figures = {
        "throughput (msg/s)": (stats["throughput_per_s"], stats.get("throughput_per_s_ci95")),
        **{f"{m} latency (ms)": (latency[m], ci.get(m)) for m in LATENCY},
        "failed": (stats["failed"], None),
        **{
            f"{part} (B/msg)": (stats["bytes_per_app_message"][part], None)
            for part in ("request", "response", "token_service")
        },
        "STS requests": (stats["sts_requests"], None),
        "RSA ops/msg": (
            sum(stats["crypto_ops_per_app_message"].get(op, 0.0) for op in RSA_OPS),
            None,
        ),
    }
    for role, role_stats in sorted(stats.get("roles", {}).items()):
        figures[f"{role} CPU (%)"] = (role_stats["utilization"] * 100, None)
    if stats.get("capacity"):
        figures["largest rate (msg/s)"] = (stats["capacity"].get("max_messages_per_s"), None)
    return figures


def delta_rows(a: Mapping, b: Mapping) -> list[dict]:
    """Every figure of every strategy both runs have: A, B, the change, and whether it is
    larger than the two confidence intervals together (None without CIs)."""
    rows = []
    for name in [n for n in a["strategies"] if n in b["strategies"]]:
        fa, fb = _figures(a["strategies"][name]), _figures(b["strategies"][name])
        for figure in [f for f in fa if f in fb]:
            (va, ca), (vb, cb) = fa[figure], fb[figure]
            if not isinstance(va, (int, float)) or not isinstance(vb, (int, float)):
                continue
            delta = vb - va
            rows.append(
                {
                    "strategy": name,
                    "figure": figure,
                    "a": va,
                    "b": vb,
                    "delta": delta,
                    "relative": delta / va if va else None,
                    "significant": abs(delta) > (ca or 0) + (cb or 0)
                    if ca is not None and cb is not None
                    else None,
                }
            )
    return rows


def delta_table(rows: list[dict], labels: tuple[str, str]) -> str:
    """The figures that changed; those that did not, folded away below them."""
    headers = ["strategy", "figure", esc(labels[0]), esc(labels[1]), "change", "change (%)", ""]
    body: list[str] = []
    same: list[str] = []
    for row in rows:
        key = f"{row['strategy']}/{row['figure']}"
        relative = row["relative"]
        changed = row["delta"] != 0
        verdict = {True: "beyond the CIs", False: "within the CIs", None: ""}[row["significant"]]
        css = "changed" if changed and row["significant"] is not False else ""
        (body if changed else same).append(
            f'<th class="name" scope="row">{esc(row["strategy"])}</th><td>{esc(row["figure"])}</td>'
            + cell(f"A/{key}", row["a"])
            + cell(f"B/{key}", row["b"])
            + cell(f"delta/{key}", row["delta"], css=f"num {css}")
            + cell(
                f"relative/{key}",
                None if relative is None else relative * 100,
                digits=1,
                css=f"num {css}",
            )
            + f"<td>{verdict}</td>"
        )
    text = (
        table(headers, body, "figures deltas") if body else '<p class="same">No figure changed.</p>'
    )
    if same:
        text += (
            f"<details><summary>{len(same)} figures unchanged</summary>"
            f"{table(headers, same, 'figures deltas')}</details>"
        )
    return text


def scenario_diff_table(diff: list[tuple[str, object, object]], labels: tuple[str, str]) -> str:
    if not diff:
        return '<p class="same">The two runs have the same scenario, seed and settings.</p>'
    rows = [
        f'<th class="name" scope="row">{esc(k)}</th><td data-key="scenario-a/{esc(k)}">'
        f'{esc(_plain(a))}</td><td data-key="scenario-b/{esc(k)}">{esc(_plain(b))}</td>'
        for k, a, b in diff
    ]
    return table(["key", esc(labels[0]), esc(labels[1])], rows, "diff")


def _plain(value) -> str:
    from sim.report.scenario_text import toml_value

    return "(not set)" if value is None else toml_value(value)


def rows_table(rows: list[Mapping], columns: list[str], css: str = "figures") -> str:
    """A sweep's or plan's rows, the given columns."""
    body = []
    for i, row in enumerate(rows):
        body.append(
            "".join(
                f'<th class="name" scope="row">{esc(row.get(c, ""))}</th>'
                if c == "strategy"
                else cell(f"row{i}/{c}", row.get(c))
                for c in columns
            )
        )
    return table([esc(c) for c in columns], body, css)
