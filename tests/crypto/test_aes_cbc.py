"""AES-CBC (no padding): kernel and twin against NIST SP 800-38A and the openssl tool."""

from __future__ import annotations

import os
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim.crypto as crypto
from tests.crypto.kernels import requires_kernel

# NIST SP 800-38A, F.2.1 CBC-AES128.Encrypt
NIST_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
NIST_IV = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
NIST_PLAIN = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
)
NIST_CIPHER = bytes.fromhex(
    "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
    "73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7"
)


def openssl_cbc(key: bytes, iv: bytes, data: bytes, encrypt: bool) -> bytes:
    command = ["openssl", "enc", f"-aes-{len(key) * 8}-cbc", "-nopad", "-K", key.hex()]
    command += ["-iv", iv.hex(), "-e" if encrypt else "-d"]
    return subprocess.run(command, input=data, capture_output=True, check=True).stdout


def test_nist_known_answer(backend):
    assert backend.aes_cbc(NIST_KEY, NIST_IV, NIST_PLAIN, True) == NIST_CIPHER
    assert backend.aes_cbc(NIST_KEY, NIST_IV, NIST_CIPHER, False) == NIST_PLAIN


@pytest.mark.parametrize("key_bytes", [16, 24, 32])
@pytest.mark.parametrize("blocks", [1, 2, 88])
def test_matches_the_openssl_tool(backend, key_bytes, blocks):
    key, iv, data = os.urandom(key_bytes), os.urandom(16), os.urandom(16 * blocks)
    cipher = backend.aes_cbc(key, iv, data, True)
    assert cipher == openssl_cbc(key, iv, data, True)
    assert backend.aes_cbc(key, iv, cipher, False) == data == openssl_cbc(key, iv, cipher, False)


@requires_kernel
@settings(max_examples=100, deadline=None)
@given(
    key=st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    iv=st.binary(min_size=16, max_size=16),
    blocks=st.integers(0, 20),
    seed=st.binary(min_size=16, max_size=16),
)
def test_kernel_and_twin_agree(key, iv, blocks, seed):
    from sim.crypto import _reference
    from tests.crypto.kernels import fastcrypto

    data = (seed * (blocks + 1))[: 16 * blocks]
    for encrypt in (True, False):
        assert fastcrypto.aes_cbc(key, iv, data, encrypt) == _reference.aes_cbc(
            key, iv, data, encrypt
        )


@pytest.mark.parametrize(
    ("key", "iv", "data", "message"),
    [
        (b"k" * 20, b"i" * 16, b"d" * 16, "16, 24 or 32"),
        (b"k" * 16, b"i" * 8, b"d" * 16, "IV has 16"),
        (b"k" * 16, b"i" * 16, b"d" * 15, "whole 16-byte blocks"),
    ],
)
def test_facade_refuses_bad_arguments(key, iv, data, message):
    with pytest.raises(ValueError, match=message):
        crypto.aes_cbc_encrypt(key, iv, data)
    with pytest.raises(ValueError, match=message):
        crypto.aes_cbc_decrypt(key, iv, data)
    with pytest.raises(TypeError):
        crypto.aes_cbc_encrypt("key", iv, data)
