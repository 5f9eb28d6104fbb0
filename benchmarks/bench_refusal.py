"""What refusing the worst input an outsider can build costs, against reading a valid message
of the same size (issue 14, class 5: the target is within 10x).

Each group reads a valid 29 KB request (the baseline: parse, decrypt, verify, every check)
and refuses each 29 KB rewrite of a captured request from ``tests/attacks/signature_forgery``
(beyond the bounds a receiver keeps before it verifies a signature, or within them and
refused by the SignatureValue before any reference digest), for an X.509 request (any
client of the CA) and a SecureConversation request (a captured context reference).

Run: ``python -m pytest benchmarks/bench_refusal.py --benchmark-only``. The ratio table
shows baseline / refusal for each input: at least x0.1 means the refusal costs at most 10x a
valid read (in practice it costs less than one).
"""

from __future__ import annotations

import os

import pytest

from benchmarks.messages import build_sct, build_x509, read_sct, read_x509
from sim.errors import SecurityFault
from tests.attacks.signature_forgery import BEYOND_THE_BOUNDS, SIZE, WITHIN_THE_BOUNDS

TARGET = 0.1  # baseline / refusal: a refusal within 10x of a valid read
FORGERIES = {**BEYOND_THE_BOUNDS, **WITHIN_THE_BOUNDS}


KINDS = {"x509": (build_x509, read_x509), "sct": (build_sct, read_sct)}


def _valid(kind: str) -> bytes:
    """A valid request of SIZE bytes at most, as large as a payload makes it."""
    build = KINDS[kind][0]
    low, high = 0, SIZE
    while high - low > 16:
        middle = (low + high) // 2
        low, high = (middle, high) if len(build(os.urandom(middle))) <= SIZE else (low, middle)
    return build(os.urandom(low))


def _refuse(read, data: bytes) -> str:
    try:
        read(data)
    except SecurityFault as fault:
        return fault.check
    raise AssertionError("the forged message was accepted")


@pytest.mark.parametrize("kind", KINDS)
def test_read_a_valid_message(benchmark, kind):
    benchmark.group = f"refusal: {kind}, 29 KB"
    benchmark.name = "read a valid message[baseline]"
    benchmark.extra_info["target_ratio"] = TARGET
    data = _valid(kind)
    assert SIZE - 1024 < len(data) <= SIZE
    benchmark(KINDS[kind][1], data)


@pytest.mark.parametrize("forgery", FORGERIES)
@pytest.mark.parametrize("kind", KINDS)
def test_refuse_a_forged_message(benchmark, kind, forgery):
    benchmark.group = f"refusal: {kind}, 29 KB"
    benchmark.name = f"refuse {forgery}"
    benchmark.extra_info["target_ratio"] = TARGET
    data = FORGERIES[forgery](KINDS[kind][0](b"PAY 100"))
    assert SIZE - 2048 < len(data) <= SIZE
    benchmark(_refuse, KINDS[kind][1], data)
