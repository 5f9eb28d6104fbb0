"""Apache WSS4J 1.6 (Debian's libwss4j-java, the receiver inside CXF) accepts every message
our senders write, given only what a real receiver holds: its own private key, the test CA
as sole trust anchor, the users' passwords, and source secrets of keylog.jsonl (never a
derived key): the SecurityContext secrets, and to the sender of an EncryptedKey the key it
made; Timestamps judged by WSS4J's rules at the trace's simulated time.
All messages of all strategies go through one JVM. Negative controls: a message whose signed
Timestamp was extended, or whose encrypted Body was changed, and an untouched message read
after its Expires are refused."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone

import pytest
from lxml import etree

from tests.interop.conftest import TRACES, Trace
from tests.interop.messages import (
    XENC,
    encrypted_parts,
    expires_s,
    is_signed,
    keyed_by_assertion,
    security_header,
    with_later_expiry,
)
from tests.interop.wss4j import Batch, Verdict

EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
#: Debian builds WSS4J without OpenSAML: a message whose own keys an assertion names (the
#: holder-of-key proof key) cannot be read by it; its assertion is checked by OpenSAML's
#: samlsign instead (test_saml_independent.py)
SAML_KEYED = {"hok-symmetric", "hok-public"}


def _users(trace: Trace) -> dict[str, str]:
    """The password store: the users of the trace's client nodes, from the user database."""
    from sim.protocol import build_strategy

    setup = build_strategy(trace.strategy, key_dir=trace.key_dir).setup
    clients = {e["from"] for e in trace.entries} | {e["to"] for e in trace.entries}
    return dict(setup.username(node) for node in sorted(clients) if node.startswith("client"))


def _receiver_keys(trace: Trace) -> dict[bytes, str]:
    return {
        p.read_bytes(): p.name.removesuffix(".pem")
        for p in trace.key_dir.glob("*-[0-9]*.pem")
        if not p.name.endswith(".key.pem")
    }


@pytest.fixture(scope="module")
def verdicts(traces, wss4j_classes, tmp_path_factory) -> dict[str, Verdict]:
    """WSS4J's verdict on every message (label ``<trace>/<seq>``) and on the controls
    (``<trace>/<seq>/extended``, ``/body``, ``/late``)."""
    work = tmp_path_factory.mktemp("wss4j")
    batch = Batch()
    some = next(iter(traces.values()))
    batch.trust(some.key_dir / "wssim-test-ca-2048.pem")
    keys = _receiver_keys(some)
    for name in sorted(set(keys.values())):
        batch.key(name, some.key_dir / f"{name}.key.pem", some.key_dir / f"{name}.pem")
    users: dict[str, str] = {}
    for trace in traces.values():
        users.update(_users(trace))
        for record in trace.keylog:
            if record["kind"] == "sct-secret":  # a source secret; derived keys stay out
                batch.secret(record["id"], base64.b64decode(record["key"]))
    for user, password in sorted(users.items()):
        batch.user(user, password)
    for identifier, key in _own_encrypted_keys(traces):
        batch.secret(identifier, key)
    for label, trace in traces.items():
        controlled = False
        for entry in trace.entries:
            path = trace.out / entry["file"]
            cert = trace.out / "certs" / f"{entry['to']}.pem"
            key = keys[cert.read_bytes()] if cert.exists() else None
            data = path.read_bytes()
            root = etree.fromstring(data)
            if keyed_by_assertion(root):
                continue
            batch.verify(f"{label}/{entry['seq']}", key, entry["t"], path)
            if not controlled and is_signed(root) and encrypted_parts(root):
                controlled = True
                extended = work / f"{label}-{entry['seq']}-extended.xml"
                extended.write_bytes(with_later_expiry(data))
                batch.verify(f"{label}/{entry['seq']}/extended", key, entry["t"], extended)
                body = work / f"{label}-{entry['seq']}-body.xml"
                body.write_bytes(_changed_body(data))
                batch.verify(f"{label}/{entry['seq']}/body", key, entry["t"], body)
                late = expires_s(data, EPOCH) + 1
                batch.verify(f"{label}/{entry['seq']}/late", key, late, path)
    return batch.run(wss4j_classes, work)


def _own_encrypted_keys(traces) -> list[tuple[str, bytes]]:
    """What a sender remembers of the EncryptedKeys it sent (source secrets of the key log),
    named as WSS4J asks for them: by EncryptedKeySHA1, the SHA-1 of the key's CipherValue
    (WSS 1.1 §7.3), with which a response names the request's key (sct-tlsnego without TLS
    negotiation). A receiver's own EncryptedKeys WSS4J decrypts with its private key."""
    found = []
    for trace in traces.values():
        session_keys = {
            r["id"]: base64.b64decode(r["key"]) for r in trace.keylog if r["kind"] == "session-key"
        }
        for entry in trace.entries:
            root = etree.fromstring((trace.out / entry["file"]).read_bytes())
            for key in root.iter(f"{{{XENC}}}EncryptedKey"):
                if key.get("Id") in session_keys:
                    cipher = base64.b64decode(key.findtext(f".//{{{XENC}}}CipherValue"))
                    sha1 = base64.b64encode(hashlib.sha1(cipher).digest()).decode()
                    found.append((sha1, session_keys[key.get("Id")]))
    return found


def _changed_body(data: bytes) -> bytes:
    """One bit of the Body's last CipherValue flipped (base64 stays valid)."""
    index = data.rindex(b"</xenc:CipherValue>") - 10
    flipped = b"B" if data[index : index + 1] != b"B" else b"C"
    return data[:index] + flipped + data[index + 1 :]


@pytest.mark.parametrize("label", TRACES)
def test_wss4j_accepts_every_message_we_write(traces, verdicts, label):
    """Each message is accepted, and WSS4J did the work: a signed message's Body and
    Timestamp are among what it verified, every EncryptedData was decrypted by it."""
    trace = traces[label]
    checked = 0
    for entry in trace.entries:
        root = etree.fromstring((trace.out / entry["file"]).read_bytes())
        verdict = verdicts.get(f"{label}/{entry['seq']}")
        if verdict is None:
            assert trace.strategy in SAML_KEYED, f"{entry['file']} was not checked"
            continue
        assert verdict.accepted, (entry["file"], verdict)
        checked += 1
        if security_header(root) is None:
            # the TLS negotiation legs of sct-tlsnego: TLS records inside the RST/RSTR
            assert label.startswith("sct-tlsnego") and "no-security-header" in verdict.detail
            continue
        if is_signed(root):
            assert {"Body", "Timestamp"} <= set(verdict.detail.get("signed", ())), verdict
        decrypted = [n for n in verdict.detail.get("decrypted", ()) if n]
        assert len(decrypted) == encrypted_parts(root), (entry["file"], verdict)
    assert checked >= (1 if trace.strategy in SAML_KEYED else 2)


def test_wss4j_refuses_tampered_and_late_messages(verdicts):
    """The negative controls: the same check refuses a changed signed element and a
    message read after its Timestamp expired (at the simulated time, not the wall clock)."""
    controls = {label: v for label, v in verdicts.items() if label.count("/") == 2}
    kinds = {label.rsplit("/", 1)[1] for label in controls}
    assert kinds == {"extended", "body", "late"}
    assert len(controls) >= 3 * 6, sorted(controls)
    for label, verdict in controls.items():
        assert not verdict.accepted, (label, verdict)
        why = verdict.detail["why"][0].lower()
        if label.endswith("/late"):
            assert "expired" in why, (label, why)
        else:  # refused by the signature check, not by anything before it
            assert "signature or decryption was invalid" in why, (label, why)
