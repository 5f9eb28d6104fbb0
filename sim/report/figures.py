"""The report's interactive charts as plotly figure specs (plain dicts, drawn in the page by
plotly.js): every axis names its unit, log axes say so, legends sit beside the plot."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from sim.report.labels import PART_LABELS, PUBLIC_KEY_OPS, other_ops

#: Tableau 10 and ten more: one colour per strategy, the same in every chart of a report
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
    "#2f4b7c",
    "#d45087",
    "#7f7f00",
    "#00a2b3",
    "#a05195",
    "#ff7c43",
    "#3b7d23",
    "#8c564b",
    "#665191",
    "#c44e52",
)
DASHES = ("solid", "dash", "dot", "dashdot")
#: points drawn per CDF line: enough for the eye, small enough for the file
CDF_POINTS = 400


def figure(title: str, data: list[dict], x: dict, y: dict, **layout) -> dict:
    """A figure spec with the report's common layout."""
    return {
        "data": data,
        "layout": {
            "title": {"text": title, "font": {"size": 15}},
            "xaxis": {"automargin": True, "gridcolor": "#e5e5e5", **x},
            "yaxis": {"automargin": True, "gridcolor": "#e5e5e5", **y},
            "legend": {"x": 1.02, "y": 1, "xanchor": "left", "font": {"size": 11}},
            "margin": {"l": 70, "r": 20, "t": 50, "b": 60},
            "plot_bgcolor": "white",
            "hoverlabel": {"namelength": -1},
            **layout,
        },
    }


def latency_axis(values: Iterable[float], title: str, unit: str = "ms") -> dict:
    """An axis for latencies (or any positive figure): logarithmic when they span a factor
    of ten or more (ticks 1, 2, 3, 5 per decade in plain numbers, "log scale" in the title),
    else linear."""
    positive = [v for v in values if v is not None and v > 0]
    if not positive or max(positive) < 10 * min(positive):
        # from zero: a 1 % change must not fill the height of the plot
        return {"title": {"text": f"{title} ({unit})"}, "rangemode": "tozero"}
    low, high = min(positive), max(positive)
    decades = range(int(np.floor(np.log10(low))), int(np.ceil(np.log10(high))) + 1)
    ticks = [round(m * 10.0**e, 12) for e in decades for m in (1, 2, 3, 5)]
    start = max([t for t in ticks if t <= low], default=low)
    stop = min([t for t in ticks if t >= high], default=high)
    chosen = [t for t in ticks if start <= t <= stop]
    return {
        "type": "log",
        "title": {"text": f"{title} ({unit}, log scale)"},
        "tickvals": chosen,
        "ticktext": [f"{t:g}" for t in chosen],
        "range": [float(np.log10(start)) - 0.02, float(np.log10(stop)) + 0.02],
    }


ROLE_COLORS = {"intermediary": "#4e79a7", "sts": "#59a14f", "provider": "#f28e2b"}


def role_colors(roles: Iterable[str]) -> dict[str, str]:
    """One colour per server role, the same in every chart (other roles take the rest)."""
    others = iter(c for c in PALETTE if c not in ROLE_COLORS.values())
    chosen = dict(ROLE_COLORS)
    for role in roles:
        chosen.setdefault(role, next(others, "#555555"))
    return chosen


def colors(names: Iterable[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(dict.fromkeys(names))}


def cdf_points(latencies: Sequence[float]) -> tuple[list[float], list[float]]:
    """At most ``CDF_POINTS`` points of the empirical CDF, the last one (the maximum) kept."""
    values = np.sort(np.asarray(latencies, dtype=float))
    if not values.size:
        return [], []
    index = np.unique(np.linspace(0, values.size - 1, min(values.size, CDF_POINTS)).round())
    index = index.astype(int)
    return (
        [round(float(v), 4) for v in values[index]],
        [round(float(f), 5) for f in (index + 1) / values.size],
    )


def latency_cdf(runs: Sequence[tuple[str, Mapping[str, list[float]]]], palette: dict) -> dict:
    """One line per strategy (and per run when several are compared: run B dashed)."""
    data = []
    for r, (label, latencies) in enumerate(runs):
        for strategy, values in latencies.items():
            x, y = cdf_points(values)
            name = f"{label}: {strategy}" if label else strategy
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": name,
                    "x": x,
                    "y": y,
                    "line": {"color": palette[strategy], "dash": DASHES[r % len(DASHES)]},
                    "hovertemplate": "%{x:.2f} ms: %{y:.1%} of messages<extra>" + name + "</extra>",
                }
            )
    return figure(
        "Latency CDF per strategy (first replication, after warm-up)",
        data,
        latency_axis((v for trace in data for v in trace["x"]), "latency per application message"),
        {
            "title": {"text": "fraction of messages completed within x"},
            "range": [0, 1.02],
            "tickformat": ".0%",
        },
        hovermode="closest",
    )


