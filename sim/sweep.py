"""Sweeps over scenario keys (local process pool or Dask) and capacity planning."""

from __future__ import annotations

import hashlib
import itertools
import json
import operator
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import tomllib

from sim.errors import ScenarioError

#: the prefix of a row's service demand columns: ``demand_ms.<role>.<resource>``
DEMAND = "demand_ms."
METRICS = ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms", "throughput_per_s", "failed")
_OPERATORS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


def parse_param(text: str) -> tuple[str, list[str]]:
    """``key=v1,v2,...`` into the key and its values (as TOML-readable strings)."""
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise ScenarioError("--param", f"expected key=v1,v2,... got {text!r}")
    parsed = [v.strip() for v in _split_values(values)]
    if len(set(parsed)) != len(parsed):
        raise ScenarioError(key.strip(), f"a value is listed twice in {values!r}")
    return key.strip(), parsed


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


def _value(text: str):
    """A swept value as the scenario sees it: TOML, a bare word being a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def summary_rows(summary: Mapping, assignments: Mapping[str, str]) -> list[dict]:
    """One tidy row per strategy of a summary, prefixed with the point's assignments."""
    rows = []
    # a warning starts with the run it is about: a strategy, or a mixed run's "a+b"
    warned = {
        name for warning in summary.get("warnings", []) for name in warning.split(":")[0].split("+")
    }
    for strategy, stats in summary["strategies"].items():
        latency = stats["latency_ms"]
        sizes = stats["bytes_per_app_message"]
        capacity = stats.get("capacity") or {}
        row = {key: _value(value) for key, value in assignments.items()}
        row.update(
            {
                "strategy": strategy,
                "replications": summary["replications"],
                "throughput_per_s": stats["throughput_per_s"],
                "throughput_per_s_ci95": stats.get("throughput_per_s_ci95", ""),
                "offered_per_s": stats.get("offered_per_s", ""),
                "in_flight_at_end": stats.get("in_flight_at_end", ""),
                "max_messages_per_s": capacity.get("max_messages_per_s", ""),
                "bottleneck": capacity.get("bottleneck", ""),
                "mean_ms": latency["mean"],
                "p50_ms": latency["p50"],
                "p95_ms": latency["p95"],
                "p99_ms": latency["p99"],
                "p99_ms_ci95": latency.get("ci95", {}).get("p99", ""),
                "max_ms": latency["max"],
                "app_messages": stats["app_messages"],
                "completed": stats["completed"],
                "failed": stats["failed"],
                "sts_requests": stats["sts_requests"],
                "overloaded": strategy in warned or bool(latency.get("unstable")),
                "request_bytes": sizes["request"],
                "response_bytes": sizes["response"],
                "token_service_bytes": sizes["token_service"],
            }
        )
        for role, role_stats in sorted(stats["roles"].items()):
            row[f"utilization_{role}"] = role_stats["utilization"]
        for role, resources in sorted((capacity.get("demand_ms") or {}).items()):
            for resource, ms in sorted(resources.items()):
                row[f"{DEMAND}{role}.{resource}"] = ms
        rows.append(row)
    return rows


def point_rows(data: Mapping, assignments: dict[str, str], fidelity: str | None) -> list[dict]:
    """Run one grid point (with the scenario's replications); one row per strategy."""
    from sim.engine import apply_overrides, load_scenario, simulate

    scenario = load_scenario(apply_overrides(data, [f"{k}={v}" for k, v in assignments.items()]))
    result = simulate(scenario, fidelity=fidelity)
    if result.partial:
        raise KeyboardInterrupt
    return summary_rows(result.summary, assignments)


def _point_id(base: str, assignments: Mapping[str, str]) -> str:
    text = json.dumps([base, sorted(assignments.items())])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def grid(params: list[tuple[str, list[str]]]) -> list[dict[str, str]]:
    """Every combination of the swept values, in order."""
    keys = [k for k, _ in params]
    return [
        dict(zip(keys, combo, strict=True))
        for combo in itertools.product(*[values for _, values in params])
    ]


