"""``strategy_options.<name>.data_encryption = "aes-gcm"``: the traces of every strategy
that encrypts still decrypt (python-xmlsec, XML Encryption 1.1 AES-GCM) and verify
(xmlsec1) with independent tools, from the key log alone."""

from __future__ import annotations

import shutil

import pytest
from lxml import etree

from tests.cli.conftest import SCENARIOS, wssim
from tests.cli.independent import (
    XENC,
    decrypt_all,
    message_signature,
    read_trace,
    signing_key_args,
    verify_signature,
)

GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
ENCRYPTING = ("x509", "hok-symmetric", "sender-vouches", "sct", "sct-tlsnego", "ut-derived")


@pytest.mark.parametrize("strategy", ENCRYPTING)
def test_an_aes_gcm_trace_decrypts_and_verifies_with_independent_tools(tmp_path, strategy):
    xmlsec1 = shutil.which("xmlsec1")
    assert xmlsec1, "xmlsec1 is required"
    out = tmp_path / strategy
    result = wssim(
        "trace",
        SCENARIOS / f"{strategy}.toml",
        "--strategy",
        strategy,
        "--sessions",
        "1",
        "--out",
        out,
        "--set",
        "workload.messages_per_session=2",
        "--set",
        f"strategy_options.{strategy}.data_encryption=aes-gcm",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
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
