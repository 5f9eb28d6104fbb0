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


def write_json(path: Path, data: Mapping) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def write_csv(path: Path, rows: Iterable[Mapping], columns: list[str]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    tmp.replace(path)


MESSAGE_COLUMNS = [
    "replication",
    "strategy",
    "class",
    "session",
    "seq",
    "start_s",
    "end_s",
    "latency_ms",
    "request_bytes",
    "response_bytes",
    "token_service_bytes",
    "sts_exchanges",
    "retries",
    "recoveries",
    "ok",
    "fault",
]
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
    write_json(out / "summary.json", summary)
    write_csv(out / "messages.csv", result.messages, MESSAGE_COLUMNS)
    write_csv(out / "nodes.csv", result.nodes, NODE_COLUMNS)
    write_csv(out / "links.csv", result.links, LINK_COLUMNS)
    write_csv(out / "timeseries.csv", result.timeseries, TIMESERIES_COLUMNS)
    write_csv(out / "replications.csv", getattr(result, "replications", []), REPLICATION_COLUMNS)
    write_json(
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
    from sim.results.store import write_store

    write_store(out)


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
