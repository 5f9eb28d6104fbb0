"""Pure-Python reference for every function of the Cython kernel ``sim._fastcrypto``.

Inputs arrive already validated by the facade (:mod:`sim.crypto`); these functions only
compute. They are the oracle the kernel is tested against and the fallback backend.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from lxml import etree

from sim.crypto._c14n import exc_c14n

__all__ = [
    "aes_cbc",
    "c14n_digest",
    "c14n_digest_sized",
    "derive_keys",
    "exc_c14n",
    "id_index",
    "p_sha1",
    "shape_violation",
    "ut_derive_key",
]

_WSU_ID = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}Id"
_ID_ATTRIBUTES = (_WSU_ID, "Id", "ID", "AssertionID")


def p_sha1(secret: bytes, seed: bytes, length: int, offset: int) -> bytes:
    """Bytes ``[offset, offset+length)`` of P_SHA-1(secret, seed) (RFC 2246 section 5)."""
    mac = hmac.new(secret, digestmod=hashlib.sha1)
    out = bytearray()
    need = offset + length
    a = seed
    while len(out) < need:
        h = mac.copy()
        h.update(a)
        a = h.digest()
        h = mac.copy()
        h.update(a + seed)
        out += h.digest()
    return bytes(out[offset:need])


def derive_keys(secret: bytes, seeds: Sequence[bytes], length: int, offset: int) -> list[bytes]:
    """One P_SHA-1 output per seed (seed = label || nonce), all with the same secret."""
    return [p_sha1(secret, seed, length, offset) for seed in seeds]


def ut_derive_key(password: bytes, salt: bytes, iterations: int) -> bytes:
    """WSS UsernameToken Profile 1.1: K1 = SHA1(password || salt), Ki = SHA1(Ki-1)."""
    key = hashlib.sha1(password + salt).digest()
    for _ in range(iterations - 1):
        key = hashlib.sha1(key).digest()
    return key


def c14n_digest(
    element: etree._Element, algorithm: str, inclusive_prefixes: Sequence[str]
) -> bytes:
    """Digest of the exclusive canonical form of ``element`` (without comments)."""
    return c14n_digest_sized(element, algorithm, inclusive_prefixes)[0]


def c14n_digest_sized(
    element: etree._Element, algorithm: str, inclusive_prefixes: Sequence[str]
) -> tuple[bytes, int]:
    """``(digest, size)``: the digest and the byte length of the exclusive canonical form."""
    data = exc_c14n(element, inclusive_prefixes, False)
    return hashlib.new(algorithm, data).digest(), len(data)


def shape_violation(root: etree._Element, max_depth: int, max_elements: int, max_attributes: int):
    """The first way ``root``'s subtree exceeds the limits, in document order:
    ``("depth", max_depth, element)``, ``("elements", max_elements, element)`` or
    ``("attributes", count, element)``; None when it stays within them."""
    count = 0
    depth = 0
    for event, el in etree.iterwalk(root, events=("start", "end")):
        if event == "end":
            depth -= 1
            continue
        depth += 1
        count += 1
        if depth > max_depth:
            return ("depth", max_depth, el)
        if count > max_elements:
            return ("elements", max_elements, el)
        if len(el.attrib) > max_attributes:
            return ("attributes", len(el.attrib), el)
    return None


def id_index(root: etree._Element):
    """``(ids, duplicate)``: the elements of ``root``'s subtree by the value of each of their
    wsu:Id, Id, ID and AssertionID attributes, and the first value two different elements
    share (None when ids are unique)."""
    ids: dict[str, etree._Element] = {}
    for el in root.iter(etree.Element):
        for name in _ID_ATTRIBUTES:
            value = el.get(name)
            if value is None:
                continue
            if value in ids and ids[value] is not el:
                return ids, value
            ids[value] = el
    return ids, None


def aes_cbc(key: bytes, iv: bytes, data: bytes, encrypt: bool) -> bytes:
    """AES-CBC of whole blocks without padding, through pyca/cryptography."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    context = cipher.encryptor() if encrypt else cipher.decryptor()
    return context.update(data) + context.finalize()
