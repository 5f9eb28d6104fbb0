"""Crypto kernel speed against straightforward baselines, measured in the same run.

Run: ``python -m pytest benchmarks/bench_crypto.py --benchmark-only``. Targets (issue 2):
derive_key x8 vs stdlib-hmac P_SHA-1; ut_derive_key(1000) x5 vs a hashlib loop;
c14n_digest x3 vs lxml C14N + hashlib; exc_c14n x2 vs lxml. Issue 15: hmac_sha1 (a
SignedInfo's HMAC) x2 vs ``hmac.digest``; Kerberos AES string-to-key x5 vs minikerberos'.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
from lxml import etree
from minikerberos.protocol import encryption as minikerberos

import sim.crypto as crypto
from sim.crypto import krb5
from tests.crypto.oracles import stdlib_p_sha1

SECRET = bytes(range(32))
NONCE = bytes(range(100, 116))
NONCES = [i.to_bytes(16, "big") for i in range(64)]
MESSAGE = etree.fromstring(
    (Path(__file__).parent.parent / "tests" / "data" / "crypto" / "soap_message.xml").read_bytes()
)
BODY = MESSAGE[1]
TIMESTAMP = MESSAGE[0][0]


def hashlib_ut_key(password: bytes, salt: bytes, iterations: int) -> bytes:
    key = hashlib.sha1(password + salt).digest()
    for _ in range(iterations - 1):
        key = hashlib.sha1(key).digest()
    return key


def lxml_digest(el) -> bytes:
    return hashlib.sha1(etree.tostring(el, method="c14n", exclusive=True)).digest()


@pytest.mark.benchmark(group="derive_key 32 B")
def test_derive_key_baseline(benchmark):
    benchmark.name = "stdlib hmac P_SHA1[baseline]"
    benchmark(stdlib_p_sha1, SECRET, crypto.DEFAULT_LABEL + NONCE, 32)


@pytest.mark.benchmark(group="derive_key 32 B")
def test_derive_key_ours(benchmark):
    benchmark.name = f"sim.crypto.derive_key ({crypto.BACKEND})"
    benchmark.extra_info["target_ratio"] = 8
    assert benchmark(crypto.derive_key, SECRET, nonce=NONCE) == stdlib_p_sha1(
        SECRET, crypto.DEFAULT_LABEL + NONCE, 32
    )


@pytest.mark.benchmark(group="derive_key 32 B")
def test_derive_keys_batch_per_key(benchmark):
    benchmark.name = "sim.crypto.derive_keys x64 / 64"

    def per_key():
        crypto.derive_keys(SECRET, NONCES)

    # report per-key time: run the batch, the summary divides by the batch size below
    benchmark.extra_info["batch"] = len(NONCES)
    benchmark.pedantic(per_key, rounds=2000, iterations=1)
    for stat in ("min", "max", "mean", "median"):
        setattr(benchmark.stats.stats, stat, getattr(benchmark.stats.stats, stat) / len(NONCES))


@pytest.mark.benchmark(group="ut_derive_key 1000 iterations")
def test_ut_key_baseline(benchmark):
    benchmark.name = "hashlib loop[baseline]"
    benchmark(hashlib_ut_key, b"password", NONCE, 1000)


@pytest.mark.benchmark(group="ut_derive_key 1000 iterations")
def test_ut_key_ours(benchmark):
    benchmark.name = f"sim.crypto.ut_derive_key ({crypto.BACKEND})"
    benchmark.extra_info["target_ratio"] = 5
    assert benchmark(crypto.ut_derive_key, b"password", NONCE, 1000) == hashlib_ut_key(
        b"password", NONCE, 1000
    )


@pytest.mark.parametrize(("part", "element"), [("Body 2.9 KB", BODY), ("Timestamp", TIMESTAMP)])
def test_c14n_digest_baseline(benchmark, part, element):
    benchmark.group = f"c14n_digest {part}"
    benchmark.name = "lxml c14n + hashlib[baseline]"
    benchmark(lxml_digest, element)


@pytest.mark.parametrize(("part", "element"), [("Body 2.9 KB", BODY), ("Timestamp", TIMESTAMP)])
def test_c14n_digest_ours(benchmark, part, element):
    benchmark.group = f"c14n_digest {part}"
    benchmark.name = f"sim.crypto.c14n_digest ({crypto.BACKEND})"
    benchmark.extra_info["target_ratio"] = 3
    assert benchmark(crypto.c14n_digest, element) == lxml_digest(element)


@pytest.mark.parametrize(("part", "element"), [("Body 2.9 KB", BODY), ("Timestamp", TIMESTAMP)])
def test_exc_c14n_baseline(benchmark, part, element):
    benchmark.group = f"exc_c14n {part}"
    benchmark.name = "lxml tostring c14n[baseline]"
    benchmark(etree.tostring, element, method="c14n", exclusive=True)


@pytest.mark.parametrize(("part", "element"), [("Body 2.9 KB", BODY), ("Timestamp", TIMESTAMP)])
def test_exc_c14n_ours(benchmark, part, element):
    benchmark.group = f"exc_c14n {part}"
    benchmark.name = f"sim.crypto.exc_c14n ({crypto.BACKEND})"
    benchmark.extra_info["target_ratio"] = 2
    assert benchmark(crypto.exc_c14n, element) == etree.tostring(
        element, method="c14n", exclusive=True
    )


SIGNED_INFO = bytes(range(256)) * 4  # about a SignedInfo of three references (1 KB)
SIGNING_KEY = bytes(range(24))  # a derived signing key (Basic256: 24 bytes)


@pytest.mark.benchmark(group="hmac_sha1 1 KB")
def test_hmac_sha1_baseline(benchmark):
    benchmark.name = "stdlib hmac.digest[baseline]"
    benchmark(hmac.digest, SIGNING_KEY, SIGNED_INFO, "sha1")


@pytest.mark.benchmark(group="hmac_sha1 1 KB")
def test_hmac_sha1_ours(benchmark):
    benchmark.name = f"sim.crypto.hmac_sha1 ({crypto.BACKEND})"
    benchmark.extra_info["target_ratio"] = 2
    assert benchmark(crypto.hmac_sha1, SIGNING_KEY, SIGNED_INFO) == hmac.digest(
        SIGNING_KEY, SIGNED_INFO, "sha1"
    )


AES256 = krb5.Enctype.AES256_CTS_HMAC_SHA1_96


@pytest.mark.benchmark(group="kerberos string-to-key AES256 4096 iterations")
def test_string_to_key_baseline(benchmark):
    benchmark.name = "minikerberos (PBKDF2 in Python)[baseline]"
    benchmark.pedantic(
        minikerberos.string_to_key,
        (int(AES256), b"password-of-user-001", b"WSSIM.TESTuser-001", b"\x00\x00\x10\x00"),
        rounds=5,
        iterations=1,
    )


@pytest.mark.benchmark(group="kerberos string-to-key AES256 4096 iterations")
def test_string_to_key_ours(benchmark):
    benchmark.name = "sim.crypto.krb5.string_to_key (OpenSSL PBKDF2)"
    benchmark.extra_info["target_ratio"] = 5
    key = benchmark(krb5.string_to_key, AES256, "password-of-user-001", "WSSIM.TESTuser-001")
    assert (
        key.value
        == minikerberos.string_to_key(
            int(AES256), b"password-of-user-001", b"WSSIM.TESTuser-001", b"\x00\x00\x10\x00"
        ).contents
    )
