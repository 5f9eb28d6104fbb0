"""``strategy_options.<name>.data_encryption = "aes-gcm"``: the traces of every strategy
that encrypts still decrypt (python-xmlsec, XML Encryption 1.1 AES-GCM) and verify
(xmlsec1) with independent tools, from the key log alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from tests.cli.independent import (
    XENC,
    decrypt_all,
    message_signature,
    read_trace,
    signing_key_args,
    verify_signature,
)
from tests.traces import ENCRYPTING

GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"


@pytest.fixture
def traces(trace_dir) -> Path:
    """An AES-GCM trace of every strategy of ENCRYPTING (one session of two messages):
    <traces>/<strategy>/, from the run's one batch of traces (``trace_dir``)."""
    return trace_dir / "aes-gcm"


@pytest.mark.parametrize("strategy", ENCRYPTING)
def test_an_aes_gcm_trace_decrypts_and_verifies_with_independent_tools(
    traces, tmp_path, xmlsec1, strategy
):
    out = traces / strategy
    entries, keys = read_trace(out)
    decrypted = 0
    for entry in entries:
        root = etree.fromstring((out / entry["file"]).read_bytes())
        methods = [
            el.get("Algorithm")
            for data in root.iter(f"{{{XENC}}}EncryptedData")
            for el in data.iterfind(f"{{{XENC}}}EncryptionMethod")
        ]
        assert set(methods) <= {GCM}, (entry["file"], methods)
        decrypted += decrypt_all(root, keys)
        assert not list(root.iter(f"{{{XENC}}}EncryptedData")), entry["file"]
        if message_signature(root) is None:
            continue
        args = signing_key_args(root, keys, out / "certs", entry["from"], tmp_path)
        verified = verify_signature(xmlsec1, etree.tostring(root), args, tmp_path)
        assert verified.returncode == 0, (entry["file"], verified.stderr)
    assert decrypted >= 2
