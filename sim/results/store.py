"""``results.sqlite``: a result directory's tables in one SQLite file.

One schema for a run, a sweep and a plan. ``runs`` has one row per simulated configuration
(a run, or a sweep's or plan's point) with its scenario, manifest and the point's swept
values (``params``, JSON); every other table has a ``run_id`` column naming it:
``strategies`` (one tidy row per run and strategy: the figures a sweep's rows hold, the
capacity's bottleneck and largest rate), ``capacity`` (demand per role and resource),
``messages``, ``nodes``, ``links``, ``timeseries`` and ``replications`` (the run's CSV
files, row for row). Columns are added as rows bring them, so files written before a
summary key existed still load. Reading is ``sim.results.load``.
"""

from __future__ import annotations

import csv
import itertools
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from sim.results.sources import (
    RUN_TABLES,
    ResultKind,
    kind_of,
    read_json,
    read_summary,
    strategy_rows,
)

STORE = "results.sqlite"
TABLES = ("runs", "strategies", "capacity", *RUN_TABLES)


def write_store(directory: Path) -> Path:
    """(Re)build ``directory/results.sqlite`` from the directory's result files."""
    return _write(Path(directory), lambda connection: ingest(connection, Path(directory)))


def write_run_store(
    directory: Path,
    summary: Mapping,
    manifest: Mapping,
    tables: Mapping[str, tuple[Sequence[str], Iterable]],
) -> Path:
    """``directory/results.sqlite`` of a run from what it has just written, without reading
    its files back: ``summary`` and ``manifest`` as their JSON files hold them, and per table
    of ``RUN_TABLES`` its columns and rows (dicts, or tuples in column order from an object
    with ``tuples``). Each cell is stored as its CSV file reads back (``_number``), so the
    store is the one ``write_store`` would build from the files."""

    def fill(connection: sqlite3.Connection) -> None:
        run_id = "run"
        _insert_run(connection, run_id, summary, manifest)
        for table in RUN_TABLES:
            if table in tables:
                columns, rows = tables[table]
                insert_rows(connection, table, ["run_id", *columns], _cells(run_id, columns, rows))

    return _write(Path(directory), fill)


def _write(directory: Path, fill) -> Path:
    path = directory / STORE
    tmp = path.with_suffix(".sqlite.tmp")
    tmp.unlink(missing_ok=True)
    connection = sqlite3.connect(tmp)
    try:
        # a fresh file renamed into place once complete: no journal needed
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        fill(connection)
        connection.commit()
    finally:
        connection.close()
    tmp.replace(path)
    return path


def ingest(connection: sqlite3.Connection, directory: Path, prefix: str = "") -> None:
    """Add the results of one directory (a run, a sweep, a plan) to ``connection``; run ids
    start with ``prefix`` (the directory's path when several are gathered)."""
    kind = kind_of(directory)
    if kind is ResultKind.RUN:
        _ingest_run(connection, directory, prefix or "run")
    elif kind is ResultKind.SWEEP:
        _ingest_sweep(connection, directory, prefix)
    elif kind is ResultKind.PLAN:
        _ingest_plan(connection, directory, prefix)


def _ingest_run(connection: sqlite3.Connection, directory: Path, run_id: str) -> None:
    summary = read_summary(directory)
    manifest = read_json(directory / "manifest.json")
    _insert_run(connection, run_id, summary, manifest)
    for table in RUN_TABLES:
        csv_path = directory / f"{table}.csv"
        if csv_path.is_file():
            insert(connection, table, ({"run_id": run_id, **row} for row in _csv_rows(csv_path)))


def _insert_run(
    connection: sqlite3.Connection, run_id: str, summary: Mapping, manifest: Mapping
) -> None:
    """The ``runs``, ``strategies`` and ``capacity`` rows of one run."""
    insert(
        connection,
        "runs",
        [
            {
                "run_id": run_id,
                "kind": "run",
                "scenario": summary.get("scenario"),
                "created": manifest.get("created"),
                "version": manifest.get("version"),
                "seed": summary.get("seed"),
                "fidelity": summary.get("fidelity"),
                "replications": summary.get("replications"),
                "profile": summary.get("profile"),
                "partial": bool(summary.get("partial")),
                "warnings": json.dumps(summary.get("warnings", [])),
                "params": "{}",
                "scenario_json": json.dumps(manifest.get("scenario", {})),
                "manifest_json": json.dumps(manifest),
                "summary_json": json.dumps(summary),
            }
        ],
    )
    insert(connection, "strategies", [{"run_id": run_id, **r} for r in strategy_rows(summary)])
    insert(connection, "capacity", capacity_rows(run_id, summary))


def capacity_rows(run_id: str, summary: Mapping) -> list[dict]:
    """One row per strategy, role and resource of the summary's ``capacity.demand_ms``."""
    rows = []
    for strategy, stats in summary.get("strategies", {}).items():
        capacity = stats.get("capacity") or {}
        for role, resources in (capacity.get("demand_ms") or {}).items():
            for resource, ms in resources.items():
                rows.append(
                    {
                        "run_id": run_id,
                        "strategy": strategy,
                        "role": role,
                        "resource": resource,
                        "demand_ms": ms,
                        "bottleneck": capacity.get("bottleneck"),
                    }
                )
    return rows


def _point_run(run_id: str, kind: str, base: Mapping, params: Mapping, rows: list) -> dict:
    first = rows[0] if rows else {}
    return {
        "run_id": run_id,
        "kind": kind,
        "scenario": base.get("name"),
        "created": None,
        "version": None,
        "seed": (base.get("run") or {}).get("seed"),
        "fidelity": (base.get("run") or {}).get("fidelity"),
        "replications": first.get("replications"),
        "profile": (base.get("profile") or {}).get("name", "default"),
        "partial": False,
        "warnings": "[]",
        "params": json.dumps(params),
        "scenario_json": json.dumps(base),
        "manifest_json": "{}",
        "summary_json": "{}",
    }


