"""UsernameToken Profile 1.1 key derivation: published vector, hashlib loop, both backends."""

from __future__ import annotations

import base64
import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

import sim.crypto as crypto
from tests.crypto.vectors import load


def hashlib_ut_key(password: bytes, salt: bytes, iterations: int) -> bytes:
    key = hashlib.sha1(password + salt).digest()
    for _ in range(iterations - 1):
        key = hashlib.sha1(key).digest()
    return key


def test_ut_key_matches_published_wss4j_vector(backend):
    for vector in load("ut_derive_key"):
        password = hashlib.sha1(vector["password_sha1_of"].encode()).digest()
        salt = base64.b64decode(vector["salt_b64"])
        key = backend.ut_derive_key(password, salt, vector["iterations"])
        assert base64.b64encode(key).decode() == vector["key_b64"]


@settings(max_examples=100, deadline=None)
@given(
    password=st.binary(max_size=100),
    salt=st.binary(min_size=16, max_size=16),
    iterations=st.integers(1, 1200),
)
def test_ut_key_equals_repeated_sha1(backend, password, salt, iterations):
    assert backend.ut_derive_key(password, salt, iterations) == hashlib_ut_key(
        password, salt, iterations
    )


def test_ut_key_through_facade_is_160_bits():
    assert len(crypto.ut_derive_key(b"security", b"\x01" + b"\x00" * 15, 1000)) == 20
