"""Per-message cost of real protection: build+sign+encrypt and parse+verify+decrypt, for a
derived-key (SCT) protected message and an X.509 protected one.

Run: ``python -m pytest benchmarks/bench_wire.py --benchmark-only``. The ratio table shows
what a SecureConversation message costs against an X.509 one (the baseline), and what
reading an identity from the key store costs (every worker process reads the ones it uses)
against loading its key with pyca's RSA consistency checks."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import serialization

from benchmarks.messages import KEYS, build_sct, build_x509, read_sct, read_x509
from sim.wire import keys

PAYLOAD = os.urandom(1024)


@pytest.mark.benchmark(group="wire: build + sign + encrypt")
def test_build_x509(benchmark):
    benchmark.name = "X.509 (RSA-SHA1 2048 + EncryptedKey)[baseline]"
    benchmark(build_x509, PAYLOAD)


@pytest.mark.benchmark(group="wire: build + sign + encrypt")
def test_build_sct(benchmark):
    benchmark.name = "SCT derived keys (HMAC-SHA1 + AES-256-CBC)"
    benchmark(build_sct, PAYLOAD)


@pytest.mark.benchmark(group="wire: parse + verify + decrypt")
def test_read_x509(benchmark):
    benchmark.name = "X.509 (RSA-SHA1 2048 + EncryptedKey)[baseline]"
    message = build_x509(PAYLOAD)
    assert benchmark(read_x509, message) == PAYLOAD


@pytest.mark.benchmark(group="wire: parse + verify + decrypt")
def test_read_sct(benchmark):
    benchmark.name = "SCT derived keys (HMAC-SHA1 + AES-256-CBC)"
    message = build_sct(PAYLOAD)
    assert benchmark(read_sct, message) == PAYLOAD


@pytest.mark.benchmark(group="wire: an identity read from the key store (RSA 2048)")
def test_load_key_with_consistency_checks(benchmark):
    benchmark.name = "private key loaded with RSA consistency checks[baseline]"
    data = (KEYS.directory / "client-0-2048.key.pem").read_bytes()
    benchmark.pedantic(serialization.load_pem_private_key, (data, None), rounds=5, iterations=1)


@pytest.mark.benchmark(group="wire: an identity read from the key store (RSA 2048)")
def test_load_identity_from_the_store(benchmark):
    """The store's whole path: key and certificate read, the certificate checked to certify
    the key and to be the CA's (an RSA verify)."""
    benchmark.name = "KeyStore identity (key, certificate, CA checked)"
    benchmark.extra_info["target_ratio"] = 10

    def load():
        keys._LOADED.clear()  # read from disk each time
        return KEYS._load_or_make("client-0", keys.DEFAULT_BITS, issuer=KEYS.ca)

    assert benchmark(load).certificate == KEYS.identity("client-0").certificate
