"""Traces of every strategy, made once per test session for the interop checks: the exact
bytes of every message, the key log, the certificates, and the private key directory the
run used (the receivers' private keys are taken from it), and WSS4J's programs compiled once.
The modules using them are in one xdist group, so that one worker makes them once."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.wss4j import compile_java
from tests.traces import run_traces, trace_args

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


@pytest.fixture(scope="session")
def traces(tmp_path_factory) -> dict[str, Trace]:
    """Every trace of TRACES (one session, two application messages), made by ``wssim
    trace`` in two processes (the machine's two cores) sharing one private key directory."""
    base = tmp_path_factory.mktemp("interop")
    key_dir = base / "keys"
    env = {**os.environ, "WSSIM_KEY_DIR": str(key_dir)}
    run_traces(
        [trace_args(strategy, base / label, sets) for label, (strategy, sets) in TRACES.items()],
        env,
    )
    return {
        label: Trace(label, strategy, base / label, key_dir)
        for label, (strategy, _) in TRACES.items()
    }


@pytest.fixture(scope="session")
def wss4j_classes(tmp_path_factory) -> Path:
    """The Java programs of tests/interop/java, compiled once for both directions."""
    return compile_java(tmp_path_factory.mktemp("wss4j-classes"))
