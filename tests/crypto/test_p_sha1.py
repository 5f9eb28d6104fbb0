"""P_SHA-1, derived keys and computed keys against OpenSSL and between backends."""

from __future__ import annotations

import hmac
import random
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim.crypto as crypto
from sim.crypto import _reference
from tests.crypto.kernels import BACKENDS
from tests.crypto.oracles import stdlib_p_sha1


@pytest.fixture(autouse=True, scope="module")
def openssl_command():
    """The openssl command is the independent oracle (.ci/run installs it)."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is required: it is the independent P_SHA-1 oracle")


def openssl_p_sha1(secret: bytes, seed: bytes, length: int) -> bytes:
    """P_SHA-1 computed by OpenSSL: its TLS1-PRF with digest SHA1 is P_SHA-1 alone."""
    out = subprocess.run(
        [
            "openssl",
            "kdf",
            "-keylen",
            str(length),
            "-kdfopt",
            "digest:SHA1",
            "-kdfopt",
            f"hexsecret:{secret.hex()}",
            "-kdfopt",
            f"hexseed:{seed.hex()}",
            "TLS1-PRF",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return bytes.fromhex(out.strip().replace(":", ""))


def test_p_sha1_matches_openssl_tls1_prf_on_random_inputs():
    rng = random.Random(20261124)
    for case in range(40):
        # secrets up to 150 bytes (longer than the 64-byte HMAC block), seeds, lengths, offsets
        secret = rng.randbytes(rng.choice([1, 16, 20, 32, 63, 64, 65, 100, 150]))
        seed = rng.randbytes(rng.randint(1, 120))
        length = rng.randint(1, 300)
        offset = rng.choice([0, 0, 1, 19, 20, 21, 32, 100])
        expected = openssl_p_sha1(secret, seed, offset + length)[offset:]
        assert crypto.p_sha1(secret, seed, length, offset) == expected, case
        assert _reference.p_sha1(secret, seed, length, offset) == expected, case


def test_derived_key_is_p_sha1_of_label_and_nonce_per_openssl():
    secret, nonce = bytes(range(32)), bytes(range(100, 116))
    expected = openssl_p_sha1(secret, crypto.DEFAULT_LABEL + nonce, 64)
    assert crypto.derive_key(secret, nonce=nonce) == expected[:32]
    assert crypto.derive_key(secret, nonce=nonce, offset=32) == expected[32:]
    assert crypto.derive_key(secret, nonce=nonce, generation=1) == expected[32:]
    assert crypto.derive_key(secret, nonce=nonce, length=16, generation=2) == expected[32:48]


def test_computed_key_is_p_sha1_keyed_by_requestor_entropy():
    requestor, issuer = bytes(range(32)), bytes(range(32, 64))
    assert crypto.computed_key(requestor, issuer, 256) == openssl_p_sha1(requestor, issuer, 32)


@settings(max_examples=200, deadline=None)
@given(
    secret=st.binary(min_size=0, max_size=200),
    seed=st.binary(min_size=0, max_size=300),
    length=st.integers(1, 1100),
    offset=st.integers(0, 100),
)
def test_kernel_and_reference_p_sha1_agree(secret, seed, length, offset):
    expected = stdlib_p_sha1(secret, seed, offset + length)[offset:]
    for backend in BACKENDS:
        assert backend.p_sha1(secret, seed, length, offset) == expected


@settings(max_examples=50, deadline=None)
@given(
    secret=st.binary(min_size=1, max_size=80),
    nonces=st.lists(st.binary(min_size=0, max_size=40), max_size=12),
    length=st.integers(1, 64),
)
def test_batch_derivation_equals_one_key_at_a_time(secret, nonces, length):
    batch = crypto.derive_keys(secret, nonces, length=length)
    assert batch == [crypto.derive_key(secret, nonce=n, length=length) for n in nonces]
    assert batch == _reference.derive_keys(
        secret, [crypto.DEFAULT_LABEL + n for n in nonces], length, 0
    )


def test_derived_keys_of_one_kilobyte_and_custom_label():
    key = crypto.derive_key(b"s" * 32, nonce=b"n" * 16, length=1024, label=b"custom")
    assert key == stdlib_p_sha1(b"s" * 32, b"custom" + b"n" * 16, 1024)


def test_key_schedule_cache_keeps_secrets_apart():
    nonce = b"\x00" * 16
    first = crypto.derive_key(b"A" * 32, nonce=nonce)
    second = crypto.derive_key(b"B" * 32, nonce=nonce)
    assert first != second
    assert first == stdlib_p_sha1(b"A" * 32, crypto.DEFAULT_LABEL + nonce, 32)
    # a secret seen before still derives from its own schedule after many others
    for i in range(1500):
        crypto.derive_key(i.to_bytes(4, "big"), nonce=nonce)
    assert crypto.derive_key(b"A" * 32, nonce=nonce) == first


@pytest.mark.parametrize("impl", BACKENDS)
@settings(max_examples=200, deadline=None)
@given(key=st.binary(max_size=200), data=st.binary(max_size=3000))
def test_hmac_sha1_equals_the_standard_library(impl, key, data):
    """HMAC-SHA1 from the kernel's cached key schedule (keys longer than a block hashed
    first, messages across block and padding boundaries) is RFC 2104's, in both backends."""
    assert impl.hmac_sha1(key, data) == hmac.digest(key, data, "sha1")


def test_hmac_sha1_reuses_a_cached_schedule_correctly():
    """The same key signing different data, and different keys of one length, never mix."""
    keys = [bytes([i]) * 24 for i in range(3)]
    for data in (b"", b"a" * 55, b"b" * 64, b"c" * 1000):
        for key in keys:
            assert crypto.hmac_sha1(key, data) == hmac.digest(key, data, "sha1")
    with pytest.raises(TypeError):
        crypto.hmac_sha1("key", b"data")