def run_sweep(
    data: Mapping,
    params: list[tuple[str, list[str]]],
    out: Path,
    *,
    backend: str = "local",
    scheduler: str | None = None,
    workers: int | None = None,
    fidelity: str | None = None,
    on_point: Callable[[int, int], None] | None = None,
) -> tuple[list[dict], int]:
    """Run every grid point not already in ``out/points`` and return (all rows, points run).

    A point's file name hashes the base scenario, the fidelity and the point's values, so a
    resumed sweep never mixes in points of a different scenario."""
    from sim.engine import apply_overrides, load_scenario

    points_dir = Path(out) / "points"
    points_dir.mkdir(parents=True, exist_ok=True)
    base = json.dumps([data, fidelity], sort_keys=True, default=str)
    points = grid(params)
    for point in points:  # validate every point before running any
        load_scenario(apply_overrides(data, [f"{k}={v}" for k, v in point.items()]))
    todo = [p for p in points if not (points_dir / f"{_point_id(base, p)}.json").exists()]
    done = len(points) - len(todo)
    if on_point:
        on_point(done, len(points))
    for point, rows in _execute(data, todo, backend, scheduler, workers, fidelity):
        path = points_dir / f"{_point_id(base, point)}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"point": point, "rows": rows}))
        tmp.replace(path)
        done += 1
        if on_point:
            on_point(done, len(points))
    rows: list[dict] = []
    for point in points:
        rows += json.loads((points_dir / f"{_point_id(base, point)}.json").read_text())["rows"]
    return rows, len(todo)


def _execute(data, todo, backend, scheduler, workers, fidelity) -> Iterator[tuple[dict, list]]:
    if not todo:
        return
    workers = workers or os.cpu_count() or 1
    if backend == "dask":
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_completed

        if scheduler:
            client = Client(scheduler, timeout="10s")
        else:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            client = Client(cluster)
        try:
            futures = {
                client.submit(point_rows, data, point, fidelity, pure=False): json.dumps(point)
                for point in todo
            }
            for future in dask_completed(futures):
                yield json.loads(futures[future]), future.result()
        finally:
            client.close()
            if not scheduler:
                cluster.close()
        return
    if min(workers, len(todo)) <= 1:
        for point in todo:
            yield point, point_rows(data, point, fidelity)
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
        futures = {
            pool.submit(point_rows, data, point, fidelity): i for i, point in enumerate(todo)
        }
        try:
            for future in as_completed(futures):
                yield todo[futures[future]], future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


# --- capacity planning ----------------------------------------------------------------------


def parse_target(text: str) -> tuple[str, Callable[[float, float], bool], float, str]:
    """``'p99_ms<=200'`` into (metric, comparison, threshold, operator symbol)."""
    match = re.fullmatch(r"\s*([a-z0-9_]+)\s*(<=|>=|<|>)\s*([0-9.eE+-]+)\s*", text)
    if not match or match.group(1) not in METRICS:
        raise ScenarioError(
            "--target",
            f"expected METRIC<=VALUE with METRIC one of {', '.join(METRICS)} and an operator "
            f"<=, <, >= or >; got {text!r}",
        )
    try:
        threshold = float(match.group(3))
    except ValueError:
        raise ScenarioError("--target", f"{match.group(3)!r} is not a number") from None
    return match.group(1), _OPERATORS[match.group(2)], threshold, match.group(2)


