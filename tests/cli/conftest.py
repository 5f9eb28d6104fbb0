"""Drive the real ``wssim`` command in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
#: a short run: every CLI test should take seconds
SHORT = ["--set", "run.duration_s=3", "--set", "run.warmup_s=0.5"]


def wssim(
    *args: str, timeout: float = 120, cwd: Path = ROOT, **kwargs
) -> subprocess.CompletedProcess:
    """``python -m sim.cli ARGS`` in a child process (from the repository root unless told)."""
    return subprocess.run(
        [sys.executable, "-m", "sim.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        **kwargs,
    )


def assert_usage_error(result: subprocess.CompletedProcess, *words: str) -> None:
    """Exit status 2, one line on stderr naming what is wrong, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture
def run():
    return wssim
