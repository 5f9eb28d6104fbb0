"""What a user runs: the ``wssim`` command itself, start-up and outputs included.

Run: ``python -m pytest benchmarks/bench_cli.py --benchmark-only``. Figures reported:

* ``wssim --help`` and a refused scenario, wall time of the whole process (target 0.5 s),
  and the import time of ``sim.cli`` by ``python -X importtime -m sim.cli --help``;
* ``wssim run`` (replay, ``sct``, messages.csv, nodes.csv, plots and all) at 1, 5 and 20
  messages a session on farms of 2, 100 and 1,000 nodes per role, the workload issue 15
  measured (the same sessions, 300 a second for 150 s, spread over the farm; the WAN link
  at 1 Gbit/s so that it is not saturated, as in the issue's run), in application
  messages per wall second against bare SimPy M/M/c customers per second measured in the
  same run (target 0.4 at 5 messages a session; flat within 15 % across farm sizes). With
  the same load per node the run of the big farm would last a fraction of a second: its
  sessions would be cut short by the end of the run and the figure would measure that,
  not the farm. Each row's ``figures`` line adds its CPU seconds (the plot process
  included) and its ratio against bare SimPy runs made just before and after it: on a
  shared machine the load changes between the baseline and a row run minutes later.
"""

from __future__ import annotations

import json
import math
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.bench_engine import CUSTOMERS, bare_mmc

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "sct.toml"
#: sessions per second and seconds simulated, whatever the farm (issue 15's run)
RATE = 300.0
DURATION_S = 150.0
#: the clients' WAN link, fast enough not to saturate at 20 messages a session
WAN_MBPS = 1000.0


def _wssim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sim.cli", *map(str, args)], capture_output=True, text=True, cwd=ROOT
    )


def _per_item(benchmark, items: int) -> None:
    for stat in ("min", "max", "mean", "median"):
        setattr(benchmark.stats.stats, stat, getattr(benchmark.stats.stats, stat) / items)


@pytest.mark.benchmark(group="cli: start-up")
def test_help_answers_within_half_a_second(benchmark):
    benchmark.name = "wssim --help (whole process)"
    result = benchmark.pedantic(lambda: _wssim("--help"), rounds=5, iterations=1)
    assert result.returncode == 0
    imports = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sim.cli", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stderr
    total = re.search(r"\|\s*(\d+)\s*\|\s*sim\.cli$", imports, re.MULTILINE)
    benchmark.extra_info["import_sim_cli_ms"] = int(total.group(1)) / 1000 if total else None
    benchmark.extra_info["figures"] = (
        f"python -X importtime -m sim.cli --help: sim.cli {benchmark.extra_info['import_sim_cli_ms']}"
        " ms"
    )
    benchmark.extra_info["target_s"] = 0.5
    benchmark.extra_info["rate"] = 1 / benchmark.stats.stats.median
    benchmark.extra_info["rate_unit"] = "answers/s (target 2/s: 0.5 s)"


@pytest.mark.benchmark(group="cli: start-up")
def test_a_refused_scenario_answers_within_half_a_second(benchmark, tmp_path):
    benchmark.name = "wssim run, a refused scenario (whole process)"
    args = ("run", SCENARIO, "--set", "workload.rate=-1", "--out", tmp_path / "never")
    result = benchmark.pedantic(lambda: _wssim(*args), rounds=5, iterations=1)
    assert result.returncode == 2 and "workload.rate" in result.stderr
    benchmark.extra_info["target_s"] = 0.5
    benchmark.extra_info["rate"] = 1 / benchmark.stats.stats.median
    benchmark.extra_info["rate_unit"] = "answers/s (target 2/s: 0.5 s)"


@pytest.mark.benchmark(group="cli: wssim run, time per app message")
def test_bare_simpy_mmc_customer(benchmark):
    benchmark.name = "bare SimPy M/M/c customer[baseline]"
    benchmark.pedantic(bare_mmc, rounds=3, iterations=1)
    _per_item(benchmark, CUSTOMERS)


@pytest.mark.benchmark(group="cli: wssim run, time per app message")
@pytest.mark.parametrize("nodes", [2, 100, 1000])
@pytest.mark.parametrize("messages", [1, 5, 20])
def test_wssim_run(benchmark, tmp_path, messages, nodes):
    args = [
        "run",
        SCENARIO,
        "--set",
        f"workload.messages_per_session={messages}",
        "--set",
        f"workload.rate={RATE}",
        "--set",
        f"run.duration_s={DURATION_S}",
        "--set",
        "run.warmup_s=0.0",
        "--set",
        f"topology.sts.nodes={nodes}",
        "--set",
        f"topology.provider.nodes={nodes}",
        "--set",
        f"links.client-provider.bandwidth_mbps={WAN_MBPS}",
        "--out",
        tmp_path / "out",
        "--force",
    ]
    walls = []
    cpus = []

    def once():
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = _wssim(*args)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        return result

    # a bare SimPy run just before and just after the command as well: on a shared machine
    # the load changes from one minute to the next
    bare = [_bare_customer_s()]
    result = benchmark.pedantic(once, rounds=1, iterations=1)
    bare.append(_bare_customer_s())
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert not summary["warnings"], summary["warnings"]  # nothing saturated, as in the issue
    count = summary["strategies"]["sct"]["app_messages"]
    benchmark.name = f"wssim run sct, {messages} msgs/session, {nodes} nodes/role"
    if messages == 5:
        benchmark.extra_info["target_ratio"] = 0.4
    _per_item(benchmark, count)
    benchmark.extra_info["rate"] = count / walls[0]
    benchmark.extra_info["rate_unit"] = "app messages/s, whole command"
    adjacent = sum(bare) / len(bare) / (walls[0] / count)
    benchmark.extra_info["ratio_to_adjacent_bare"] = adjacent
    benchmark.extra_info["figures"] = (
        f"{count:,} msgs, {walls[0]:.2f} s wall, {cpus[0]:.2f} s CPU (helper included); "
        f"x{adjacent:.3f} of the bare SimPy runs just before and after"
    )


def _bare_customer_s() -> float:
    """Seconds per customer of the bare SimPy M/M/c model, the best of two runs."""
    best = math.inf
    for _ in range(2):
        started = time.perf_counter()
        bare_mmc()
        best = min(best, time.perf_counter() - started)
    return best / CUSTOMERS
