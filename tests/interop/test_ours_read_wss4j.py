"""The reverse direction: messages Apache WSS4J 1.6 writes — X.509 signature and encryption,
DerivedKeyTokens from a SecurityContextToken, DerivedKeyTokens from a UsernameToken-derived
key — are accepted by our receivers. WSS4J secures a plain request we build; our provider
engines read it as they read our own clients' messages. All messages in one JVM."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from sim.protocol import build_strategy
from sim.protocol import protection as p
from sim.protocol.base import APP_ACTION, PROVIDER_ADDRESS
from sim.protocol.harness import Harness
from sim.wire import soap
from tests.interop.wss4j import EPOCH_MS, run_java

NOW = 100.0


class KeyLog:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, bytes]] = []

    def log(self, kind: str, key_id: str, key: bytes) -> None:
        self.records.append((kind, key_id, key))


def _plain_request(path: Path, payload: bytes) -> Path:
    envelope = soap.new_envelope()
    soap.add_addressing(envelope, action=APP_ACTION, to=PROVIDER_ADDRESS)
    p.put_payload(envelope, payload)
    path.write_bytes(envelope.to_bytes())
    return path


def _pem(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.fixture(scope="module")
def written(tmp_path_factory, wss4j_classes):
    """Three requests secured by WSS4J, with the provider engines that are to read them."""
    work = tmp_path_factory.mktemp("wss4j-writes")
    keys = work / "keys"
    at = str(EPOCH_MS + round(NOW * 1000))
    lines, providers = [], {}

    x509 = build_strategy("x509", key_dir=keys)
    _, client = x509.setup.client_identity("client-0")
    key_pem = client.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    lines.append(
        [
            "x509",
            _plain_request(work / "x509-in.xml", b"x509 from wss4j"),
            work / "x509.xml",
            at,
            _pem(work / "client.key.pem", key_pem),
            _pem(work / "client.pem", client.pem),
            _pem(work / "provider.pem", x509.setup.identity("provider").pem),
        ]
    )
    providers["x509"] = x509.server("provider", "provider-0")

    ut = build_strategy("ut-derived", key_dir=keys)
    user, password = ut.setup.username("client-0")
    lines.append(
        [
            "ut",
            _plain_request(work / "ut-in.xml", b"ut from wss4j"),
            work / "ut.xml",
            at,
            user,
            password,
            "1000",
        ]
    )
    providers["ut"] = ut.server("provider", "provider-0")

    keylog = KeyLog()
    sct = build_strategy("sct", keylog=keylog, key_dir=keys)
    harness = Harness(sct)
    [done] = harness.request(b"bootstrap", 0.0).results  # the context is established
    assert done.ok, done
    [(sct_id, secret)] = {(i, k) for kind, i, k in keylog.records if kind == "sct-secret"}
    lines.append(
        [
            "sct",
            _plain_request(work / "sct-in.xml", b"sct from wss4j"),
            work / "sct.xml",
            at,
            sct_id,
            base64.b64encode(secret).decode(),
        ]
    )
    providers["sct"] = harness.servers["provider-0"]

    batch = work / "write-batch.tsv"
    batch.write_text("".join("\t".join(map(str, line)) + "\n" for line in lines))
    out = run_java(wss4j_classes, "Wss4jWrite", str(batch))
    assert out.count("WROTE") == len(lines), out
    return work, providers


@pytest.mark.parametrize("kind", ["x509", "ut", "sct"])
def test_our_provider_accepts_what_wss4j_writes(written, kind):
    work, providers = written
    data = (work / f"{kind}.xml").read_bytes()
    provider = providers[kind]
    step = provider.receive(data, sender="client-0", now=NOW)
    [reply] = step.events
    assert reply.fault is None, (provider.last_refusal, reply.data[:2000])
    assert provider.last_refusal is None


def test_our_provider_refuses_a_wss4j_message_with_a_changed_body(written):
    """The control: the same reading fails when WSS4J's encrypted Body was changed."""
    work, providers = written
    data = (work / "x509.xml").read_bytes()
    index = data.rindex(b"</xenc:CipherValue>") - 10
    changed = data[:index] + (b"B" if data[index : index + 1] != b"B" else b"C") + data[index + 1 :]
    [reply] = providers["x509"].receive(changed, sender="client-0", now=NOW).events
    assert reply.fault is not None