def _bars(
    title: str, names: list[str], series: dict[str, list[float]], y_title: str, hover: str
) -> dict:
    data = [
        {
            "type": "bar",
            "name": label,
            "x": names,
            "y": values,
            "hovertemplate": "%{x}: " + hover + "<extra>" + label + "</extra>",
        }
        for label, values in series.items()
    ]
    return figure(title, data, {"title": {"text": "strategy"}}, {"title": {"text": y_title}})


def bytes_per_message(summary: Mapping, prefix: str = "") -> dict:
    """Stacked bars: request, response and token service KiB per application message."""
    names = list(summary["strategies"])
    series = {
        PART_LABELS[part]: [
            round(summary["strategies"][n]["bytes_per_app_message"][part] / 1024, 3) for n in names
        ]
        for part in ("request", "response", "token_service")
    }
    fig = _bars(
        f"{prefix}Bytes on the wire per application message, split by exchange",
        names,
        series,
        "KiB per application message (SOAP envelopes)",
        "%{y:.2f} KiB",
    )
    fig["layout"]["barmode"] = "stack"
    return fig


def crypto_ops(summary: Mapping, public_key: bool, prefix: str = "") -> dict:
    """Stacked bars of the public-key (or the symmetric, hashing and XML) operations per
    application message, all nodes and STS exchanges included."""
    names = list(summary["strategies"])
    stats = summary["strategies"]
    group = PUBLIC_KEY_OPS if public_key else other_ops(stats)
    ops = [
        op for op in group if any(s["crypto_ops_per_app_message"].get(op) for s in stats.values())
    ]
    series = {
        op: [round(stats[n]["crypto_ops_per_app_message"].get(op, 0.0), 4) for n in names]
        for op in ops
    }
    what = (
        "Public-key operations (RSA, TLS handshakes)"
        if public_key
        else ("Symmetric, hashing and XML operations")
    )
    fig = _bars(
        f"{prefix}{what} per application message",
        names,
        series,
        "operations per application message (all nodes)",
        "%{y:.2f} per message",
    )
    fig["layout"]["barmode"] = "stack"
    return fig


def utilization(summary: Mapping, prefix: str = "") -> dict:
    """Grouped bars: each role's CPU utilization per strategy over the measured window."""
    names = list(summary["strategies"])
    roles = sorted({r for s in summary["strategies"].values() for r in s["roles"]})
    series = {
        role: [
            round(summary["strategies"][n]["roles"].get(role, {}).get("utilization", 0) * 100, 3)
            for n in names
        ]
        for role in roles
    }
    fig = _bars(
        f"{prefix}CPU utilization per role, averaged over the measured window",
        names,
        series,
        "CPU utilization (% of the role's cores)",
        "%{y:.2f} %",
    )
    palette = role_colors(roles)
    for trace in fig["data"]:
        trace["marker"] = {"color": palette[trace["name"]]}
    return fig


