"""``wssim trace`` output lets independent tools decrypt and verify every message of every
strategy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

from sim.protocol.api import STRATEGY_NAMES
from tests.cli.independent import (
    XENC,
    assertions,
    decrypt_all,
    message_signature,
    read_trace,
    signing_key_args,
    verify_assertion,
    verify_signature,
)


@pytest.fixture
def traces(trace_dir) -> Path:
    """A trace of every strategy (one session of two messages): <traces>/<strategy>/, from
    the run's one batch of traces (``trace_dir``)."""
    return trace_dir


#: strategies whose client requests carry no message signature (TLS protects the client's
#: leg; with sender-vouches the intermediary signs what it forwards)
OVER_TLS = {"bearer", "bearer-per-message", "sender-vouches"}
#: strategies whose messages carry SAML assertions signed by the STS
WITH_ASSERTIONS = {"bearer", "bearer-per-message", "hok-symmetric", "hok-public", "sender-vouches"}


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_every_message_of_a_trace_decrypts_and_verifies_with_independent_tools(
    traces, tmp_path, xmlsec1, strategy
):
    """python-xmlsec decrypts every EncryptedData with keys from keylog.jsonl; xmlsec1
    verifies every message signature (HMAC keys from the key log, RSA keys from certs/ or
    from the holder-of-key assertion) and every assertion's signature with the STS
    certificate. No wssim code takes part."""
    out = traces / strategy
    entries, keys = read_trace(out)
    signed = checked_assertions = 0
    for entry in entries:
        if entry["file"].endswith(".der"):  # a KDC message: tests/interop/test_mit_krb5.py
            continue
        root = etree.fromstring((out / entry["file"]).read_bytes())
        present = len(list(root.iter(f"{{{XENC}}}EncryptedData")))
        assert decrypt_all(root, keys) == present, entry["file"]
        for assertion in assertions(root):
            result = verify_assertion(xmlsec1, assertion, out / "certs" / "sts-0.pem", tmp_path)
            assert result.returncode == 0, (entry["file"], result.stderr)
            checked_assertions += 1
        if message_signature(root) is None:
            request = entry["action"].endswith(":Process") and entry["from"].startswith("client")
            assert strategy in OVER_TLS or not request, entry
            continue
        args = signing_key_args(root, keys, out / "certs", entry["from"], tmp_path)
        result = verify_signature(xmlsec1, etree.tostring(root), args, tmp_path)
        assert result.returncode == 0, (entry["file"], result.stderr)
        signed += 1
    assert signed >= (0 if strategy in {"bearer", "bearer-per-message"} else 2)
    assert (checked_assertions > 0) == (strategy in WITH_ASSERTIONS)


def test_trace_writes_certificates_named_as_in_the_trace(traces):
    out = traces / "sender-vouches"
    entries = [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()]
    nodes = {e["from"] for e in entries} | {e["to"] for e in entries}
    assert {p.stem for p in (out / "certs").glob("*.pem")} == nodes
    assert (out / "sequence.png").stat().st_size > 1000