def _ingest_sweep(connection: sqlite3.Connection, directory: Path, prefix: str) -> None:
    meta = read_json(directory / "sweep.json")
    base = meta.get("scenario", {})
    keys = list(meta.get("params", {}))
    for i, (point, rows) in enumerate(sweep_points(directory, keys)):
        run_id = f"{prefix}#{i}" if prefix else f"point-{i}"
        run = _point_run(run_id, "sweep-point", base, point, rows)
        run["fidelity"] = meta.get("fidelity") or run["fidelity"]
        insert(connection, "runs", [run])
        insert(connection, "strategies", [{"run_id": run_id, **row} for row in rows])


def sweep_points(directory: Path, keys: list[str]) -> list[tuple[dict, list[dict]]]:
    """The sweep's points in grid order (``sweep.csv``'s rows grouped by the swept values);
    ``points/*.json`` when sweep.csv is missing."""
    grouped: dict[str, tuple[dict, list[dict]]] = {}
    if (directory / "sweep.csv").is_file():
        for row in _csv_rows(directory / "sweep.csv"):
            point = {k: row.get(k) for k in keys}
            grouped.setdefault(json.dumps(point), (point, []))[1].append(row)
    else:
        for path in sorted((directory / "points").glob("*.json")):
            data = read_json(path)
            rows = data.get("rows", [])
            point = {k: rows[0].get(k) for k in keys} if rows else data.get("point", {})
            grouped.setdefault(json.dumps(point), (point, []))[1].extend(rows)
    return list(grouped.values())


def _ingest_plan(connection: sqlite3.Connection, directory: Path, prefix: str) -> None:
    plan = read_json(directory / "plan.json")
    base = plan.get("scenario", {})
    vary = plan.get("vary", "")
    values: dict[object, list[dict]] = {}
    for row in plan.get("evidence", []):
        values.setdefault(row.get(vary), []).append(row)
    for i, (value, rows) in enumerate(sorted(values.items(), key=lambda item: str(item[0]))):
        run_id = f"{prefix}#{i}" if prefix else f"point-{i}"
        insert(connection, "runs", [_point_run(run_id, "plan-point", base, {vary: value}, rows)])
        insert(connection, "strategies", [{"run_id": run_id, **row} for row in rows])


def _csv_rows(path: Path) -> Iterable[dict]:
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            yield {key: _number(value) for key, value in row.items()}


def _number(text: str | None):
    """A CSV cell as the value it was: int, float, bool, None for an empty cell, or text."""
    if text is None or text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_back(value):
    """``value`` as its CSV file reads back (``_number`` of what ``csv`` writes)."""
    kind = type(value)
    if value is None or kind is int or kind is float or kind is bool:
        return value
    return _number(value if kind is str else str(value))


def _cells(run_id: str, columns: Sequence[str], rows: Iterable) -> Iterator[tuple]:
    """The store's rows of a run table: ``run_id`` then each column as read back; a
    columnar source (``tuples``) maps its distinct strings once instead of every cell."""
    tuples = getattr(rows, "tuples", None)
    if tuples is not None and tuple(columns) == tuple(getattr(rows, "FIELDS", ())):
        for row in tuples(_number, read_back):
            yield (run_id, *row)
        return
    for row in rows:
        yield (run_id, *[read_back(row.get(column)) for column in columns])


def insert_rows(
    connection: sqlite3.Connection, table: str, columns: list[str], rows: Iterable[Sequence]
) -> None:
    """Insert rows given as tuples in ``columns`` order (one statement for them all); the
    table is created, or given the columns it lacks, only when a row comes."""
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return
    existing = _columns(connection, table)
    new = [column for column in columns if column not in existing]
    if new:
        _add_columns(connection, table, existing, new)
    sql = (
        f'INSERT INTO "{table}" ({", ".join(_quote(k) for k in columns)}) '
        f"VALUES ({', '.join('?' * len(columns))})"
    )
    connection.executemany(sql, itertools.chain((first,), iterator))


def insert(connection: sqlite3.Connection, table: str, rows: Iterable[Mapping]) -> None:
    """Insert rows, creating the table or adding the columns they bring."""
    columns = _columns(connection, table)
    batch: list[Mapping] = []
    for row in rows:
        new = [key for key in row if key not in columns]
        if new:
            _flush(connection, table, batch)
            batch = []
            _add_columns(connection, table, columns, new)
        batch.append(row)
        if len(batch) >= 5000:
            _flush(connection, table, batch)
            batch = []
    _flush(connection, table, batch)


def _columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]


def _add_columns(
    connection: sqlite3.Connection, table: str, columns: list[str], new: list[str]
) -> None:
    quoted = ", ".join(_quote(c) for c in new)
    if not columns:
        connection.execute(f'CREATE TABLE "{table}" ({quoted})')
    else:
        for column in new:
            connection.execute(f'ALTER TABLE "{table}" ADD COLUMN {_quote(column)}')
    columns.extend(new)


def _flush(connection: sqlite3.Connection, table: str, rows: list[Mapping]) -> None:
    if not rows:
        return
    keys = list(dict.fromkeys(key for row in rows for key in row))
    sql = (
        f'INSERT INTO "{table}" ({", ".join(_quote(k) for k in keys)}) '
        f"VALUES ({', '.join('?' * len(keys))})"
    )
    connection.executemany(sql, [[_cell(row.get(k)) for k in keys] for row in rows])


def _cell(value):
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