def load_over_time(
    timeseries: Iterable[Mapping], warmup_s: float, utilization_axis: bool, prefix: str = ""
) -> dict:
    """Each farm's CPU (solid) and HSM (dotted) utilization, or mean waiting line, over the
    first replication, coloured by role and grouped by strategy (a menu shows one strategy
    at a time); the warm-up shaded."""
    lines: dict[tuple[str, str], dict[str, list]] = {}
    cpu, hsm = (
        ("utilization", "hsm_utilization")
        if utilization_axis
        else ("mean_queue_len", "hsm_queue_len")
    )
    scale = 100 if utilization_axis else 1
    for row in timeseries:
        if str(row["replication"]) != "0" or not str(row["node"]).endswith("-*"):
            continue
        line = lines.setdefault((row["strategy"], row["role"]), {"t": [], "cpu": [], "hsm": []})
        line["t"].append(round((float(row["t_start_s"]) + float(row["t_end_s"])) / 2, 4))
        line["cpu"].append(round(float(row[cpu]) * scale, 4))
        value = row.get(hsm)
        line["hsm"].append(None if value in (None, "") else round(float(value) * scale, 4))
    strategies = list(dict.fromkeys(strategy for strategy, _ in lines))
    palette = role_colors(sorted({role for _, role in lines}))
    data = []
    for (strategy, role), line in sorted(lines.items(), key=lambda i: strategies.index(i[0][0])):
        color = palette[role]
        for resource, dash in (("cpu", "solid"), ("hsm", "dot")):
            if not any(v is not None for v in line[resource]):
                continue
            name = f"{role} {resource.upper()}"
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": name,
                    "legendgroup": strategy,
                    "legendgrouptitle": {"text": strategy},
                    "x": line["t"],
                    "y": line[resource],
                    "line": {"color": color, "dash": dash, "width": 1.5},
                    "hovertemplate": "t=%{x:.1f} s: %{y:.2f}<extra>"
                    + f"{strategy}: {name}</extra>",
                }
            )
    what = "utilization" if utilization_axis else "waiting line"
    layout: dict = {"legend": {"x": 1.02, "y": 1, "groupclick": "toggleitem"}}
    if warmup_s:
        layout["shapes"] = [
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": 0,
                "x1": warmup_s,
                "y0": 0,
                "y1": 1,
                "fillcolor": "#888",
                "opacity": 0.15,
                "line": {"width": 0},
            }
        ]
    if not any(v for trace in data for v in trace["y"] if v):
        layout["annotations"] = [
            {
                "text": "no job waited in any farm" if not utilization_axis else "all farms idle",
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "showarrow": False,
                "font": {"size": 14, "color": "#59636e"},
            }
        ]
    if len(strategies) > 1:
        groups = [trace["legendgroup"] for trace in data]
        layout["updatemenus"] = [
            {
                "type": "dropdown",
                "x": 0,
                "y": 1.12,
                "xanchor": "left",
                "buttons": [
                    {"label": "all strategies", "method": "restyle", "args": [{"visible": True}]},
                    *(
                        {
                            "label": strategy,
                            "method": "restyle",
                            "args": [{"visible": [g == strategy for g in groups]}],
                        }
                        for strategy in strategies
                    ),
                ],
            }
        ]
    return figure(
        f"{prefix}Farm {what} over time (grey: warm-up, not measured; dotted: HSM)",
        data,
        {"title": {"text": "simulated time (s)"}},
        {
            "title": {
                "text": "utilization (% of the farm's cores or HSMs)"
                if utilization_axis
                else "mean jobs waiting (core or HSM)"
            },
            "rangemode": "tozero",
        },
        **layout,
    )


def capacity(summary: Mapping) -> dict | None:
    """Largest sustainable rate against the offered rate, per strategy (when computed)."""
    names = [n for n, s in summary["strategies"].items() if s.get("capacity")]
    if not names:
        return None
    stats = summary["strategies"]
    series = {
        "largest rate (capacity)": [stats[n]["capacity"].get("max_messages_per_s") for n in names],
        "offered": [stats[n].get("offered_per_s") for n in names],
        "completed (throughput)": [stats[n].get("throughput_per_s") for n in names],
    }
    fig = _bars(
        "Capacity: the largest rate each strategy sustains, against the load offered",
        names,
        series,
        "application messages per second",
        "%{y:.1f} messages/s",
    )
    axis = latency_axis(
        (v for values in series.values() for v in values), "rate", "application messages/s"
    )
    fig["layout"]["yaxis"].update(axis)
    fig["layout"]["barmode"] = "group"
    return fig
