"""The attacker's tools and the variants of the session-strategy attack tests
(``test_reflection.py``, ``test_context_state.py``)."""

from __future__ import annotations

from lxml import etree

from sim.protocol.api import AppDone, Send
from sim.protocol.harness import Harness
from sim.wire import ns

CLIENT, PROVIDER = "client-0", "provider-0"
SESSION_STRATEGIES = ("sct", "sct-tlsnego", "ut-derived", "x509")
#: Variants whose messages differ in the parts these attacks touch.
VARIANTS = [
    ("sct", {}),
    ("sct", {"derived_keys": False}),
    ("sct-tlsnego", {}),
    ("sct-tlsnego", {"tlsnego": False}),
    ("ut-derived", {}),
    ("x509", {}),
]
#: Ledger entries of work a receiver must not do before the message proved anything.
COSTLY = {
    "rsa_sign",
    "rsa_verify",
    "rsa_encrypt",
    "rsa_decrypt",
    "rsa_keygen",
    "hmac",
    "digest",
    "c14n",
    "p_sha1",
    "ut_derive",
    "aes_decrypt",
    "aes_encrypt",
    "tls_handshake",
}
WSA_RELATES_TO = ns.qname(ns.WSA, "RelatesTo")
WSA_ACTION = ns.qname(ns.WSA, "Action")
WSA_MESSAGE_ID = ns.qname(ns.WSA, "MessageID")
SECURITY = ns.qname(ns.WSSE, "Security")


def variant_id(variant) -> str:
    name, options = variant
    return name + "".join(f"-{k}={v}" for k, v in options.items())


# --- the attacker's tools -------------------------------------------------------------------


def parse_tree(data: bytes):
    return etree.fromstring(data)


def serialized(root) -> bytes:
    return etree.tostring(root)


def header_of(root, tag):
    return next(child for child in root[0] if child.tag == tag)


def message_id_of(data: bytes) -> str:
    return header_of(parse_tree(data), WSA_MESSAGE_ID).text


def with_relates_to(data: bytes, message_id: str) -> bytes:
    root = parse_tree(data)
    header_of(root, WSA_RELATES_TO).text = message_id
    return serialized(root)


def split_action_with_comment(data: bytes, at: int) -> bytes:
    """wsa:Action's text cut by an empty comment at ``at``: exclusive C14N drops it, so the
    signature over the Action still verifies, and a reader taking the first text node sees
    only the part before it."""
    root = parse_tree(data)
    action = header_of(root, WSA_ACTION)
    text = action.text
    action.text = text[:at]
    comment = etree.Comment("")
    comment.tail = text[at:]
    action.append(comment)
    return serialized(root)


def ops_of(step) -> set[str]:
    return {op for op, _ in step.ops}


def fault_of(step) -> Send:
    [reply] = step.events
    assert isinstance(reply, Send) and reply.fault, step.events
    return reply


def live_session(make, name, options=None, times=(0.0,)):
    """A harness whose session has sent an application message at each of ``times``."""
    harness = Harness(make(name, options))
    for t in times:
        assert harness.request(b"warm-up", t).results[-1].ok
    return harness


def sent_of(step) -> Send:
    [send] = [e for e in step.events if isinstance(e, Send)]
    return send


def result_of(step) -> AppDone:
    [result] = [e for e in step.events if isinstance(e, AppDone)]
    return result
