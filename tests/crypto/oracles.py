"""Independent oracles for the crypto kernel, written from the RFCs with the standard library
alone (nothing of ``sim``): the tests and the benchmarks compare against these."""

from __future__ import annotations

import hashlib
import hmac


def stdlib_p_sha1(secret: bytes, seed: bytes, length: int) -> bytes:
    """P_SHA-1 of RFC 2246 section 5 (the WS-SecureConversation key derivation)."""
    out, a = b"", seed
    while len(out) < length:
        a = hmac.new(secret, a, hashlib.sha1).digest()
        out += hmac.new(secret, a + seed, hashlib.sha1).digest()
    return out[:length]
