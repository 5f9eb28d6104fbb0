"""A request may carry DerivedKeyTokens without wsc:Label (WS-SC's default label, as WSS4J
writes them), so a reply of ours stripped of its Labels passes the key-direction check as a
request. It is still refused: the Label is an input of the derivation, so the receiver
derives other keys than the ones the reply was protected with."""

from __future__ import annotations

import pytest

from sim.errors import SecurityFault
from sim.protocol import build_strategy
from sim.protocol.harness import Harness
from sim.protocol.unprotect import unprotect_symmetric
from sim.wire import ns, sc, soap
from sim.wire.checks import ReplayCache
from sim.wire.ledger import Ledger
from tests.attacks.session_tools import CLIENT, parse_tree, serialized


class KeyLog:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, bytes]] = []

    def log(self, kind: str, key_id: str, key: bytes) -> None:
        self.records.append((kind, key_id, key))


def _app_reply_and_secret(key_dir) -> tuple[bytes, bytes, float]:
    keylog = KeyLog()
    harness = Harness(build_strategy("sct", keylog=keylog, key_dir=key_dir))
    harness.request(b"bootstrap", 0.0)
    outcome = harness.request(b"payload", 1.0)
    [reply] = [d for d in outcome.deliveries if d.receiver == CLIENT]
    [secret] = {k for kind, _, k in keylog.records if kind == "sct-secret"}
    return reply.send.data, secret, reply.t


def _open_as_request(data: bytes, secret: bytes, now: float):
    return unprotect_symmetric(
        soap.read_envelope(data),
        secret_for=lambda reference: secret,
        now=now,
        ledger=Ledger(),
        replay=ReplayCache(),
        direction=sc.Direction.REQUEST,
    )


def test_a_reply_with_its_labels_removed_is_refused_as_a_request(key_dir):
    data, secret, now = _app_reply_and_secret(key_dir)
    # the control: as sent, the reply is refused as a request by its Label alone
    with pytest.raises(SecurityFault) as as_sent:
        _open_as_request(data, secret, now)
    assert as_sent.value.check == "key-direction"

    root = parse_tree(data)
    labels = list(root.iter(ns.qname(ns.WSC, "Label")))
    assert len(labels) == 2  # the signing and the encrypting key
    for label in labels:
        label.getparent().remove(label)
    with pytest.raises(SecurityFault) as stripped:
        _open_as_request(serialized(root), secret, now)
    # past the direction check, the default label derives keys that open nothing
    assert stripped.value.check == "decryption", stripped.value.check
