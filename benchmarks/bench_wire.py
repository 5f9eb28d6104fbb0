"""Per-message cost of real protection: build+sign+encrypt and parse+verify+decrypt, for a
derived-key (SCT) protected message and an X.509 protected one.

Run: ``python -m pytest benchmarks/bench_wire.py --benchmark-only``. The ratio table shows
what a SecureConversation message costs against an X.509 one (the baseline)."""

from __future__ import annotations

import os

import pytest

from benchmarks.messages import build_sct, build_x509, read_sct, read_x509

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
