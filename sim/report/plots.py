"""Plots of a run: latency CDF, utilization per role, bytes and crypto ops per message."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import matplotlib
import matplotlib.ticker as ticker
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sim.report.labels import (
    PART_LABELS,
    PLOT_FORMATS,
    PUBLIC_KEY_OPS,
    axis_label,
    other_ops,
)

LINESTYLES = ("-", "--", "-.", ":")


def _subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """A figure and its axes, as ``pyplot.subplots`` makes them, without pyplot (its import
    and its figure manager): the Agg canvas renders every format."""
    fig = Figure(figsize=kwargs.pop("figsize", None))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    # vector formats carry no creation date nor random ids: the same run writes the same file
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(path.suffix[1:])
    with matplotlib.rc_context({"svg.hashsalt": "wssim"}):
        fig.savefig(path, dpi=110, metadata=metadata)


def latency_cdf(
    summary: dict, messages: Iterable[Mapping], path: Path, warmup_s: float = 0.0
) -> None:
    """Empirical CDF of the latency of completed messages started after the warm-up."""
    fig, ax = _subplots(figsize=(8, 5))
    kept = _kept_latencies(messages, warmup_s)
    for i, name in enumerate(summary["strategies"]):
        latencies = np.sort(kept.get(name, []))
        if latencies.size:
            ax.plot(
                latencies,
                np.arange(1, latencies.size + 1) / latencies.size,
                label=name,
                linestyle=LINESTYLES[i % len(LINESTYLES)],
                linewidth=1.6,
            )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(ticker.FuncFormatter(_minor_label))
    ax.set_xlabel(
        "latency per application message, request sent to response verified (ms, log scale)"
    )
    ax.set_ylabel("fraction of messages completed within x")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Latency CDF per strategy — {summary['scenario']} (replication 1, after warm-up)")
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    _save(fig, path)


def _kept_latencies(messages: Iterable[Mapping], warmup_s: float) -> dict[str, list[float]]:
    """Per strategy, the latencies of the completed messages of the first replication
    started after the warm-up, in one pass (as tuples from a columnar ``MessageLog``)."""
    kept: dict[str, list[float]] = {}
    tuples = getattr(messages, "tuples", None)
    if tuples is not None:
        f = {name: i for i, name in enumerate(messages.FIELDS)}
        ok, rep, start = f["ok"], f["replication"], f["start_s"]
        strategy, latency = f["strategy"], f["latency_ms"]
        for m in tuples():
            if m[ok] and m[rep] == 0 and m[start] >= warmup_s:
                kept.setdefault(m[strategy], []).append(m[latency])
        return kept
    for m in messages:
        if m["ok"] and m["replication"] == 0 and m["start_s"] >= warmup_s:
            kept.setdefault(m["strategy"], []).append(m["latency_ms"])
    return kept


def utilization(summary: dict, path: Path) -> None:
    strategies = summary["strategies"]
    roles = sorted({r for s in strategies.values() for r in s["roles"]})
    if summary.get("mixed"):
        # One topology shared by every class: one group, each role once.
        shared: dict = {}
        for entry in strategies.values():
            shared.update(entry["roles"])
        groups = {"shared farms (" + " + ".join(strategies) + ")": shared}
    else:
        groups = {name: entry["roles"] for name, entry in strategies.items()}
    names = list(groups)
    fig, ax = _subplots(figsize=(max(8, len(names) * 1.1), 5))
    width = 0.8 / max(len(roles), 1)
    x = np.arange(len(names))
    for i, role in enumerate(roles):
        values = [groups[n].get(role, {}).get("utilization", 0) * 100 for n in names]
        ax.bar(x + i * width, values, width, label=role)
    ax.set_xticks(x + width * (len(roles) - 1) / 2, names, rotation=30, ha="right")
    ax.set_ylabel("CPU utilization (% of the role's cores)")
    ax.set_title("CPU utilization per role, averaged over the measured period")
    ax.legend()
    ax.grid(True, axis="y", alpha=0.3)
    _save(fig, path)


def bytes_per_message(summary: dict, path: Path) -> None:
    names = list(summary["strategies"])
    parts = ("request", "response", "token_service")
    fig, ax = _subplots(figsize=(max(8, len(names) * 1.1), 5))
    bottom = np.zeros(len(names))
    for part in parts:
        values = (
            np.array([summary["strategies"][n]["bytes_per_app_message"][part] for n in names])
            / 1024
        )
        ax.bar(names, values, bottom=bottom, label=PART_LABELS[part])
        bottom += values
    ax.set_ylabel("KiB per application message (SOAP envelopes)")
    ax.set_title("Bytes on the wire per application message, split by exchange")
    ax.tick_params(axis="x", rotation=30)
    ax.legend()
    ax.grid(True, axis="y", alpha=0.3)
    _save(fig, path)


def crypto_ops(summary: dict, path: Path) -> None:
    """Two panels: the expensive public-key operations, then the cheap symmetric and XML ones."""
    names = list(summary["strategies"])
    stats = summary["strategies"]
    fig, axes = _subplots(1, 2, figsize=(max(12, len(names) * 1.6), 5.5))
    colors = matplotlib.colormaps["tab20"]
    every = PUBLIC_KEY_OPS + other_ops(stats)
    for ax, group, title in (
        (axes[0], PUBLIC_KEY_OPS, "Public-key operations (RSA, TLS handshakes)"),
        (axes[1], other_ops(stats), "Symmetric, hashing, XML and other operations"),
    ):
        ops = [
            op
            for op in group
            if any(s["crypto_ops_per_app_message"].get(op) for s in stats.values())
        ]
        bottom = np.zeros(len(names))
        for op in ops:
            values = np.array([stats[n]["crypto_ops_per_app_message"].get(op, 0) for n in names])
            ax.bar(
                names,
                values,
                bottom=bottom,
                label=op,
                color=colors(every.index(op) % 20),
            )
            bottom += values
        ax.set_ylabel("operations per application message (all nodes)")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=35)
        for label in ax.get_xticklabels():
            label.set_ha("right")
        if ops:
            ax.legend(fontsize=8, ncol=2)
        else:
            ax.text(0.5, 0.5, "none", transform=ax.transAxes, ha="center", color="0.4")
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(
        "Cryptographic and XML operations per application message (STS exchanges included)"
    )
    _save(fig, path)


def _minor_label(value: float, _pos) -> str:
    """Label 2, 3 and 5 times each decade on a log axis, the rest unlabelled."""
    mantissa = value / 10 ** np.floor(np.log10(value))
    return (
        f"{value:g}"
        if round(mantissa) in (2, 3, 5) and abs(mantissa - round(mantissa)) < 1e-6
        else ""
    )


def load_over_time(timeseries: Iterable[Mapping], path: Path, warmup_s: float = 0.0) -> None:
    """Each farm's CPU utilization and waiting line over the run (the first replication):
    where a crash, a restart or an overload shows."""
    lines: dict[str, tuple[list, list, list, list, list]] = {}
    for row in timeseries:
        if row["replication"] != 0 or not row["node"].endswith("-*"):
            continue
        key = f"{row['strategy']}: {row['role']}"
        t, util, queue, hsm, hsm_queue = lines.setdefault(key, ([], [], [], [], []))
        t.append((row["t_start_s"] + row["t_end_s"]) / 2)
        util.append(row["utilization"] * 100)
        queue.append(row["mean_queue_len"])
        if row.get("hsm_utilization") not in (None, ""):
            hsm.append(row["hsm_utilization"] * 100)
            hsm_queue.append(row["hsm_queue_len"])
    fig, (top, bottom) = _subplots(2, 1, figsize=(10, 7), sharex=True)
    for label, (t, util, queue, hsm, hsm_queue) in sorted(lines.items()):
        (line,) = top.plot(t, util, label=f"{label} CPU")
        bottom.plot(t, queue, color=line.get_color(), label=f"{label} CPU")
        if hsm:
            top.plot(t, hsm, ls="--", color=line.get_color(), label=f"{label} HSM")
            bottom.plot(t, hsm_queue, ls="--", color=line.get_color(), label=f"{label} HSM")
    for ax in (top, bottom):
        if warmup_s:
            ax.axvspan(0, warmup_s, color="grey", alpha=0.15, lw=0)
        ax.grid(True, alpha=0.3)
    top.set_ylabel("utilization (% of the farm's cores or HSMs)")
    top.set_title("Load over time per farm (grey: warm-up, not measured)")
    bottom.set_ylabel("mean jobs waiting (core or HSM)")
    bottom.set_xlabel("simulated time (s)")
    top.legend(fontsize="small")
    bottom.legend(fontsize="small")
    _save(fig, path)


def write_plots(
    out: Path,
    summary: dict,
    messages: Iterable[Mapping],
    warmup_s: float = 0.0,
    timeseries: Iterable[Mapping] = (),
    fmt: str = "png",
) -> list[Path]:
    """The run's plots under ``out/plots`` as ``fmt`` files (png, svg or pdf); none when no
    strategy finished (interrupted)."""
    if not summary["strategies"]:
        return []
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    written = []
    for name, draw in (
        ("latency_cdf", lambda path: latency_cdf(summary, messages, path, warmup_s=warmup_s)),
        ("utilization", lambda path: utilization(summary, path)),
        ("bytes_per_message", lambda path: bytes_per_message(summary, path)),
        ("crypto_ops", lambda path: crypto_ops(summary, path)),
        ("load_over_time", lambda path: load_over_time(timeseries, path, warmup_s)),
    ):
        path = plots / f"{name}.{_format(fmt)}"
        draw(path)
        written.append(path)
    return written


def _format(fmt: str) -> str:
    if fmt not in PLOT_FORMATS:
        raise ValueError(f"plot format {fmt!r}; one of {', '.join(PLOT_FORMATS)}")
    return fmt


def _series(rows: list[dict], keys: list[str]) -> dict[str, list[dict]]:
    """Rows grouped into one line per strategy and per value of the other swept keys."""
    series: dict[str, list[dict]] = {}
    for row in rows:
        label = ", ".join([row["strategy"], *(f"{k}={row[k]}" for k in keys[1:])])
        series.setdefault(label, []).append(row)
    return series


def sweep_plots(out: Path, rows: list[dict], keys: list[str], fmt: str = "png") -> list[Path]:
    """Throughput and p99 latency against the first swept key (numeric values), one line per
    strategy and combination of the other keys; error bars when replications give CIs."""
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    x_key = keys[0]
    numeric = [r for r in rows if isinstance(r[x_key], (int, float))]
    written = []
    for metric, label, name in (
        ("throughput_per_s", "completed application messages per second", "throughput"),
        ("p99_ms", "99th percentile latency (ms, log scale)", "p99"),
    ):
        name = f"{name}.{_format(fmt)}"
        fig, ax = _subplots(figsize=(9, 5.5))
        for i, (series, points) in enumerate(sorted(_series(numeric, keys).items())):
            points = sorted(points, key=lambda r: r[x_key])
            errors = [r.get(f"{metric}_ci95") or 0.0 for r in points]
            ax.errorbar(
                [r[x_key] for r in points],
                [r[metric] for r in points],
                yerr=errors if any(errors) else None,
                marker="o",
                capsize=3,
                linestyle=LINESTYLES[i // 10 % len(LINESTYLES)],
                label=series,
            )
        ax.set_xlabel(axis_label(x_key))
        ax.set_ylabel(label)
        if metric == "p99_ms":
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(ticker.FuncFormatter(_minor_label))
        ax.set_title(f"{label} against {x_key}")
        ax.grid(True, which="both", alpha=0.3)
        if numeric:
            ax.legend(fontsize=8)
        else:
            ax.text(
                0.5,
                0.5,
                f"{x_key} is not numeric: see sweep.csv",
                transform=ax.transAxes,
                ha="center",
            )
        _save(fig, plots / name)
        written.append(plots / name)
    return written


def plan_plot(path: Path, result: dict, metric: str) -> None:
    """The evidence of a plan: the metric at every value tried, the target as a line."""
    vary = result["vary"]
    fig, ax = _subplots(figsize=(8, 5))
    rows = result["evidence"]
    for strategy in sorted({r["strategy"] for r in rows}):
        points = sorted((r[vary], r[metric]) for r in rows if r["strategy"] == strategy)
        ax.plot(*zip(*points, strict=True), marker="o", linestyle="", label=strategy)
    threshold = float(re.split(r"[<>]=?", result["target"])[-1])
    ax.axhline(threshold, color="crimson", linestyle="--", label=f"target {result['target']}")
    if result["answer"] is not None:
        ax.axvline(
            result["answer"],
            color="green",
            linestyle=":",
            label=f"answer {vary}={result['answer']}",
        )
    ax.set_xlabel(axis_label(vary))
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ylabels = {
        "throughput_per_s": "completed messages per second",
        "failed": "failed application messages",
    }
    ax.set_ylabel(ylabels.get(metric, f"{metric.removesuffix('_ms')} latency (ms, log scale)"))
    if metric.endswith("_ms"):
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(ticker.FuncFormatter(_minor_label))
    ax.set_title(
        f"Capacity plan for {result['target']}: {result['runs']} runs\n"
        "(exponential then binary search; every value tried is shown)",
        fontsize=11,
    )
    ax.margins(x=0.15)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
