"""The messages the wire benchmarks build and read: an application request protected with
keys derived from a security context (SCT), and one protected with X.509 (the baseline)."""

from __future__ import annotations

import os

from sim.protocol import protection as p
from sim.protocol.strategies.sct import context_reference_text
from sim.wire import soap
from sim.wire.checks import ReplayCache
from sim.wire.keys import KeyStore
from sim.wire.ledger import Ledger

KEYS = KeyStore()  # the private per-user key cache
CLIENT, PROVIDER = KEYS.identity("client-0"), KEYS.identity("provider")
SECRET, CONTEXT = os.urandom(32), "urn:uuid:00000000-0000-4000-8000-000000000000"


def envelope(payload: bytes) -> soap.Envelope:
    """An application request carrying ``payload``, not protected yet."""
    built = soap.new_envelope()
    soap.add_addressing(built, action="urn:wssim:app:Process", to="https://provider/")
    p.put_payload(built, payload)
    return built


def build_x509(payload: bytes, now: float = 1.0) -> bytes:
    return p.protect_asymmetric(
        envelope(payload), sender=CLIENT, recipient=PROVIDER, now=now, ledger=Ledger()
    )


def read_x509(data: bytes) -> bytes:
    received = soap.read_envelope(data)
    p.unprotect_asymmetric(
        received, receiver=PROVIDER, trust=KEYS, now=1.0, ledger=Ledger(), replay=ReplayCache()
    )
    return p.get_payload(received)


def build_sct(payload: bytes, now: float = 1.0) -> bytes:
    return p.protect_symmetric(
        envelope(payload),
        secret=SECRET,
        source_reference=lambda: context_reference_text(CONTEXT),
        now=now,
        ledger=Ledger(),
    )


def read_sct(data: bytes) -> bytes:
    received = soap.read_envelope(data)
    p.unprotect_symmetric(
        received, secret_for=lambda ref: SECRET, now=1.0, ledger=Ledger(), replay=ReplayCache()
    )
    return p.get_payload(received)
