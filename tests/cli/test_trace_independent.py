"""A whole SecureConversation trace, token service exchange and Cancel included, decrypted and
verified by independent tools from the key log alone; every derived key of the key log
recomputed from the logged SCT secret with the standard library's HMAC (RFC 2246 P_SHA-1)."""

from __future__ import annotations

import base64
import json
import shutil

import pytest
from lxml import etree

from tests.cli.independent import (
    DS,
    XENC,
    decrypt_all,
    read_trace,
    signing_key_args,
    verify_signature,
)
from tests.crypto.oracles import stdlib_p_sha1

SC = "http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
LABEL = b"WS-SecureConversationWS-SecureConversation"


@pytest.fixture
def sct_trace(trace_dir):
    """``wssim trace`` of one sct session of two messages, from the run's one batch of
    traces (``trace_dir``)."""
    return trace_dir / "sct"


def test_every_message_of_an_sct_session_decrypts_and_verifies_independently(sct_trace, tmp_path):
    xmlsec1 = shutil.which("xmlsec1")
    assert xmlsec1, "xmlsec1 is required"
    entries, keys = read_trace(sct_trace)
    actions = [e["action"].rsplit("/", 2)[-2:] for e in entries]
    assert actions[0] == ["RST", "SCT"] and actions[-2] == ["SCT", "Cancel"]
    for entry in entries:
        data = (sct_trace / entry["file"]).read_bytes()
        assert len(data) == entry["bytes"]
        root = etree.fromstring(data)
        encrypted = len(list(root.iter(f"{{{XENC}}}EncryptedData")))
        assert decrypt_all(root, keys) == encrypted > 0, entry["file"]
        assert root.find(f".//{{{DS}}}Signature") is not None
        args = signing_key_args(root, keys, sct_trace / "certs", entry["from"], tmp_path)
        result = verify_signature(xmlsec1, etree.tostring(root), args, tmp_path)
        assert result.returncode == 0, (entry["file"], result.stderr)


def test_tampered_trace_message_fails_independent_verification(sct_trace, tmp_path):
    """The check above can fail: one changed byte of the payload breaks the signature."""
    entries, keys = read_trace(sct_trace)
    entry = next(e for e in entries if e["action"].endswith(":Process"))
    root = etree.fromstring((sct_trace / entry["file"]).read_bytes())
    decrypt_all(root, keys)
    body = root.find("{http://www.w3.org/2003/05/soap-envelope}Body")
    leaf = next(el for el in body.iter() if el.text and el.text.strip())
    leaf.text = leaf.text[:-1] + ("A" if leaf.text[-1] != "A" else "B")
    args = signing_key_args(root, keys, sct_trace / "certs", entry["from"], tmp_path)
    result = verify_signature(shutil.which("xmlsec1"), etree.tostring(root), args, tmp_path)
    assert result.returncode != 0


def test_derived_keys_in_the_key_log_follow_from_the_logged_sct_secret(sct_trace):
    entries, _ = read_trace(sct_trace)
    log = [json.loads(line) for line in (sct_trace / "keylog.jsonl").read_text().splitlines()]
    secrets = {r["id"]: base64.b64decode(r["key"]) for r in log if r["kind"] == "sct-secret"}
    derived = {r["id"]: base64.b64decode(r["key"]) for r in log if r["kind"] == "derived-key"}
    assert secrets and derived
    checked = 0
    for entry in entries:
        root = etree.fromstring((sct_trace / entry["file"]).read_bytes())
        for token in root.iter(f"{{{SC}}}DerivedKeyToken"):
            reference = token.find(f"{{{WSSE}}}SecurityTokenReference/{{{WSSE}}}Reference")
            secret = secrets[reference.get("URI")]
            nonce = base64.b64decode(token.findtext(f"{{{SC}}}Nonce"))
            length = int(token.findtext(f"{{{SC}}}Length") or 32)
            offset = int(token.findtext(f"{{{SC}}}Offset") or 0)
            label = token.findtext(f"{{{SC}}}Label")  # WS-SC 1.3 section 7: else the default
            label = LABEL if label is None else label.encode()
            expected = stdlib_p_sha1(secret, label + nonce, offset + length)[offset:]
            assert derived[token.get(f"{{{WSU}}}Id")] == expected
            checked += 1
    assert checked >= 2 * 2  # a signing and an encryption key per application message
