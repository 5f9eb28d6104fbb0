"""Sweeps over scenario keys (local process pool or Dask) and capacity planning."""

from __future__ import annotations

import hashlib
import itertools
import json
import operator
import os
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from sim.engine import apply_overrides, load_scenario, simulate
from sim.errors import ScenarioError

METRICS = ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms", "throughput_per_s", "failed")
_OPERATORS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


def parse_param(text: str) -> tuple[str, list[str]]:
    """``key=v1,v2,...`` into the key and its values (as TOML-readable strings)."""
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise ScenarioError("--param", f"expected key=v1,v2,... got {text!r}")
    return key.strip(), [v.strip() for v in _split_values(values)]


def _split_values(text: str) -> list[str]:
    """Split on commas outside brackets and quotes (``strategies=["a","b"],["c"]``)."""
    parts, depth, quote, current = [], 0, None, ""
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def point_rows(data: Mapping, assignments: dict[str, str], fidelity: str | None) -> list[dict]:
    """Run one grid point; one row per strategy."""
    scenario_data = apply_overrides(data, [f"{k}={v}" for k, v in assignments.items()])
    scenario = load_scenario(scenario_data)
    summary = simulate(scenario, fidelity=fidelity).summary
    rows = []
    for strategy, stats in summary["strategies"].items():
        row = {key: _value(value) for key, value in assignments.items()}
        row.update(
            {
                "strategy": strategy,
                "throughput_per_s": stats["throughput_per_s"],
                "mean_ms": stats["latency_ms"]["mean"],
                "p50_ms": stats["latency_ms"]["p50"],
                "p95_ms": stats["latency_ms"]["p95"],
                "p99_ms": stats["latency_ms"]["p99"],
                "max_ms": stats["latency_ms"]["max"],
                "completed": stats["completed"],
                "failed": stats["failed"],
                "sts_requests": stats["sts_requests"],
            }
        )
        for role, role_stats in stats["roles"].items():
            row[f"utilization_{role}"] = role_stats["utilization"]
        rows.append(row)
    return rows


def _value(text: str):
    try:
        import tomllib

        return tomllib.loads(f"v = {text}")["v"]
    except Exception:
        return text


def _point_id(assignments: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(assignments.items())).encode()).hexdigest()[:16]


def run_sweep(
    data: Mapping,
    params: list[tuple[str, list[str]]],
    out: Path,
    *,
    backend: str = "local",
    scheduler: str | None = None,
    fidelity: str | None = None,
    on_point: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Every grid point (resuming: points already in ``out/points`` are not run again)."""
    points_dir = out / "points"
    points_dir.mkdir(parents=True, exist_ok=True)
    keys = [k for k, _ in params]
    grid = [
        dict(zip(keys, combo, strict=True))
        for combo in itertools.product(*[values for _, values in params])
    ]
    for point in grid:  # validate every point before running any
        load_scenario(apply_overrides(data, [f"{k}={v}" for k, v in point.items()]))
    todo = [p for p in grid if not (points_dir / f"{_point_id(p)}.json").exists()]
    done = len(grid) - len(todo)
    if todo:
        for point, rows in _execute(data, todo, backend, scheduler, fidelity):
            (points_dir / f"{_point_id(point)}.json").write_text(json.dumps(rows))
            done += 1
            if on_point:
                on_point(done, len(grid))
    rows = []
    for point in grid:
        rows += json.loads((points_dir / f"{_point_id(point)}.json").read_text())
    return rows


def _execute(data, todo, backend, scheduler, fidelity):
    if backend == "dask":
        from dask.distributed import Client, LocalCluster, as_completed

        if scheduler:
            client = Client(scheduler)
        else:
            client = Client(
                LocalCluster(
                    n_workers=os.cpu_count() or 1,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
            )
        with client:
            futures = {
                client.submit(point_rows, data, point, fidelity, pure=False): point
                for point in todo
            }
            for future in as_completed(futures):
                yield futures[future], future.result()
        return
    workers = min(len(todo), os.cpu_count() or 1)
    if workers <= 1:
        for point in todo:
            yield point, point_rows(data, point, fidelity)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [(point, pool.submit(point_rows, data, point, fidelity)) for point in todo]
        for point, future in futures:
            yield point, future.result()


# --- capacity planning ----------------------------------------------------------------------


def parse_target(text: str) -> tuple[str, Callable[[float, float], bool], float, str]:
    match = re.fullmatch(r"\s*([a-z0-9_]+)\s*(<=|>=|<|>)\s*([0-9.eE+-]+)\s*", text)
    if not match or match.group(1) not in METRICS:
        raise ScenarioError(
            "--target",
            f"expected METRIC<=VALUE with METRIC one of {', '.join(METRICS)}; got {text!r}",
        )
    return match.group(1), _OPERATORS[match.group(2)], float(match.group(3)), match.group(2)


def plan(
    data: Mapping,
    target: str,
    vary: str,
    *,
    low: int = 1,
    high: int = 1024,
    fidelity: str | None = None,
    on_run: Callable[[int], None] | None = None,
) -> dict:
    """The smallest integer value of ``vary`` meeting ``target`` for every strategy.

    Assumes the metric improves monotonically with the varied key (more nodes, more cores):
    an exponential search finds a passing value, then a binary search the smallest one."""
    metric, compare, threshold, symbol = parse_target(target)
    evidence: list[dict] = []
    cache: dict[int, bool] = {}

    def meets(value: int) -> bool:
        if value not in cache:
            rows = point_rows(data, {vary: str(value)}, fidelity)
            ok = all(compare(row[metric], threshold) and row["completed"] > 0 for row in rows)
            for row in rows:
                evidence.append(
                    {
                        vary: value,
                        "strategy": row["strategy"],
                        metric: row[metric],
                        "completed": row["completed"],
                        "meets": compare(row[metric], threshold),
                    }
                )
            cache[value] = ok
            if on_run:
                on_run(len(cache))
        return cache[value]

    value, previous = low, low - 1
    while not meets(value):
        if value >= high:
            return {
                "target": target,
                "vary": vary,
                "answer": None,
                "runs": len(cache),
                "evidence": evidence,
                "note": f"not met up to {vary}={high}",
            }
        previous, value = value, min(value * 2, high)
    lo, hi = previous + 1, value
    while lo < hi:
        middle = (lo + hi) // 2
        if meets(middle):
            hi = middle
        else:
            lo = middle + 1
    return {
        "target": f"{metric}{symbol}{threshold:g}",
        "vary": vary,
        "answer": lo,
        "runs": len(cache),
        "evidence": sorted(evidence, key=lambda r: (r[vary], r["strategy"])),
        "note": "assumes the metric improves monotonically with the varied key",
    }
