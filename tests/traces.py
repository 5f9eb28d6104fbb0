"""Traces made by ``wssim trace`` for the tests that check them with other tools: several in
one process, whose imports are paid once, not once a trace; every trace of TRACES made
once in a test run (``tests/conftest.py``'s ``trace_dir``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sim.protocol.api import STRATEGY_NAMES

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"

#: the strategies whose messages carry encrypted data (their AES-GCM variants)
ENCRYPTING = ("x509", "hok-symmetric", "sender-vouches", "sct", "sct-tlsnego", "ut-derived")
#: label (the trace's directory under ``trace_dir``) -> (strategy, --set overrides): every
#: strategy (labelled by its name), the variants that change what the senders write (SAML
#: 1.1 assertions; SCT bootstrap without TLS negotiation), and AES-GCM data encryption
TRACES: dict[str, tuple[str, tuple[str, ...]]] = {
    **{strategy: (strategy, ()) for strategy in STRATEGY_NAMES},
    "bearer-saml11": ("bearer", ('strategy_options.bearer.saml_version="1.1"',)),
    "sct-tlsnego-plain": ("sct-tlsnego", ("strategy_options.sct-tlsnego.tlsnego=false",)),
    **{
        f"aes-gcm/{strategy}": (strategy, (f"strategy_options.{strategy}.data_encryption=aes-gcm",))
        for strategy in ENCRYPTING
    },
}

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


def make_traces(base: Path) -> None:
    """Every trace of TRACES into ``base/<label>``, in two processes sharing the private
    key directory ``base/keys``."""
    env = {**os.environ, "WSSIM_KEY_DIR": str(base / "keys")}
    run_traces(
        [trace_args(strategy, base / label, sets) for label, (strategy, sets) in TRACES.items()],
        env,
    )
