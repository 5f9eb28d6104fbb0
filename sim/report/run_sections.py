"""The report's sections for runs: facts, scenario, figures, capacity, charts; and two runs
compared side by side."""

from __future__ import annotations

import csv

from sim.report import figures
from sim.report.page import Page, Source, facts
from sim.report.scenario_text import scenario_diff, to_toml
from sim.report.tables import (
    capacity_table,
    delta_rows,
    delta_table,
    esc,
    scenario_diff_table,
    strategy_table,
)


def run_facts(source: Source) -> str:
    summary, manifest = source.summary, source.manifest
    machine = manifest.get("machine") or {}
    meta = manifest.get("profile_meta") or {}
    profile = summary.get("profile")
    if meta:
        measured = ", ".join(
            f"{k} {meta[k]}"
            for k in ("machine", "processor", "crypto_backend", "measured")
            if meta.get(k)
        )
        profile = f"{profile} (calibrated on {measured})"
    return facts(
        [
            ("scenario", summary.get("scenario")),
            ("description", manifest.get("scenario", {}).get("description")),
            ("seed", summary.get("seed")),
            ("fidelity", summary.get("fidelity")),
            ("replications", summary.get("replications")),
            ("measured window", f"{summary.get('measured_s', 0):g} s"),
            ("wssim version", summary.get("version") or manifest.get("version")),
            ("run on", manifest.get("created")),
            (
                "machine",
                f"{machine.get('cpu', '')}, {machine.get('cores', '?')} cores, "
                f"{manifest.get('platform', '')}"
                if machine
                else manifest.get("platform"),
            ),
            ("python", manifest.get("python")),
            ("calibration profile", profile),
            ("wall time", f"{manifest['wall_s']} s" if "wall_s" in manifest else None),
            ("command", " ".join(manifest.get("command", []))),
            ("scenario sha256", manifest.get("scenario_sha256")),
        ]
    )


def latencies(source: Source) -> dict[str, list[float]]:
    """Completed messages of the first replication started after the warm-up, per strategy."""
    if source.latencies is not None:
        return source.latencies
    path = source.path / "messages.csv"
    warmup = float(source.manifest.get("scenario", {}).get("run", {}).get("warmup_s", 0.0))
    kept: dict[str, list[float]] = {name: [] for name in source.summary["strategies"]}
    if not path.is_file():
        return kept
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if (
                row["replication"] == "0"
                and row["ok"] == "True"
                and float(row["start_s"]) >= warmup
            ):
                kept.setdefault(row["strategy"], []).append(float(row["latency_ms"]))
    source.latencies = kept
    return kept


def _timeseries(source: Source) -> list[dict]:
    path = source.path / "timeseries.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [
            row
            for row in csv.DictReader(handle)
            if row["replication"] == "0" and row["node"].endswith("-*")
        ]


def _run_warnings(page: Page, source: Source) -> None:
    prefix = f"{source.label}: " if source.label else ""
    for warning in source.summary.get("warnings", []):
        page.warnings.append(prefix + warning)
    if source.summary.get("partial"):
        page.warnings.append(prefix + "the run was interrupted: its figures are partial")
    for name in ("messages.csv", "timeseries.csv"):
        if not (source.path / name).is_file():
            page.warnings.append(f"{prefix}{source.path} has no {name}: its charts are missing")


def run_section(page: Page, source: Source) -> None:
    _run_warnings(page, source)
    summary = source.summary
    label = source.label
    key = f"{label}:" if label else ""
    palette = figures.colors(summary["strategies"])
    warmup = float(source.manifest.get("scenario", {}).get("run", {}).get("warmup_s", 0.0))
    scenario = (
        "<details><summary>scenario (TOML, as run: --set overrides applied)</summary>"
        f'<pre class="toml">{esc(to_toml(source.manifest.get("scenario", {})))}</pre></details>'
    )
    if not summary["strategies"]:  # interrupted before any strategy finished
        body = f'{run_facts(source)}{scenario}<p class="partial">No strategy finished.</p>'
        page.section(f"Run {source.title}", body)
        return
    timeseries = _timeseries(source)
    parts = [
        run_facts(source),
        scenario,
        "<h3>Figures per strategy (± 95 % confidence half-width over replications)</h3>",
        strategy_table(summary, key),
    ]
    capacity = capacity_table(summary, key)
    if capacity:
        parts += [
            "<h3>Capacity: bottleneck and the largest rate per strategy</h3>",
            capacity,
            page.chart(figures.capacity(summary), "capacity", label),
        ]
    parts += [
        page.chart(figures.latency_cdf([("", latencies(source))], palette), "latency-cdf", label),
        page.chart(figures.utilization(summary), "utilization", label),
    ]
    if timeseries:
        parts += [
            page.chart(figures.load_over_time(timeseries, warmup, True), "load-utilization", label),
            page.chart(figures.load_over_time(timeseries, warmup, False), "load-queue", label),
        ]
    parts += [
        page.chart(figures.bytes_per_message(summary), "bytes", label),
        page.chart(figures.crypto_ops(summary, True), "public-key-ops", label),
        page.chart(figures.crypto_ops(summary, False), "symmetric-ops", label),
    ]
    page.section(f"Run {source.title}", "\n".join(p for p in parts if p))


