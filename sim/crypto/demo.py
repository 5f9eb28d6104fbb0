"""A short tour of the crypto kernel: ``python -m sim.crypto.demo``."""

from __future__ import annotations

import hashlib
import hmac
import timeit

from lxml import etree

import sim.crypto as crypto


def _stdlib_p_sha1(secret: bytes, seed: bytes, length: int) -> bytes:
    out, a = b"", seed
    while len(out) < length:
        a = hmac.new(secret, a, hashlib.sha1).digest()
        out += hmac.new(secret, a + seed, hashlib.sha1).digest()
    return out[:length]


def _per_call_us(function, number: int) -> float:
    return min(timeit.repeat(function, number=number, repeat=3)) / number * 1e6


def main() -> None:
    """Derive keys and canonicalize a SOAP body, printing results and timings."""
    secret, nonce = bytes(range(32)), bytes(range(16))
    key = crypto.derive_key(secret, nonce=nonce)
    print(f"backend: {crypto.BACKEND}")
    print(f"derived key (32 B): {key.hex()}")
    body = etree.fromstring(
        b'<s:Body xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:u="urn:u" u:Id="b">'
        + b"".join(
            b'<app:Item xmlns:app="urn:app" n="%d">part %d</app:Item>' % (i, i) for i in range(40)
        )
        + b"</s:Body>"
    )
    print(
        f"c14n digest of a {len(crypto.exc_c14n(body))}-byte Body: {crypto.c14n_digest(body).hex()}"
    )
    rows = [
        (
            "derive_key 32 B",
            _per_call_us(lambda: crypto.derive_key(secret, nonce=nonce), 20000),
            _per_call_us(lambda: _stdlib_p_sha1(secret, crypto.DEFAULT_LABEL + nonce, 32), 20000),
        ),
        (
            "c14n_digest Body",
            _per_call_us(lambda: crypto.c14n_digest(body), 5000),
            _per_call_us(
                lambda: hashlib.sha1(etree.tostring(body, method="c14n", exclusive=True)).digest(),
                5000,
            ),
        ),
    ]
    print(f"{'operation':<20}{'ours':>10}{'baseline':>12}{'ratio':>8}")
    for name, ours, baseline in rows:
        print(f"{name:<20}{ours:>8.2f}us{baseline:>10.2f}us{baseline / ours:>7.1f}x")


if __name__ == "__main__":
    main()
