"""Pure-Python reference for every function of the Cython kernel (``sim._fastcrypto`` and
``sim._fastshape``).

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
    "derived_key_shape",
    "exc_c14n",
    "id_index",
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


# --- the derived-key message shape --------------------------------------------------------


class _NotPlain(Exception):
    """A part of the message outside the plain derived-key shape."""


def _elements(element, count: int | None = None) -> list:
    """The element children (whitespace text between them allowed); anything else refused."""
    found = []
    for child in element:
        if not isinstance(child.tag, str):  # a comment, a processing instruction, an entity
            raise _NotPlain
        found.append(child)
    if count is not None and len(found) != count:
        raise _NotPlain
    return found


def _named(element, namespace: str, local: str):
    if element.tag != f"{{{namespace}}}{local}":
        raise _NotPlain
    return element


def _text(element) -> str | None:
    """The text of an element holding nothing else."""
    if len(element):
        raise _NotPlain
    return element.text


def _empty(element) -> None:
    if len(element) or element.text is not None:
        raise _NotPlain


def _reference(str_element, wsse: str) -> tuple:
    """(URI, ValueType) of a SecurityTokenReference holding one empty wsse:Reference."""
    (reference,) = [_named(e, wsse, "Reference") for e in _elements(str_element, 1)]
    _empty(reference)
    return reference.get("URI"), reference.get("ValueType")


def derived_key_shape(security, body, namespaces: tuple) -> tuple | None:
    """The parts of a message protected with derived keys as wssim's senders lay it out, or
    None for any other layout. Security holds exactly Timestamp (Created, Expires), two
    DerivedKeyTokens (no Algorithm attribute; STR/Reference, Offset, Length, Label, Nonce),
    a ReferenceList with one
    DataReference and a Signature (SignedInfo: CanonicalizationMethod, SignatureMethod,
    References with one Transform; SignatureValue; KeyInfo/STR/Reference); the Body holds
    one EncryptedData (EncryptionMethod, KeyInfo/STR/Reference, CipherData/CipherValue).
    Nothing but those elements and whitespace text between them; values are plain text.

    Returns ``(timestamp, created, expires, dkts, data_reference, signature, signed_info,
    c14n, signature_method, references, signature_value, key_info_reference,
    encrypted_data, data_id, data_type, encryption_method, data_key_reference,
    cipher_value)``: ``dkts`` two ``(wsu:Id, (URI, ValueType), Offset, Length, Label,
    Nonce)``,
    ``references`` ``(URI, transform, digest method, digest value)`` each, the key
    references ``(URI, ValueType)``."""
    wsu, wsse, wsc, xenc, ds = namespaces
    try:
        timestamp, *dkt_elements, reference_list, signature = _elements(security, 5)
        _named(timestamp, wsu, "Timestamp")
        created, expires = _elements(timestamp, 2)
        created = _text(_named(created, wsu, "Created"))
        expires = _text(_named(expires, wsu, "Expires"))
        dkts = []
        for dkt in dkt_elements:
            _named(dkt, wsc, "DerivedKeyToken")
            if dkt.get("Algorithm") is not None:
                raise _NotPlain
            str_element, offset, length, label, nonce = _elements(dkt, 5)
            dkts.append(
                (
                    dkt.get(f"{{{wsu}}}Id"),
                    _reference(_named(str_element, wsse, "SecurityTokenReference"), wsse),
                    _text(_named(offset, wsc, "Offset")),
                    _text(_named(length, wsc, "Length")),
                    _text(_named(label, wsc, "Label")),
                    _text(_named(nonce, wsc, "Nonce")),
                )
            )
        _named(reference_list, xenc, "ReferenceList")
        (data_reference,) = _elements(reference_list, 1)
        _named(data_reference, xenc, "DataReference")
        _empty(data_reference)
        _named(signature, ds, "Signature")
        signed_info, signature_value, key_info = _elements(signature, 3)
        _named(signed_info, ds, "SignedInfo")
        c14n, method, *reference_elements = _elements(signed_info)
        _named(c14n, ds, "CanonicalizationMethod")
        _empty(c14n)
        _named(method, ds, "SignatureMethod")
        _empty(method)
        if not 1 <= len(reference_elements) <= 16:
            raise _NotPlain
        references = []
        for reference in reference_elements:
            _named(reference, ds, "Reference")
            transforms, digest_method, digest_value = _elements(reference, 3)
            (transform,) = _elements(_named(transforms, ds, "Transforms"), 1)
            _named(transform, ds, "Transform")
            _empty(transform)
            _named(digest_method, ds, "DigestMethod")
            _empty(digest_method)
            references.append(
                (
                    reference.get("URI"),
                    transform.get("Algorithm"),
                    digest_method.get("Algorithm"),
                    _text(_named(digest_value, ds, "DigestValue")),
                )
            )
        signature_value = _text(_named(signature_value, ds, "SignatureValue"))
        (str_element,) = _elements(_named(key_info, ds, "KeyInfo"), 1)
        key_reference = _reference(_named(str_element, wsse, "SecurityTokenReference"), wsse)
        (data,) = _elements(body, 1)
        _named(data, xenc, "EncryptedData")
        data_method, data_key_info, cipher_data = _elements(data, 3)
        _named(data_method, xenc, "EncryptionMethod")
        _empty(data_method)
        (str_element,) = _elements(_named(data_key_info, ds, "KeyInfo"), 1)
        data_key = _reference(_named(str_element, wsse, "SecurityTokenReference"), wsse)
        (cipher_value,) = _elements(_named(cipher_data, xenc, "CipherData"), 1)
        cipher_value = _text(_named(cipher_value, xenc, "CipherValue"))
    except (_NotPlain, ValueError):  # ValueError: a count unpacked wrongly
        return None
    return (
        timestamp,
        created,
        expires,
        tuple(dkts),
        data_reference.get("URI"),
        signature,
        signed_info,
        c14n.get("Algorithm"),
        method.get("Algorithm"),
        tuple(references),
        signature_value,
        key_reference,
        data,
        data.get("Id"),
        data.get("Type"),
        data_method.get("Algorithm"),
        data_key,
        cipher_value,
    )