def comparison(page: Page, a: Source, b: Source) -> None:
    """Two runs side by side: what changed in the scenario, what it did to each figure."""
    labels = (a.label, b.label)
    settings = ("seed", "fidelity", "replications", "profile", "version")
    diff = scenario_diff(
        {**a.manifest.get("scenario", {}), **{f"({k})": a.summary.get(k) for k in settings}},
        {**b.manifest.get("scenario", {}), **{f"({k})": b.summary.get(k) for k in settings}},
    )
    strategies = list(dict.fromkeys([*a.summary["strategies"], *b.summary["strategies"]]))
    palette = figures.colors(strategies)
    rows = delta_rows(a.summary, b.summary)
    both = [s for s in a.summary["strategies"] if s in b.summary["strategies"]]
    parts = [
        '<div class="side-by-side">',
        f"<div><h3>{esc(a.title)}</h3>{run_facts(a)}</div>",
        f"<div><h3>{esc(b.title)}</h3>{run_facts(b)}</div>",
        "</div>",
        f"<h3>What changed in the scenario ({len(diff)} keys)</h3>",
        scenario_diff_table(diff, labels),
        page.chart(
            figures.latency_cdf([(a.label, latencies(a)), (b.label, latencies(b))], palette),
            "compare-latency-cdf",
            f"{a.label}{b.label}",
        ),
        page.chart(_paired(a, b, both, "p99"), "compare-p99", f"{a.label}{b.label}"),
        page.chart(_paired(a, b, both, "throughput"), "compare-throughput", f"{a.label}{b.label}"),
        f"<h3>What it did to each figure ({esc(b.label)} against {esc(a.label)})</h3>",
        '<p class="note">Highlighted: changed by more than the two runs\' 95 % confidence '
        "half-widths together (with one replication there are no intervals).</p>",
        delta_table(rows, labels),
    ]
    only = sorted(set(a.summary["strategies"]) ^ set(b.summary["strategies"]))
    if only:
        parts.insert(4, f'<p class="note">In one run only: {esc(", ".join(only))}</p>')
    page.section(f"Compare {a.label} and {b.label}", "\n".join(p for p in parts if p))


def _paired(a: Source, b: Source, names: list[str], what: str) -> dict:
    """One bar per run and strategy: p99 latency or throughput, with the CIs."""
    data = []
    for source, pattern in ((a, ""), (b, "/")):
        stats = [source.summary["strategies"][n] for n in names]
        if what == "p99":
            values = [s["latency_ms"]["p99"] for s in stats]
            errors = [s["latency_ms"].get("ci95", {}).get("p99") or 0 for s in stats]
        else:
            values = [s["throughput_per_s"] for s in stats]
            errors = [s.get("throughput_per_s_ci95") or 0 for s in stats]
        trace = {
            "type": "bar",
            "name": source.title,
            "x": names,
            "y": values,
            "marker": {"pattern": {"shape": pattern}},
            "hovertemplate": "%{x}: %{y:.2f}<extra>" + esc(source.label) + "</extra>",
        }
        if any(errors):
            trace["error_y"] = {"type": "data", "array": errors, "visible": True}
        data.append(trace)
    title, y = (
        ("p99 latency per strategy", "99th percentile latency (ms)")
        if what == "p99"
        else ("Throughput per strategy", "completed application messages per second")
    )
    return figures.figure(
        f"{title}: {a.label} against {b.label}",
        data,
        {"title": {"text": "strategy"}},
        {"title": {"text": y}},
        barmode="group",
    )
