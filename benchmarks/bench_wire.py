"""Per-message cost of real protection: build+sign+encrypt and parse+verify+decrypt, for a
derived-key (SCT) protected message and an X.509 protected one.

Run: ``python -m pytest benchmarks/bench_wire.py --benchmark-only``. The ratio table shows
what a SecureConversation message costs against an X.509 one (the baseline)."""

from __future__ import annotations

import os

import pytest

from sim.protocol import protection as p
from sim.protocol.strategies.sct import context_reference
from sim.wire import soap
from sim.wire.checks import ReplayCache
from sim.wire.keys import KeyStore
from sim.wire.ledger import Ledger

KEYS = KeyStore()  # the private per-user key cache
CLIENT, PROVIDER = KEYS.identity("client-0"), KEYS.identity("provider")
SECRET, CONTEXT = os.urandom(32), "urn:uuid:00000000-0000-4000-8000-000000000000"
PAYLOAD = os.urandom(1024)


def build_sct(now=1.0) -> bytes:
    envelope = soap.new_envelope()
    soap.add_addressing(envelope, action="urn:wssim:app:Process", to="https://provider/")
    p.put_payload(envelope, PAYLOAD)
    return p.protect_symmetric(
        envelope,
        secret=SECRET,
        source_reference=lambda: context_reference(CONTEXT),
        now=now,
        ledger=Ledger(),
    )


def read_sct(data: bytes) -> bytes:
    envelope = soap.read_envelope(data)
    p.unprotect_symmetric(
        envelope, secret_for=lambda ref: SECRET, now=1.0, ledger=Ledger(), replay=ReplayCache()
    )
    return p.get_payload(envelope)


def build_x509(now=1.0) -> bytes:
    envelope = soap.new_envelope()
    soap.add_addressing(envelope, action="urn:wssim:app:Process", to="https://provider/")
    p.put_payload(envelope, PAYLOAD)
    return p.protect_asymmetric(
        envelope, sender=CLIENT, recipient=PROVIDER, now=now, ledger=Ledger()
    )


def read_x509(data: bytes) -> bytes:
    envelope = soap.read_envelope(data)
    p.unprotect_asymmetric(
        envelope, receiver=PROVIDER, trust=KEYS, now=1.0, ledger=Ledger(), replay=ReplayCache()
    )
    return p.get_payload(envelope)


@pytest.mark.benchmark(group="wire: build + sign + encrypt")
def test_build_x509(benchmark):
    benchmark.name = "X.509 (RSA-SHA1 2048 + EncryptedKey)[baseline]"
    benchmark(build_x509)


@pytest.mark.benchmark(group="wire: build + sign + encrypt")
def test_build_sct(benchmark):
    benchmark.name = "SCT derived keys (HMAC-SHA1 + AES-256-CBC)"
    benchmark(build_sct)


@pytest.mark.benchmark(group="wire: parse + verify + decrypt")
def test_read_x509(benchmark):
    benchmark.name = "X.509 (RSA-SHA1 2048 + EncryptedKey)[baseline]"
    message = build_x509()
    assert benchmark(read_x509, message) == PAYLOAD


@pytest.mark.benchmark(group="wire: parse + verify + decrypt")
def test_read_sct(benchmark):
    benchmark.name = "SCT derived keys (HMAC-SHA1 + AES-256-CBC)"
    message = build_sct()
    assert benchmark(read_sct, message) == PAYLOAD