def plan(
    data: Mapping,
    target: str,
    vary: str,
    *,
    low: int = 1,
    high: int = 256,
    fidelity: str | None = None,
    on_run: Callable[[int, int, bool], None] | None = None,
    run_point: Callable[[Mapping, dict[str, str], str | None], list[dict]] = point_rows,
    on_skip: Callable[[int, str], None] | None = None,
) -> dict:
    """The smallest integer value of ``vary`` in ``[low, high]`` meeting ``target`` for every
    strategy of the scenario (a run with overload warnings or unstable latencies meets no
    target).

    Assumes the metric improves monotonically with the varied key (more nodes, more cores):
    an exponential search (low, 2 low, 4 low, ...) finds a passing value, then a binary search
    between the last failing and the first passing value finds the smallest one, so the
    answer takes about 2 log2(answer) runs. A value whose capacity bound, predicted from
    the service demands of the last run (``capacity_bound``), is below the offered load is
    not run: it is skipped as failing, with the reason in the evidence."""
    metric, compare, threshold, symbol = parse_target(target)
    if low < 1 or high < low:
        raise ScenarioError("--max", f"must be at least {low}; got {high}")
    evidence: list[dict] = []
    results: dict[int, bool] = {}
    last_rows: list[dict] = []
    runs = 0

    def row_meets(row: Mapping) -> bool:
        # an overloaded run's figures depend on its length: it meets nothing
        return (
            compare(row[metric], threshold)
            and row["completed"] > 0
            and not row.get("overloaded", False)
        )

    def skip(value: int) -> bool:
        hopeless = [
            (row, bound)
            for row in last_rows
            if (bound := capacity_bound(data, vary, value, row)) is not None
            and bound[0] < row["offered_per_s"]
        ]
        for row, (bound, bottleneck) in hopeless:
            reason = (
                f"capacity bound {bound:,.1f}/s ({bottleneck}) below the offered load "
                f"{row['offered_per_s']:,.1f}/s"
            )
            evidence.append(
                {
                    vary: value,
                    "strategy": row["strategy"],
                    metric: None,
                    "target": f"{metric}{symbol}{threshold:g}",
                    "meets": False,
                    "skipped": reason,
                    "max_messages_per_s": bound,
                    "bottleneck": bottleneck,
                    "offered_per_s": row["offered_per_s"],
                }
            )
            if on_skip:
                on_skip(value, reason)
        return bool(hopeless)

    def meets(value: int) -> bool:
        nonlocal runs, last_rows
        if value not in results and skip(value):
            results[value] = False
        if value not in results:
            rows = run_point(data, {vary: str(value)}, fidelity)
            runs += 1
            last_rows = rows
            passed = bool(rows) and all(row_meets(row) for row in rows)
            for row in rows:
                evidence.append(
                    {
                        vary: value,
                        "strategy": row["strategy"],
                        metric: row[metric],
                        "target": f"{metric}{symbol}{threshold:g}",
                        "meets": row_meets(row),
                        **{k: v for k, v in row.items() if k not in (vary, "strategy", metric)},
                    }
                )
            results[value] = passed
            if on_run:
                on_run(runs, value, passed)
        return results[value]

    report = {
        "target": f"{metric}{symbol}{threshold:g}",
        "vary": vary,
        "assumption": f"{metric} improves monotonically as {vary} grows",
    }
    value, failing = low, low - 1
    while not meets(value):
        if value >= high:
            return {
                **report,
                "answer": None,
                "runs": runs,
                "skipped": len(results) - runs,
                "evidence": evidence,
                "note": f"not met with {vary} up to {high} (raise --max?)",
            }
        failing, value = value, min(value * 2, high)
    lo, hi = failing + 1, value
    while lo < hi:
        middle = (lo + hi) // 2
        if meets(middle):
            hi = middle
        else:
            lo = middle + 1
    return {
        **report,
        "answer": lo,
        "runs": runs,
        "skipped": len(results) - runs,
        "evidence": sorted(evidence, key=lambda r: (r[vary], r["strategy"])),
        "note": f"{vary}={lo - 1} fails"
        if lo > low
        else f"{vary}={low} is the smallest value tried",
    }


def capacity_bound(data: Mapping, vary: str, value: int, row: Mapping) -> tuple[float, str] | None:
    """The capacity bound (messages/s) and bottleneck of ``row``'s strategy with ``vary`` set
    to ``value``: the demands measured in ``row`` (``demand_ms.<role>.<resource>``) against
    the servers of that topology. None when it cannot be predicted: ``vary`` is not a
    topology key, or the row has no demands or offered load."""
    from sim.engine import apply_overrides, capacity, load_scenario

    if not vary.startswith("topology.") or not isinstance(row.get("offered_per_s"), int | float):
        return None
    demand: dict[str, dict[str, float]] = {}
    for key, ms in row.items():
        if key.startswith(DEMAND) and isinstance(ms, int | float):
            role, _, resource = key.removeprefix(DEMAND).partition(".")
            demand.setdefault(role, {})[resource] = ms
    if not demand:
        return None
    scenario = load_scenario(apply_overrides(data, [f"{vary}={value}"]))
    found = capacity.capacity(demand, capacity.servers(scenario, demand))
    if found["max_messages_per_s"] is None:
        return None
    return found["max_messages_per_s"], found["bottleneck"]
