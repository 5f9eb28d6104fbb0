"""``wssim trace`` output lets independent tools decrypt and verify every message."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
import xmlsec
from lxml import etree

from sim.wire import ns
from tests.wire.helpers import ID_ATTRS

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def wssim(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sim.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def _trace(tmp_path: Path, strategy: str) -> Path:
    out = tmp_path / strategy
    result = wssim(
        "trace",
        str(SCENARIOS / f"{strategy}.toml"),
        "--strategy",
        strategy,
        "--sessions",
        "1",
        "--out",
        str(out),
        "--set",
        "workload.messages_per_session=2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    return out


def _keys(out: Path) -> dict[str, bytes]:
    return {
        entry["id"]: base64.b64decode(entry["key"])
        for entry in map(json.loads, (out / "keylog.jsonl").read_text().splitlines())
    }


def _decrypt_all(root, key_for) -> None:
    """Decrypt every EncryptedData in place with python-xmlsec and the logged keys."""
    for data in list(root.iter(ns.qname(ns.XENC, "EncryptedData"))):
        key = key_for(data)
        ctx = xmlsec.EncryptionContext()
        ctx.key = xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataAes, key)
        ctx.decrypt(data)


def _verify(tool, tmp: Path, root, *key_args) -> subprocess.CompletedProcess:
    path = tmp / "decrypted.xml"
    path.write_bytes(etree.tostring(root))
    args = [tool, "--verify"]
    for attr, node in ID_ATTRS:
        args += [f"--id-attr:{attr}", node]
    return subprocess.run([*args, *key_args, str(path)], capture_output=True, text=True)


def test_x509_trace_decrypts_and_verifies_with_xmlsec(tmp_path, xmlsec1):
    out = _trace(tmp_path, "x509")
    keys = _keys(out)
    entries = [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()]
    assert [e["from"].split("-")[0] for e in entries[:2]] == ["client", "provider"]
    for entry in entries:
        root = etree.fromstring((out / entry["file"]).read_bytes())
        ek = root.find(f".//{{{ns.XENC}}}EncryptedKey")
        _decrypt_all(root, lambda data, ek=ek: keys[ek.get("Id")])
        assert root.find(f".//{{{ns.APP}}}Payload") is not None
        cert = out / "certs" / f"{entry['from']}.pem"
        result = _verify(xmlsec1, tmp_path, root, "--pubkey-cert-pem", str(cert))
        assert result.returncode == 0, result.stderr


def test_sct_trace_decrypts_and_verifies_hmac_with_derived_keys(tmp_path, xmlsec1):
    out = _trace(tmp_path, "sct")
    keys = _keys(out)
    assert any(k.startswith("urn:uuid:") for k in keys)  # the SCT secret is logged too
    entries = [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()]
    app = [e for e in entries if e["action"].endswith("Process")]
    assert app
    for entry in app:
        root = etree.fromstring((out / entry["file"]).read_bytes())

        def key_for(data):
            reference = data.find(f".//{{{ns.WSSE}}}Reference")
            return keys[reference.get("URI")[1:]]

        _decrypt_all(root, key_for)
        signature = root.find(f".//{{{ns.DS}}}Signature")
        dkt_id = signature.find(f".//{{{ns.WSSE}}}Reference").get("URI")[1:]
        key_file = tmp_path / "hmac.key"
        key_file.write_bytes(keys[dkt_id])
        result = _verify(xmlsec1, tmp_path, root, "--hmackey", str(key_file))
        assert result.returncode == 0, result.stderr


def test_trace_writes_certificates_named_as_in_the_trace(tmp_path):
    out = _trace(tmp_path, "sender-vouches")
    entries = [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()]
    nodes = {e["from"] for e in entries} | {e["to"] for e in entries}
    assert {p.stem for p in (out / "certs").glob("*.pem")} == nodes
    assert (out / "sequence.png").stat().st_size > 1000


@pytest.mark.parametrize("strategy", ["bearer", "sct-tlsnego"])
def test_trace_of_other_strategies_runs(tmp_path, strategy):
    out = _trace(tmp_path, strategy)
    assert len((out / "trace.jsonl").read_text().splitlines()) >= 4
