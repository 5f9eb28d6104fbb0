"""Traces made by ``wssim trace`` for the tests that check them with other tools: several in
one process, whose imports are paid once, not once a trace."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"

#: runs ``wssim trace`` for each argument list of argv[1] (JSON) in one process
_DRIVER = (
    "import json, sys; from sim.cli import main; "
    "sys.exit(max(main(args) for args in json.loads(sys.argv[1])))"
)


def trace_args(strategy: str, out: Path, sets: tuple[str, ...] = ()) -> list[str]:
    """``wssim trace`` of one session of two application messages of ``strategy`` (its own
    scenario) into ``out``, with the ``--set`` overrides ``sets``."""
    args = ["trace", str(SCENARIOS / f"{strategy}.toml"), "--strategy", strategy]
    args += ["--sessions", "1", "--out", str(out)]
    for override in ("workload.messages_per_session=2", *sets):
        args += ["--set", override]
    return args


def run_traces(runs: list[list[str]], env: dict[str, str], processes: int = 2) -> None:
    """Run the ``wssim`` argument lists ``runs`` in ``processes`` processes side by side
    (the machine's two cores); they may share one key directory (its keys are made once,
    under its lock)."""
    started = [
        subprocess.Popen(
            [sys.executable, "-c", _DRIVER, json.dumps(runs[index::processes])],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for index in range(min(processes, len(runs)))
    ]
    for process in started:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
