"""``wssim report``: one self-contained HTML file for runs, a compare of runs, a sweep, a plan
or a trace. Charts are plotly.js (the basic bundle, inlined: hover values, zoom, legend
toggling, nothing fetched), tables carry summary.json's figures, warnings come first."""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import sim
from sim.report import sweep_figures
from sim.report.page import Page, Source, facts, load_source
from sim.report.run_sections import comparison, run_section
from sim.report.scenario_text import to_toml
from sim.report.tables import esc, rows_table, table
from sim.results.sources import ResultKind


def build_report(paths: Sequence[Path]) -> str:
    """The HTML text of the report of ``paths`` (two or more runs are also compared)."""
    labels = [chr(ord("A") + i) for i in range(len(paths))] if len(paths) > 1 else [""]
    sources = [load_source(Path(p), label) for p, label in zip(paths, labels, strict=True)]
    page = Page()
    runs = [s for s in sources if s.kind is ResultKind.RUN]
    for other in runs[1:]:
        comparison(page, runs[0], other)
    for source in sources:
        {
            ResultKind.RUN: run_section,
            ResultKind.SWEEP: _sweep_section,
            ResultKind.PLAN: _plan_section,
            ResultKind.TRACE: _trace_section,
        }[source.kind](page, source)
    return _render(page, sources)


def write_report(paths: Sequence[Path], out: Path) -> Path:
    """Write the report of ``paths`` to ``out`` (one file, opens offline)."""
    text = build_report(paths)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out


def _asset(name: str) -> str:
    return resources.files("sim").joinpath(f"data/report/{name}").read_text(encoding="utf-8")


def _script(text: str) -> str:
    return text.replace("</script", "<\\/script")


def _render(page: Page, sources: list[Source]) -> str:
    names = sorted(
        {s.summary.get("scenario") or s.data.get("scenario", {}).get("name") or "" for s in sources}
        - {""}
    )
    title = "wssim report" + (f": {', '.join(names)}" if names else "")
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    warnings = ""
    if page.warnings:
        items = "".join(f"<li>{esc(w)}</li>" for w in page.warnings)
        warnings = (
            f'<div class="warnings" id="warnings"><h2>Warnings ({len(page.warnings)})</h2>'
            f"<ul>{items}</ul></div>"
        )
    nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t, _ in page.sections)
    body = "\n".join(
        f'<section id="{a}"><h2>{esc(t)}</h2>\n{html}</section>' for a, t, html in page.sections
    )
    figures_json = json.dumps(page.figures, separators=(",", ":"), allow_nan=False)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="wssim {esc(sim.__version__)}">
<title>{esc(title)}</title>
<style>{_asset("report.css")}</style>
</head><body>
<header class="page"><h1>{esc(title)}</h1>
<p>{esc(", ".join(s.title for s in sources))} · written {generated} by wssim {esc(sim.__version__)}</p>
</header>
<nav>{nav}</nav>
<main>
{warnings}
{body}
</main>
<script>{_script(_asset("plotly-basic.min.js"))}</script>
<script type="application/json" id="wssim-figures">{_script(figures_json)}</script>
<script>{_script(_asset("report.js"))}</script>
</body></html>
"""


# --- sweeps, plans, traces ------------------------------------------------------------------


def _sweep_section(page: Page, source: Source) -> None:
    keys = list(source.data.get("params", {}))
    rows = source.rows
    for row in rows:
        if row.get("overloaded"):
            page.warnings.append(
                f"{source.path}: {row['strategy']} at "
                + ", ".join(f"{k}={row.get(k)}" for k in keys)
                + " ran overloaded (its figures depend on the run's length)"
            )
    columns = [*keys, "strategy", "throughput_per_s", "p50_ms", "p99_ms", "failed", "overloaded"]
    parts = [
        facts(
            [
                ("scenario", source.data.get("scenario", {}).get("name")),
                (
                    "swept",
                    ", ".join(
                        f"{k} = {', '.join(v)}" for k, v in source.data.get("params", {}).items()
                    ),
                ),
                ("points", source.data.get("points")),
                ("fidelity", source.data.get("fidelity") or "the scenario's"),
                ("command", " ".join(source.data.get("command", []))),
            ]
        ),
        "<details><summary>base scenario (TOML)</summary>"
        f'<pre class="toml">{esc(to_toml(source.data.get("scenario", {})))}</pre></details>',
    ]
    if keys and rows:
        parts += [
            page.chart(
                sweep_figures.sweep(rows, keys, "throughput_per_s"),
                "sweep-throughput",
                source.label,
            ),
            page.chart(sweep_figures.sweep(rows, keys, "p99_ms"), "sweep-p99", source.label),
        ]
    parts += [
        "<h3>Every point</h3>",
        rows_table(rows, [c for c in columns if any(c in r for r in rows)]),
    ]
    page.section(f"Sweep {source.title}", "\n".join(p for p in parts if p))


def _plan_section(page: Page, source: Source) -> None:
    from sim.sweep import METRICS

    result = source.data
    target = str(result.get("target", ""))
    metric = next((m for m in METRICS if target.startswith(m)), "p99_ms")
    vary = result.get("vary", "")
    if result.get("answer") is None:
        page.warnings.append(f"{source.path}: no answer: {result.get('note', '')}")
    columns = [vary, "strategy", metric, "meets", "throughput_per_s", "completed", "overloaded"]
    columns += [c for c in ("skipped",) if any(c in row for row in source.rows)]
    parts = [
        facts(
            [
                ("target", target),
                ("varied", vary),
                ("answer", result.get("answer") if result.get("answer") is not None else "none"),
                ("note", result.get("note")),
                ("runs", result.get("runs")),
                ("runs skipped (below a capacity bound)", result.get("skipped")),
                ("assumption", result.get("assumption")),
            ]
        )
    ]
    if source.rows:
        parts.append(page.chart(sweep_figures.plan(result, metric), "plan", source.label))
    parts += ["<h3>Evidence</h3>", rows_table(source.rows, list(dict.fromkeys(columns)))]
    page.section(f"Plan {source.title}", "\n".join(parts))


def _trace_section(page: Page, source: Source) -> None:
    from sim.report import sequence  # the diagram's lanes and labels are the terminal's

    entries = source.rows
    rows = [
        "".join(
            [
                f'<td class="num">{e["seq"]}</td>',
                f'<td class="num">{float(e["t"]) * 1000:.3f}</td>',
                f"<td>{esc(e['from'])}</td><td>{esc(e['to'])}</td>",
                f"<td>{esc(sequence.short_action(e['action']))}</td>",
                f'<td class="num" data-key="trace/{e["seq"]}/bytes" data-value="{e["bytes"]}">'
                f"{e['bytes']:,}</td>",
                f"<td>{esc(e.get('fault', ''))}</td>",
            ]
        )
        for e in entries
    ]
    parts = [
        facts(
            [
                ("messages", len(entries)),
                ("bytes on the wire", f"{sum(e['bytes'] for e in entries):,} B"),
                ("strategies", ", ".join(source.summary.get("strategies", {}))),
            ]
        ),
        page.chart(sequence.diagram(entries), "sequence", source.label) if entries else "",
        page.chart(sequence.sizes(entries), "message-sizes", source.label) if entries else "",
        "<h3>Messages (exact bytes in messages/)</h3>",
        table(["#", "t (ms)", "from", "to", "action", "bytes", "fault"], rows, "figures"),
    ]
    page.section(f"Trace {source.title}", "\n".join(p for p in parts if p))
