"""The report's charts of sweeps and plans: a figure against the swept or varied key."""

from __future__ import annotations

from collections.abc import Mapping

from sim.report.figures import DASHES, colors, figure, latency_axis
from sim.report.labels import axis_label


def sweep(rows: list[Mapping], keys: list[str], metric: str) -> dict:
    """A metric against the first swept key, one line per strategy and combination of the
    other keys, error bars from the replications' confidence intervals."""
    x_key = keys[0]
    series: dict[str, list[Mapping]] = {}
    for row in rows:
        label = ", ".join([str(row["strategy"]), *(f"{k}={row[k]}" for k in keys[1:])])
        series.setdefault(label, []).append(row)
    palette = colors(str(row["strategy"]) for row in rows)
    numeric = all(isinstance(row.get(x_key), (int, float)) for row in rows)
    data = []
    for i, (label, points) in enumerate(sorted(series.items())):
        if numeric:
            points = sorted(points, key=lambda r: r[x_key])
        errors = [_number(r.get(f"{metric}_ci95")) or 0.0 for r in points]
        trace = {
            "type": "scatter",
            "mode": "lines+markers",
            "name": label,
            "x": [r[x_key] for r in points],
            "y": [r[metric] for r in points],
            "line": {
                "color": palette[str(points[0]["strategy"])],
                "dash": DASHES[i // len(palette) % len(DASHES)],
            },
            "hovertemplate": f"{x_key}=%{{x}}: %{{y:.2f}}<extra>{label}</extra>",
        }
        if any(errors):
            trace["error_y"] = {"type": "data", "array": errors, "visible": True}
        data.append(trace)
    if metric == "p99_ms":
        title, y = (
            "p99 latency against " + x_key,
            latency_axis((v for trace in data for v in trace["y"]), "99th percentile latency"),
        )
    else:
        title, y = (
            "Throughput against " + x_key,
            {
                "title": {"text": "completed application messages per second"},
                "rangemode": "tozero",
            },
        )
    x = {"title": {"text": axis_label(x_key)}}
    if not numeric:
        x["type"] = "category"
    return figure(title, data, x, y)


def plan(result: Mapping, metric: str) -> dict:
    """The metric at every value a plan tried, the target and the answer as lines."""
    vary = result["vary"]
    rows = result.get("evidence", [])
    palette = colors(r["strategy"] for r in rows)
    data = []
    for strategy in palette:
        points = sorted(
            (r[vary], r[metric])
            for r in rows
            if r["strategy"] == strategy and r.get(metric) is not None
        )
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": strategy,
                "x": [p[0] for p in points],
                "y": [p[1] for p in points],
                "marker": {"color": palette[strategy], "size": 9},
                "hovertemplate": f"{vary}=%{{x}}: %{{y:.2f}}<extra>{strategy}</extra>",
            }
        )
    threshold = _target_value(result.get("target", ""))
    shapes = []
    if threshold is not None:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"target {result['target']}",
                "x": [min((p["x"][0] for p in data if p["x"]), default=0), _max_x(data)],
                "y": [threshold, threshold],
                "line": {"color": "crimson", "dash": "dash"},
            }
        )
    if result.get("answer") is not None:
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": result["answer"],
                "x1": result["answer"],
                "y0": 0,
                "y1": 1,
                "line": {"color": "green", "dash": "dot"},
            }
        )
    y = {"title": {"text": metric}}
    if metric.endswith("_ms"):
        y = latency_axis(
            (v for trace in data[: len(palette)] for v in trace["y"]),
            f"{metric.removesuffix('_ms')} latency",
        )
    xs = [p for trace in data for p in trace["x"]]
    integers = all(isinstance(p, int) for p in xs)
    # integer keys (nodes, cores): ticks on the integers only
    ticks = {"dtick": 1} if max(xs, default=0) - min(xs, default=0) <= 20 else {"tickformat": "d"}
    return figure(
        f"Capacity plan for {result.get('target')}: every value tried (green: the answer)",
        data,
        {"title": {"text": axis_label(vary)}, **(ticks if integers else {})},
        y,
        shapes=shapes,
    )


def _max_x(data: list[dict]) -> float:
    return max((max(p["x"]) for p in data if p["x"]), default=1)


def _target_value(target: str) -> float | None:
    for symbol in ("<=", ">=", "<", ">"):
        if symbol in target:
            return _number(target.split(symbol)[-1])
    return None


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
