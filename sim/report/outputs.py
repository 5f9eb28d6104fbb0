"""Writing results: summary.json, messages.csv, nodes.csv, links.csv, timeseries.csv,
manifest.json."""

from __future__ import annotations

import csv
import datetime
import hashlib
import json
import os
import platform
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import sim
from sim.engine.message_log import MessageLog
from sim.errors import ScenarioError

OUTPUTS = (
    "summary.json",
    "messages.csv",
    "nodes.csv",
    "links.csv",
    "timeseries.csv",
    "replications.csv",
    "manifest.json",
    "results.sqlite",
    "report.html",
)


def prepare_directory(out: Path, force: bool) -> Path:
    """Create ``out``; refuse a directory that already holds results unless ``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ScenarioError("--out", f"{out} exists and is not a directory")
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing and not force:
        raise ScenarioError(
            "--out",
            f"{out} already holds results ({existing[0]}); "
            "choose another directory or pass --force to overwrite them",
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_json(path: Path, data: Mapping) -> str:
    """Write ``data`` as JSON; returns the text written."""
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return text


def write_csv(path: Path, rows: Iterable[Mapping], columns: list[str]) -> None:
    """Write ``rows`` (dicts; keys not in ``columns`` left out, missing ones empty) as CSV,
    in one writer call; a columnar source with ``tuples`` (``MessageLog``) gives its rows
    as tuples, without a dict per row."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(_tuples(rows, columns))
    tmp.replace(path)


def _tuples(rows: Iterable[Mapping], columns: list[str]) -> Iterable[tuple]:
    tuples = getattr(rows, "tuples", None)
    if tuples is not None and tuple(columns) == tuple(getattr(rows, "FIELDS", ())):
        return tuples()
    return (tuple([row.get(column, "") for column in columns]) for row in rows)


#: messages.csv: one row a message, the fields of ``MessageLog`` in order
MESSAGE_COLUMNS = list(MessageLog.FIELDS)
NODE_COLUMNS = [
    "replication",
    "strategy",
    "node",
    "role",
    "cores",
    "utilization",
    "requests",
    "mean_service_ms",
    "mean_queue_len",
    "busy_s",
]
LINK_COLUMNS = ["replication", "strategy", "link", "bytes", "utilization"]
#: replications.csv: per replication and strategy (``batch`` empty), and per batch of a
#: single replication's batch means, the values the confidence intervals come from
REPLICATION_COLUMNS = [
    "replication",
    "strategy",
    "batch",
    "latency_ms.mean",
    "latency_ms.p50",
    "latency_ms.p95",
    "latency_ms.p99",
    "latency_ms.max",
    "throughput_per_s",
    "offered_per_s",
    "in_flight_at_end",
    "app_messages",
    "completed",
    "failed",
    "warmup_s",
]
TIMESERIES_COLUMNS = [
    "replication",
    "strategy",
    "node",
    "role",
    "t_start_s",
    "t_end_s",
    "utilization",
    "mean_queue_len",
    "hsm_utilization",
    "hsm_queue_len",
]


def write_results(
    out: Path, result, scenario_data: Mapping, scenario_text: bytes, command: list[str]
) -> None:
    """Every output file of a run (plots are written separately)."""
    summary = dict(result.summary)
    summary["partial"] = result.partial
    summary_text = write_json(out / "summary.json", summary)
    tables = {
        "messages": (MESSAGE_COLUMNS, result.messages),
        "nodes": (NODE_COLUMNS, result.nodes),
        "links": (LINK_COLUMNS, result.links),
        "timeseries": (TIMESERIES_COLUMNS, result.timeseries),
        "replications": (REPLICATION_COLUMNS, result.replications),
    }
    for name, (columns, rows) in tables.items():
        write_csv(out / f"{name}.csv", rows, columns)
    manifest_text = write_json(
        out / "manifest.json",
        {
            "version": sim.__version__,
            "scenario": dict(scenario_data),
            "scenario_sha256": hashlib.sha256(scenario_text).hexdigest(),
            "seed": summary["seed"],
            "seed_entropy": str(result.seed_entropy),
            "profile": summary["profile"],
            "fidelity": summary["fidelity"],
            "replications": summary["replications"],
            "wall_s": round(result.wall_s, 3),
            "partial": result.partial,
            "command": command,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(),
            "profile_meta": _profile_meta(summary["profile"]),
        },
    )
    from sim.results.store import write_run_store

    # the store from the rows in memory, each cell as its file reads back: the files are
    # not read again (the JSON texts are, being small, so that the store holds them as read)
    write_run_store(out, json.loads(summary_text), json.loads(manifest_text), tables)


def machine() -> dict:
    """What the run ran on: the CPU model, its cores, the architecture."""
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "arch": platform.machine()}


def _profile_meta(name: str) -> dict:
    """Where and when the calibration profile was measured (its ``meta``)."""
    from sim.engine.costs import load_profile

    try:
        return dict(load_profile(name).meta)
    except (ScenarioError, OSError):
        return {}
