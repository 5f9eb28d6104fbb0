"""Loaded by every pytest run of this checkout: the tests run in parallel (``-n auto`` in
pyproject.toml's addopts, one worker a core), the benchmarks serially.

pytest-benchmark measures nothing under xdist (it turns itself off), and benchmarks timed
side by side would time each other: a run of benchmarks/ alone, or with any --benchmark-*
flag, gets no workers, unless ``-n N`` is given on the command line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
BENCHMARKS = ROOT / "benchmarks"
#: the packages the suite's child interpreters import from this checkout
PACKAGES = ("sim", "fuzz")


def _runs_benchmarks(config: pytest.Config) -> bool:
    if any(arg.startswith("--benchmark") for arg in config.invocation_params.args):
        return True
    paths = [Path(arg.split("::")[0]) for arg in config.args]
    return bool(paths) and all(
        (config.invocation_params.dir / path).resolve().is_relative_to(BENCHMARKS) for path in paths
    )


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """No workers for the benchmarks; else xdist's own count (the machine's cores)."""
    return 0 if _runs_benchmarks(config) else None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """A run of the tests times nothing: pytest-benchmark is turned off before it warns, in
    every worker, that xdist turns it off.

    The checkout's modules are compiled once, before any worker starts: with
    PYTHONDONTWRITEBYTECODE set (as on this project's machines) no interpreter writes its
    bytecode, and each of the suite's child interpreters (the CLI's, the testbed's nodes,
    notebook kernels, Dask workers) compiled every module it imported again. Python checks
    a cached file against its source, so a stale one is never used."""
    if not _runs_benchmarks(config):
        config.option.benchmark_disable = True
    if not hasattr(config, "workerinput"):
        import compileall

        for package in PACKAGES:
            compileall.compile_dir(ROOT / package, quiet=2)
