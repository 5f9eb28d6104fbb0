"""A report being written (its sections, chart specs and warnings) and the result
directories it reads."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import ScenarioError
from sim.report.tables import esc
from sim.results.sources import ResultKind, kind_of, read_json, read_summary


@dataclass
class Source:
    """One result directory as the report reads it."""

    path: Path
    kind: ResultKind
    label: str
    summary: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # sweep.json, plan.json
    rows: list = field(default_factory=list)  # sweep or plan rows, trace entries
    latencies: dict | None = None  # a run's latencies per strategy, read once

    @property
    def title(self) -> str:
        return f"{self.label}: {self.path}" if self.label else str(self.path)


def load_source(path: Path, label: str) -> Source:
    kind = kind_of(path)
    source = Source(Path(path), kind, label)
    if kind is ResultKind.RUN:
        source.summary = read_summary(path)
        source.manifest = read_json(path / "manifest.json")
    elif kind is ResultKind.SWEEP:
        source.data = read_json(path / "sweep.json")
        from sim.results.store import sweep_points

        keys = list(source.data.get("params", {}))
        source.rows = [row for _, rows in sweep_points(path, keys) for row in rows]
    elif kind is ResultKind.PLAN:
        source.data = read_json(path / "plan.json")
        source.rows = source.data.get("evidence", [])
    else:
        source.rows = _trace_entries(path / "trace.jsonl")
        if (path / "summary.json").is_file():
            source.summary = read_summary(path)
    return source


def _trace_entries(path: Path) -> list[dict]:
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            entry = json.loads(line)
            entries.append({**entry, "seq": int(entry["seq"]), "bytes": int(entry["bytes"])})
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise ScenarioError("RESULTS", f"{path} line {number} is corrupt") from None
    return entries


class Page:
    """The report being written: sections, the chart specs, the warnings."""

    def __init__(self) -> None:
        self.sections: list[tuple[str, str, str]] = []  # (anchor, title, html)
        self.figures: dict[str, dict] = {}
        self.warnings: list[str] = []

    def chart(self, spec: dict | None, name: str, source: str = "") -> str:
        if spec is None:
            return ""
        chart_id = f"chart-{len(self.figures) + 1}"
        self.figures[chart_id] = spec
        height = spec["layout"].get("height")
        style = f' style="height: {height}px"' if height else ""
        return (
            f'<div class="chart" id="{chart_id}" data-chart="{esc(name)}" '
            f'data-source="{esc(source)}"{style}></div>'
        )

    def section(self, title: str, body: str) -> None:
        self.sections.append((f"s{len(self.sections) + 1}", title, body))


def facts(pairs: list[tuple[str, object]]) -> str:
    """A definition list of the (name, value) pairs that have a value."""
    items = "".join(
        f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in pairs if v not in (None, "", {})
    )
    return f'<dl class="facts">{items}</dl>'
