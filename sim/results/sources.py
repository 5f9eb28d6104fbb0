"""What a result directory is (a run, a sweep, a plan, a trace) and reading its files, with a
clear error for anything else."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from pathlib import Path

from sim.errors import ScenarioError

#: a run's CSV files, each one table of the store
RUN_TABLES = ("messages", "nodes", "links", "timeseries", "replications")


class ResultKind(enum.Enum):
    RUN = "run"
    SWEEP = "sweep"
    PLAN = "plan"
    TRACE = "trace"


#: the file that makes a directory each kind, checked in this order
MARKERS = (
    (ResultKind.SWEEP, "sweep.json"),
    (ResultKind.PLAN, "plan.json"),
    (ResultKind.TRACE, "trace.jsonl"),
    (ResultKind.RUN, "manifest.json"),
)


def kind_of(directory: Path, key: str = "RESULTS") -> ResultKind:
    """The kind of result ``directory`` holds; a ScenarioError naming ``key`` otherwise."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ScenarioError(key, f"{directory} is not a directory")
    for kind, marker in MARKERS:
        if (directory / marker).is_file():
            if kind is ResultKind.RUN and not (directory / "summary.json").is_file():
                break
            return kind
    raise ScenarioError(
        key,
        f"{directory} is not a wssim result: it holds none of summary.json + manifest.json "
        "(wssim run), sweep.json (sweep), plan.json (plan) or trace.jsonl (trace)",
    )


def read_json(path: Path, key: str = "RESULTS") -> dict:
    """A JSON object from a result file; a ScenarioError naming the file when it is not one."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ScenarioError(key, f"cannot read {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(key, f"{path} is corrupt (not JSON: {exc})") from None
    if not isinstance(data, dict):
        raise ScenarioError(key, f"{path} is corrupt (not a JSON object)")
    return data


def read_summary(directory: Path, key: str = "RESULTS") -> dict:
    """``summary.json`` checked for what a report and the store read from it."""
    path = Path(directory) / "summary.json"
    summary = read_json(path, key)
    strategies = summary.get("strategies")
    if not isinstance(strategies, dict) or not all(
        isinstance(s, dict) and isinstance(s.get("latency_ms"), dict) for s in strategies.values()
    ):
        raise ScenarioError(key, f"{path} is corrupt (no strategies with latency_ms)")
    return summary


def strategy_rows(summary: Mapping) -> list[dict]:
    """One tidy row per strategy: the figures a sweep row holds, the offered load and the
    capacity's bottleneck and largest rate (when the summary has them)."""
    from sim.sweep import summary_rows

    try:
        rows = summary_rows(summary, {})
    except (KeyError, TypeError, AttributeError) as exc:
        raise ScenarioError("RESULTS", f"summary.json is corrupt (missing {exc})") from None
    for row in rows:
        stats = summary["strategies"][row["strategy"]]
        capacity = stats.get("capacity") or {}
        for key in ("offered_per_s", "in_flight_at_end"):
            if key in stats:
                row[key] = stats[key]
        if capacity:
            row["bottleneck"] = capacity.get("bottleneck")
            row["max_messages_per_s"] = capacity.get("max_messages_per_s")
    return rows


def flatten(data: Mapping, prefix: str = "") -> dict[str, object]:
    """A nested scenario as dotted keys (``topology.sts.nodes``); lists stay values."""
    flat: dict[str, object] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat
