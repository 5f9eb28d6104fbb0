"""Traces of every strategy, made once per test session for the interop checks: the exact
bytes of every message, the key log, the certificates, and the private key directory the
run used (the receivers' private keys are taken from it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
#: label -> (strategy, --set overrides): every strategy, and the variants that change what
#: the senders write (SCT bootstrap without TLS negotiation; SAML 1.1 assertions)
TRACES = {
    "x509": ("x509", ()),
    "bearer": ("bearer", ()),
    "bearer-saml11": ("bearer", ('strategy_options.bearer.saml_version="1.1"',)),
    "bearer-per-message": ("bearer-per-message", ()),
    "hok-symmetric": ("hok-symmetric", ()),
    "hok-public": ("hok-public", ()),
    "sender-vouches": ("sender-vouches", ()),
    "sct": ("sct", ()),
    "sct-tlsnego": ("sct-tlsnego", ()),
    "sct-tlsnego-plain": ("sct-tlsnego", ("strategy_options.sct-tlsnego.tlsnego=false",)),
    "ut-derived": ("ut-derived", ()),
}


@dataclass(frozen=True)
class Trace:
    label: str
    strategy: str
    out: Path
    key_dir: Path

    @property
    def entries(self) -> list[dict]:
        return [json.loads(line) for line in (self.out / "trace.jsonl").read_text().splitlines()]

    @property
    def keylog(self) -> list[dict]:
        return [json.loads(line) for line in (self.out / "keylog.jsonl").read_text().splitlines()]


def _trace_args(strategy: str, sets: tuple[str, ...], out: Path) -> list[str]:
    args = ["trace", str(SCENARIOS / f"{strategy}.toml"), "--strategy", strategy]
    args += ["--sessions", "1", "--out", str(out)]
    for override in ("workload.messages_per_session=2", *sets):
        args += ["--set", override]
    return args


#: runs ``wssim trace`` for each argument list of argv[1] (JSON) in one process: the
#: command's imports are paid once, not once a trace
_DRIVER = (
    "import json, sys; from sim.cli import main; "
    "sys.exit(max(main(args) for args in json.loads(sys.argv[1])))"
)


def _run_traces(groups: list[list[list[str]]], env: dict[str, str]) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _DRIVER, json.dumps(group)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for group in groups
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr


@pytest.fixture(scope="session")
def traces(tmp_path_factory) -> dict[str, Trace]:
    """Every trace of TRACES (one session, two application messages), made by ``wssim
    trace`` in two processes (the machine's two cores) sharing one private key directory."""
    base = tmp_path_factory.mktemp("interop")
    key_dir = base / "keys"
    env = {**os.environ, "WSSIM_KEY_DIR": str(key_dir)}
    runs = [_trace_args(strategy, sets, base / label) for label, (strategy, sets) in TRACES.items()]
    # the keys are made by the first trace alone: two processes would each make the missing ones
    _run_traces([runs[:1]], env)
    _run_traces([runs[1::2], runs[2::2]], env)
    return {
        label: Trace(label, strategy, base / label, key_dir)
        for label, (strategy, _) in TRACES.items()
    }
