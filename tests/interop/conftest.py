"""Traces of every strategy, made once per test session for the interop checks: the exact
bytes of every message, the key log, the certificates, and the private key directory the
run used (the receivers' private keys are taken from it), and WSS4J's programs compiled once.
The modules using them are in one xdist group, so that one worker makes them once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.wss4j import compile_java
from tests.traces import TRACES as ALL_TRACES

#: the traces checked here, labels of tests.traces.TRACES: every strategy's but the Kerberos
#: ones' (MIT Kerberos checks those, tests/interop/test_mit_krb5.py), with the variants that
#: change what the senders write (SAML 1.1 assertions; SCT bootstrap without TLS
#: negotiation); not the AES-GCM ones (tests/cli/test_trace_gcm.py)
KERBEROS = ("kerberos", "sct-spnego")
LABELS = tuple(
    label
    for label, (strategy, _) in ALL_TRACES.items()
    if strategy not in KERBEROS and not label.startswith("aes-gcm/")
)
TRACES = {label: ALL_TRACES[label] for label in LABELS}


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
def traces(trace_dir) -> dict[str, Trace]:
    """Every trace of TRACES, from the run's one batch of traces (``trace_dir``), with the
    private key directory its runs used."""
    return {
        label: Trace(label, strategy, trace_dir / label, trace_dir / "keys")
        for label, (strategy, _) in TRACES.items()
    }


@pytest.fixture(scope="session")
def wss4j_classes(tmp_path_factory) -> Path:
    """The Java programs of tests/interop/java, compiled once for both directions."""
    return compile_java(tmp_path_factory.mktemp("wss4j-classes"))
