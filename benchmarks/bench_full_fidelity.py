"""Full fidelity's per-message parts against their baselines, measured in the same run.

Run: ``python -m pytest benchmarks/bench_full_fidelity.py --benchmark-only``. Issue 15:
base64 through the kernel (``sim._fastbase64``) x2 against ``binascii`` (strict decoding, as
every reader decoded before) on a CipherValue of a 1 KB payload's message (about 1.5 KB of
text).
"""

from __future__ import annotations

import binascii
import random

import pytest

import sim.crypto as crypto
from sim.wire.xmlutil import unb64

CIPHER = random.Random(15).randbytes(1104)  # IV and the padded ciphertext of a 1 KB Body
TEXT = binascii.b2a_base64(CIPHER, newline=False).decode()


@pytest.mark.benchmark(group="base64 decode, 1.5 KB CipherValue")
def test_decode_baseline(benchmark):
    benchmark.name = "binascii strict[baseline]"
    benchmark(binascii.a2b_base64, TEXT, strict_mode=True)


@pytest.mark.benchmark(group="base64 decode, 1.5 KB CipherValue")
def test_decode_ours(benchmark):
    benchmark.name = f"xmlutil.unb64 ({crypto.BACKEND})"
    benchmark.extra_info["target_ratio"] = 2
    assert benchmark(unb64, TEXT, "xenc:CipherValue") == CIPHER


@pytest.mark.benchmark(group="base64 encode, 1.1 KB ciphertext")
def test_encode_baseline(benchmark):
    benchmark.name = "binascii[baseline]"
    benchmark(lambda: binascii.b2a_base64(CIPHER, newline=False).decode("ascii"))


@pytest.mark.benchmark(group="base64 encode, 1.1 KB ciphertext")
def test_encode_ours(benchmark):
    benchmark.name = f"crypto.b64encode ({crypto.BACKEND})"
    benchmark.extra_info["target_ratio"] = 2
    assert benchmark(crypto.b64encode, CIPHER) == TEXT
