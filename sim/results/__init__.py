"""Results as data: ``results.sqlite`` (written with every run, sweep and plan) and ``load``,
which returns its tables as pandas DataFrames for one result or a directory tree of them.

    >>> import sim.results
    >>> r = sim.results.load("sweeps/rate")            # a sweep: one row per point and strategy
    >>> r.strategies.groupby("strategy")["p99_ms"].max()

Every table has a ``run_id`` column; the scenario keys that differ between the loaded runs
(a sweep's swept keys, or whatever differs between runs gathered from a tree) are columns of
every table, so a question across a sweep is a ``groupby`` away.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sim.errors import ScenarioError
from sim.results.sources import ResultKind, flatten, kind_of
from sim.results.store import STORE, TABLES, ingest, write_store

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["STORE", "TABLES", "Results", "find_results", "load", "write_store"]


@dataclass
class Results:
    """The store's tables as DataFrames, and the scenario keys that vary between its runs."""

    tables: dict[str, pd.DataFrame]
    varying: list[str] = field(default_factory=list)

    def __getattr__(self, name: str) -> pd.DataFrame:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(name)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]


def find_results(root: Path) -> list[Path]:
    """Every result directory under ``root`` (``root`` itself when it is one), in path order;
    a sweep's or plan's own subdirectories are not searched."""
    root = Path(root)
    found: list[Path] = []
    try:
        kind_of(root)
        return [root]
    except ScenarioError:
        pass
    for child in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        found += find_results(child)
    return found


def load(path: str | Path) -> Results:
    """The tables of a run, a sweep, a plan, a ``results.sqlite`` file, or every result under a
    directory, as tidy DataFrames (``runs``, ``strategies``, ``capacity``, ``messages``,
    ``nodes``, ``links``, ``timeseries``, ``replications``)."""
    import pandas as pd

    path = Path(path)
    if path.is_file():
        parts = [("", _read_store(path))]
    else:
        if not path.is_dir():
            raise ScenarioError("path", f"{path} does not exist")
        directories = [d for d in find_results(path) if kind_of(d) is not ResultKind.TRACE]
        if not directories:
            raise ScenarioError("path", f"{path} holds no wssim run, sweep or plan")
        parts = [
            (d.name if d == path else d.relative_to(path).as_posix(), _read_directory(d))
            for d in directories
        ]
    tables: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        frames = [_prefixed(frames[name], prefix) for prefix, frames in parts if name in frames]
        frames = [f for f in frames if not f.empty]
        tables[name] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    varying = _with_varying_keys(tables)
    return Results(tables, varying)


def _read_directory(directory: Path) -> dict[str, pd.DataFrame]:
    store = directory / STORE
    if store.is_file():
        return _read_store(store)
    connection = sqlite3.connect(":memory:")
    try:
        ingest(connection, directory)
        return _frames(connection)
    finally:
        connection.close()


def _read_store(path: Path) -> dict[str, pd.DataFrame]:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ScenarioError("path", f"{path} is not a results store: {exc}") from None
    try:
        return _frames(connection)
    except sqlite3.DatabaseError as exc:
        raise ScenarioError("path", f"{path} is not a results store: {exc}") from None
    finally:
        connection.close()


#: columns SQLite keeps as 0/1 that are yes/no answers
BOOLEAN_COLUMNS = ("ok", "overloaded", "partial", "meets")


def _frames(connection: sqlite3.Connection) -> dict[str, pd.DataFrame]:
    import pandas as pd

    names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    frames = {
        name: pd.read_sql_query(f'SELECT * FROM "{name}"', connection)
        for name in TABLES
        if name in names
    }
    for frame in frames.values():
        for column in BOOLEAN_COLUMNS:
            if column in frame and frame[column].notna().all():
                frame[column] = frame[column].astype(bool)
    return frames


def _prefixed(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    if not prefix or "run_id" not in frame:
        return frame
    frame = frame.copy()
    frame["run_id"] = [prefix if r == "run" else f"{prefix}#{r}" for r in frame["run_id"]]
    return frame


def _with_varying_keys(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Add, to every table, the scenario keys whose values differ between the runs."""
    import pandas as pd

    runs = tables["runs"]
    if runs.empty:
        return []
    flat = []
    for scenario, params in zip(runs["scenario_json"], runs["params"], strict=True):
        values = flatten(json.loads(scenario or "{}"))
        values.update(json.loads(params or "{}"))
        flat.append(values)
    keys = sorted({k for values in flat for k in values})
    varying = [
        k
        for k in keys
        if len({json.dumps(values.get(k), sort_keys=True) for values in flat}) > 1
        or any(k in json.loads(p or "{}") for p in runs["params"])
    ]
    if not varying:
        return []
    columns = pd.DataFrame(
        [{k: _scalar(values.get(k)) for k in varying} for values in flat],
    )
    columns.insert(0, "run_id", runs["run_id"].to_numpy())
    for name, frame in tables.items():
        if frame.empty or "run_id" not in frame:
            continue
        extra = columns[["run_id", *[k for k in varying if k not in frame.columns]]]
        merged = frame.merge(extra, on="run_id", how="left")
        order = ["run_id", *[k for k in varying if k in merged.columns]]
        tables[name] = merged[order + [c for c in merged.columns if c not in order]]
    return varying


def _scalar(value):
    return json.dumps(value) if isinstance(value, (list, dict)) else value
