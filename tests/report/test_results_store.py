"""results.sqlite and sim.results.load: every run, sweep and plan as tidy DataFrames."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3

import pytest

import sim.results
from sim.errors import ScenarioError
from sim.results import load, write_store
from sim.results.sources import RUN_TABLES, strategy_rows


def csv_rows(path) -> list[dict]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_a_run_writes_results_sqlite_with_its_tables_scenario_and_manifest(run_a):
    connection = sqlite3.connect(run_a / "results.sqlite")
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"runs", "strategies", "messages", "nodes", "links", "timeseries"} <= tables
    files = [t for t in RUN_TABLES if (run_a / f"{t}.csv").exists()]
    assert {"messages", "nodes", "links", "timeseries"} <= set(files) <= tables
    for table in files:
        (count,) = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert count == len(csv_rows(run_a / f"{table}.csv")) > 0
    summary = json.loads((run_a / "summary.json").read_text())
    demands = [
        (name, role, resource, ms)
        for name, stats in summary["strategies"].items()
        for role, resources in (stats.get("capacity") or {}).get("demand_ms", {}).items()
        for resource, ms in resources.items()
    ]
    if demands:  # the engine's capacity analysis, one row per strategy, role and resource
        stored = connection.execute(
            "SELECT strategy, role, resource, demand_ms FROM capacity"
        ).fetchall()
        assert sorted(stored) == sorted(demands)
    scenario, manifest = connection.execute(
        "SELECT scenario_json, manifest_json FROM runs"
    ).fetchone()
    manifest_file = json.loads((run_a / "manifest.json").read_text())
    assert json.loads(manifest) == manifest_file
    assert json.loads(scenario) == manifest_file["scenario"]
    connection.close()


def _store_contents(path) -> dict[str, tuple]:
    """Every table of a store: its schema, rows and the SQLite type of every cell."""
    connection = sqlite3.connect(path)
    try:
        contents = {}
        for name, sql in connection.execute("SELECT name, sql FROM sqlite_master"):
            columns = [row[1] for row in connection.execute(f'PRAGMA table_info("{name}")')]
            types = ", ".join(f'typeof("{c}")' for c in columns)
            rows = connection.execute(f'SELECT * FROM "{name}"').fetchall()
            contents[name] = (
                sql,
                rows,
                connection.execute(f'SELECT {types} FROM "{name}"').fetchall(),
            )
        return contents
    finally:
        connection.close()


def test_a_runs_store_written_from_memory_is_the_one_its_files_give(run_a, tmp_path):
    """``wssim run`` writes results.sqlite from its rows in memory; rebuilt from the files it
    wrote, the store is the same, cell for cell and type for type."""
    rebuilt = tmp_path / "rebuilt"
    shutil.copytree(run_a, rebuilt)
    (rebuilt / "results.sqlite").unlink()
    write_store(rebuilt)
    written, from_files = (
        _store_contents(run_a / "results.sqlite"),
        _store_contents(rebuilt / "results.sqlite"),
    )
    assert set(written) == set(from_files) >= {"runs", "messages", "timeseries"}
    for name, contents in from_files.items():
        assert written[name] == contents, name


def test_cells_are_stored_as_their_csv_file_reads_back(tmp_path):
    """Text that reads as a number, an empty text, a flag and a numpy scalar: stored as the
    CSV round trip gives them."""
    import numpy as np

    from sim.results.store import write_run_store

    summary = {"scenario": "s", "strategies": {}, "warnings": []}
    rows = [
        {"link": "7", "bytes": np.int64(3), "utilization": np.float64(0.5), "strategy": ""},
        {"link": "a-b", "bytes": True, "utilization": 1.0},
    ]
    write_run_store(
        tmp_path, summary, {}, {"links": (["link", "bytes", "utilization", "strategy"], rows)}
    )
    connection = sqlite3.connect(tmp_path / "results.sqlite")
    stored = connection.execute("SELECT link, bytes, utilization, strategy FROM links").fetchall()
    connection.close()
    assert stored == [(7, 3, 0.5, None), ("a-b", 1, 1.0, None)]
    assert [type(v) for v in stored[0][:3]] == [int, int, float]


def test_load_returns_a_runs_figures_as_typed_dataframes(run_a):
    results = load(run_a)
    summary = json.loads((run_a / "summary.json").read_text())
    strategies = results.strategies.set_index("strategy")
    assert list(strategies.index) == list(summary["strategies"])
    for name, stats in summary["strategies"].items():
        assert strategies.loc[name, "p99_ms"] == pytest.approx(stats["latency_ms"]["p99"])
        assert strategies.loc[name, "throughput_per_s"] == pytest.approx(stats["throughput_per_s"])
    messages = results.messages
    assert len(messages) == len(csv_rows(run_a / "messages.csv"))
    assert messages["latency_ms"].dtype.kind == "f" and messages["session"].dtype.kind == "i"
    assert set(results.runs["run_id"]) == {"a"}  # a run's id: its directory's name
    assert results.varying == []


def test_a_directory_of_runs_loads_with_the_keys_that_differ_as_columns(run_a, run_b, tmp_path):
    results = load(run_a.parent)  # a/, b/, sweeps/rate, trace/ (a trace is no run)
    runs = results.runs.set_index("run_id")
    assert {"a", "b"} <= set(runs.index)
    assert {"workload.rate", "topology.sts.nodes"} <= set(results.varying)
    assert runs.loc["a", "workload.rate"] == 20.0 and runs.loc["b", "workload.rate"] == 30
    p99 = results.strategies.pivot_table(index="strategy", columns="run_id", values="p99_ms")
    summary_b = json.loads((run_b / "summary.json").read_text())
    for name, stats in summary_b["strategies"].items():
        assert p99.loc[name, "b"] == pytest.approx(stats["latency_ms"]["p99"])
    # a per-message table carries the varying keys too
    per_run = results.messages.groupby("run_id")["topology.sts.nodes"].unique()
    assert list(per_run["b"]) == [1]


def test_a_sweep_store_holds_one_row_per_point_and_strategy_with_the_swept_key(sweep_dir):
    results = load(sweep_dir / "results.sqlite")
    rows = csv_rows(sweep_dir / "sweep.csv")
    frame = results.strategies
    assert len(frame) == len(rows)
    assert "workload.rate" in results.varying
    assert sorted(frame["workload.rate"]) == sorted(float(r["workload.rate"]) for r in rows)
    assert list(frame["p99_ms"]) == [pytest.approx(float(r["p99_ms"])) for r in rows]
    assert list(frame["overloaded"]) == [r["overloaded"] == "True" for r in rows]
    assert frame["overloaded"].dtype == bool
    assert set(results.runs["kind"]) == {"sweep-point"}


def test_a_plan_adds_its_points_to_the_store(tmp_path):
    evidence = [
        {"topology.sts.nodes": n, "strategy": "sct", "p99_ms": 400.0 / n, "meets": n >= 2}
        for n in (1, 2)
    ]
    (tmp_path / "plan.json").write_text(
        json.dumps(
            {
                "target": "p99_ms<=200",
                "vary": "topology.sts.nodes",
                "answer": 2,
                "runs": 2,
                "evidence": evidence,
                "scenario": {"name": "sts-farm", "topology": {"sts": {"nodes": 1}}},
            }
        )
    )
    write_store(tmp_path)
    results = load(tmp_path / "results.sqlite")
    frame = results.strategies.sort_values("topology.sts.nodes")
    assert list(frame["topology.sts.nodes"]) == [1, 2]
    assert list(frame["p99_ms"]) == [400.0, 200.0]
    assert results.varying == ["topology.sts.nodes"]


def test_results_written_before_the_store_load_from_their_files(run_a, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(run_a, old)
    (old / "results.sqlite").unlink()
    fresh, stored = load(old), load(run_a)
    assert fresh.strategies.drop(columns="run_id").equals(stored.strategies.drop(columns="run_id"))
    assert len(fresh.timeseries) == len(stored.timeseries)


def test_capacity_and_offered_load_become_columns_when_the_summary_has_them():
    summary = {
        "replications": 1,
        "strategies": {
            "sct": {
                "latency_ms": {"mean": 1.0, "p50": 1.0, "p95": 1.0, "p99": 1.0, "max": 1.0},
                "bytes_per_app_message": {"request": 1, "response": 1, "token_service": 0},
                "throughput_per_s": 9.0,
                "app_messages": 10,
                "completed": 10,
                "failed": 0,
                "sts_requests": 0,
                "roles": {},
                "offered_per_s": 10.0,
                "in_flight_at_end": 3,
                "capacity": {
                    "bottleneck": "provider cpu",
                    "max_messages_per_s": 120.5,
                    "demand_ms": {"provider": {"cpu": 8.3}},
                },
            }
        },
    }
    (row,) = strategy_rows(summary)
    assert row["bottleneck"] == "provider cpu" and row["max_messages_per_s"] == 120.5
    assert row["offered_per_s"] == 10.0 and row["in_flight_at_end"] == 3
    rows = sim.results.store.capacity_rows("run", summary)
    assert rows == [
        {
            "run_id": "run",
            "strategy": "sct",
            "role": "provider",
            "resource": "cpu",
            "demand_ms": 8.3,
            "bottleneck": "provider cpu",
        }
    ]


def test_load_refuses_what_is_not_a_result(tmp_path):
    with pytest.raises(ScenarioError, match="holds no wssim run"):
        load(tmp_path)
    with pytest.raises(ScenarioError, match="does not exist"):
        load(tmp_path / "missing")
    (tmp_path / "summary.json").write_text("{not json")
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(ScenarioError, match=r"summary\.json is corrupt"):
        load(tmp_path)
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 10)
    with pytest.raises(ScenarioError, match="not a results store"):
        load(tmp_path / "junk.sqlite")
