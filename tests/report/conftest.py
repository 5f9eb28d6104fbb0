"""Real result directories for the report and results-store tests (short runs of the real
``wssim`` command, made once per session) and a headless Chromium."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import wssim as cli_wssim
from tests.report.browser import Browser, chromium_path

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
SHORT = ["--set", "run.duration_s=3", "--set", "run.warmup_s=0.5", "--workers", "1"]


def wssim(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The CLI tests' ``wssim``, with room for the report's longer runs."""
    return cli_wssim(*args, timeout=timeout)


def checked(*args: str) -> subprocess.CompletedProcess:
    result = wssim(*args)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="session")
def results_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("results")


@pytest.fixture(scope="session")
def run_a(results_root) -> Path:
    """The flagship compare (all nine strategies), two replications, with its report."""
    out = results_root / "a"
    checked(
        "compare", SCENARIOS / "sct-vs-per-message.toml", *SHORT,
        "--replications", "2", "--out", out, "--report",
    )  # fmt: skip
    return out


@pytest.fixture(scope="session")
def run_b(results_root) -> Path:
    """The same scenario, three of its strategies, at a higher rate on one STS node, plots as
    SVG."""
    out = results_root / "b"
    checked(
        "run", SCENARIOS / "sct-vs-per-message.toml", *SHORT,
        "--set", "workload.rate=30", "--set", "topology.sts.nodes=1",
        "--set", 'strategies=["bearer","sct","x509"]',
        "--replications", "2", "--out", out, "--plot-format", "svg",
    )  # fmt: skip
    return out


@pytest.fixture(scope="session")
def sweep_dir(results_root) -> Path:
    out = results_root / "sweeps" / "rate"
    checked(
        "sweep", SCENARIOS / "sct.toml", "--set", "run.duration_s=2", "--set", "run.warmup_s=0.5",
        "--param", "workload.rate=5,10", "--workers", "1", "--out", out, "--report",
    )  # fmt: skip
    return out


@pytest.fixture(scope="session")
def trace_dir(results_root) -> Path:
    out = results_root / "trace"
    checked("trace", SCENARIOS / "sct.toml", "--strategy", "sct", "--sessions", "1", "--out", out)
    return out


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable (Debian package chromium)."""
    path = chromium_path()
    if path is None:
        pytest.fail("chromium is required (Debian package chromium; .ci/run installs it)")
    return path


@pytest.fixture(scope="session")
def browser(chromium, tmp_path_factory):
    """One headless Chromium for the session (each test navigates its one page)."""
    instance = Browser(chromium, tmp_path_factory.mktemp("chromium"))
    try:
        yield instance
    finally:
        instance.close()
