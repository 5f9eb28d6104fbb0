"""Pure-Python reference for every function of the Cython kernel (``sim._fastcrypto``,
``sim._fastshape`` and ``sim._fastbase64``).

Inputs arrive already validated by the facade (:mod:`sim.crypto`); these functions only
compute. They are the oracle the kernel is tested against and the fallback backend.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence

from lxml import etree

from sim.crypto._c14n import exc_c14n

# The kernel's functions by the same names: a deliberate twin (the oracle and the fallback).
__all__ = [
    "aes_cbc",
    "b64decode_canonical",
    "b64encode",
    "c14n_digest",
    "c14n_digest_sized",
    "derive_keys",
    "exc_c14n",
    "hmac_sha1",
    "id_index",
    "match_layout",
    "namespace_declarations",
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


def hmac_sha1(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA1 of ``data`` under ``key`` (RFC 2104)."""
    return hmac.digest(key, data, "sha1")


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


def namespace_declarations(element: etree._Element) -> int:
    """How many namespace declarations ``element``, its ancestors and its descendants make."""
    count = sum(1 for _ in etree.iterwalk(element, events=("start-ns",)))
    ancestor = element.getparent()
    while ancestor is not None:
        for event, _ in etree.iterwalk(ancestor, events=("start-ns", "start")):
            if event == "start":  # the ancestor's own declarations come before it
                break
            count += 1
        ancestor = ancestor.getparent()
    return count


def aes_cbc(key: bytes, iv: bytes, data: bytes, encrypt: bool) -> bytes:
    """AES-CBC of whole blocks without padding, through pyca/cryptography."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    context = cipher.encryptor() if encrypt else cipher.decryptor()
    return context.update(data) + context.finalize()


# --- matching an element against a layout ------------------------------------------------

_ELEMENTS, _TEXT, _EMPTY = 0, 1, 2


def _match_node(element, node: tuple, out: list) -> bool:
    """The twin of ``_fastshape.match_node``: whether ``element`` matches the compiled
    pattern ``node``, its captures appended to ``out``."""
    href, local, keep, attributes, kind, children, _ = node
    if href is not None and element.tag != f"{{{href.decode()}}}{local.decode()}":
        return False
    if keep:
        out.append(element)
    for name, attribute_href in attributes:
        name = name.decode()
        out.append(
            element.get(name if attribute_href is None else f"{{{attribute_href.decode()}}}{name}")
        )
    if kind == _EMPTY:
        return len(element) == 0 and element.text is None
    if any(not isinstance(child.tag, str) for child in element):
        return False  # a comment, a processing instruction, an entity
    if kind == _TEXT:
        if len(element):
            return False
        out.append(element.text)
        return True
    found = list(element)
    if children and children[-1][6] > 1:  # the last child repeats, 1 to most times
        fixed, repeated = children[:-1], children[-1]
        if not len(fixed) < len(found) <= len(fixed) + repeated[6]:
            return False
    else:
        fixed, repeated = children, None
        if len(found) != len(fixed):
            return False
    for child, spec in zip(found[: len(fixed)], fixed, strict=True):
        if not _match_node(child, spec, out):
            return False
    if repeated is not None:
        occurrences = []
        for child in found[len(fixed) :]:
            captured: list = []
            if not _match_node(child, repeated, captured):
                return False
            occurrences.append(tuple(captured))
        out.append(tuple(occurrences))
    return True


def match_layout(element, layout: tuple) -> tuple | None:
    """The captures of ``element`` matched against the compiled ``layout`` (in the layout's
    order), or None when it does not match."""
    out: list = []
    return tuple(out) if _match_node(element, layout, out) else None


def b64encode(data: bytes) -> str:
    """``data`` in base64 on one line, as a str."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


#: base64 as our senders write it: whole quanta, "=" padding only at the end
_CANONICAL_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def b64decode_canonical(text: str) -> bytes | None:
    """The bytes of ``text`` when it is base64 in our senders' form (not empty, no
    whitespace, padding only at the end); None for anything else."""
    if not text or _CANONICAL_B64.fullmatch(text) is None:
        return None
    return binascii.a2b_base64(text)
