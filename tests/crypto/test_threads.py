"""P_SHA-1 from many threads at once: the kernel computes without the GIL while other
threads fill and clear its cache of key schedules; every key must still be the pure twin's."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from sim.crypto import _reference

THREADS = 8
SECRETS = [i.to_bytes(4, "big") * 8 for i in range(1100)]  # more than the 1024 cached
SEED = b"label and nonce"
LENGTH = 1024  # long enough that a thread is mid-derivation when another clears the cache


def test_threads_clearing_the_schedule_cache_still_derive_the_twins_keys(kernel):
    expected = {secret: _reference.p_sha1(secret, SEED, LENGTH, 0) for secret in SECRETS}

    def derive(worker: int) -> list[bytes]:
        """Each secret twice (the second time from the cache, unless another thread cleared
        it), starting at a different place from the other threads."""
        start = worker * len(SECRETS) // THREADS
        order = SECRETS[start:] + SECRETS[:start]
        return [
            secret
            for secret in order * 2
            if kernel.p_sha1(secret, SEED, LENGTH, 0) != expected[secret]
        ]

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the GIL over as often as possible
    try:
        with ThreadPoolExecutor(THREADS) as pool:
            wrong = [secret for found in pool.map(derive, range(THREADS)) for secret in found]
    finally:
        sys.setswitchinterval(interval)
    assert wrong == []
