"""XML Encryption: EncryptedKey (RSA key transport) and EncryptedData (AES-CBC, AES-GCM,
3DES), of whole elements or of their content, and WSS 1.1 EncryptedHeader."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from lxml import etree

import sim.crypto as crypto
from sim.errors import FailedCheck, InvalidSecurity, UnsupportedAlgorithm
from sim.wire import ns
from sim.wire.ledger import Ledger, Op
from sim.wire.ns import EncryptedType, EncryptionAlg, KeyTransportAlg
from sim.wire.xmlparse import DEFAULT_LIMITS, parse
from sim.wire.xmlutil import (
    b64,
    children_by_tag,
    ensure_id,
    escape,
    fragment,
    fresh_bytes,
    new_id,
    one_child,
    required,
    unb64,
)

ENCRYPTED_DATA = ns.qname(ns.XENC, "EncryptedData")
ENCRYPTED_KEY = ns.qname(ns.XENC, "EncryptedKey")
ENCRYPTED_HEADER = ns.qname(ns.WSSE11, "EncryptedHeader")
REFERENCE_LIST = ns.qname(ns.XENC, "ReferenceList")
_METHOD = ns.qname(ns.XENC, "EncryptionMethod")
_CIPHER_DATA = ns.qname(ns.XENC, "CipherData")
_CIPHER_VALUE = ns.qname(ns.XENC, "CipherValue")
_KEY_INFO = ns.qname(ns.DS, "KeyInfo")
_DATA_PARTS = {
    _METHOD: "xenc:EncryptionMethod",
    _KEY_INFO: "ds:KeyInfo",
    _CIPHER_DATA: "xenc:CipherData",
}

KEY_BYTES = {
    EncryptionAlg.AES128_CBC: 16,
    EncryptionAlg.AES192_CBC: 24,
    EncryptionAlg.AES256_CBC: 32,
    EncryptionAlg.TRIPLEDES_CBC: 24,
    EncryptionAlg.AES128_GCM: 16,
    EncryptionAlg.AES256_GCM: 32,
}
_GCM = (EncryptionAlg.AES128_GCM, EncryptionAlg.AES256_GCM)


@dataclass(frozen=True)
class EncryptionPolicy:
    """Algorithms a receiver accepts for data encryption and key transport."""

    data_algorithms: frozenset[EncryptionAlg] = frozenset(KEY_BYTES)
    key_transport: frozenset[KeyTransportAlg] = frozenset({KeyTransportAlg.RSA_OAEP_MGF1P})
    min_rsa_bits: int = 1024


# --- symmetric ciphers ------------------------------------------------------------------


def encrypt_bytes(
    algorithm: EncryptionAlg, key: bytes, data: bytes, ledger: Ledger | None
) -> bytes:
    """IV || ciphertext (|| tag for GCM), as XML Encryption lays them out."""
    _check_key(algorithm, key)
    if ledger is not None:
        ledger.record(Op.AES_ENCRYPT, len(data))
    if algorithm in _GCM:
        iv = fresh_bytes(12)
        return iv + AESGCM(key).encrypt(iv, data, None)
    block = 8 if algorithm is EncryptionAlg.TRIPLEDES_CBC else 16
    pad = block - len(data) % block
    padded = data + fresh_bytes(pad - 1) + bytes([pad])
    iv = fresh_bytes(block)
    if block == 16:
        return iv + crypto.aes_cbc_encrypt(key, iv, padded)
    encryptor = Cipher(_triple_des(key), modes.CBC(iv)).encryptor()
    return iv + encryptor.update(padded) + encryptor.finalize()


def decrypt_bytes(
    algorithm: EncryptionAlg, key: bytes, data: bytes, ledger: Ledger | None
) -> bytes:
    """Inverse of :func:`encrypt_bytes`; a wrong key, tag or padding is FailedCheck."""
    _check_key(algorithm, key)
    if ledger is not None:
        ledger.record(Op.AES_DECRYPT, len(data))
    if algorithm in _GCM:
        if len(data) < 28:
            raise FailedCheck("GCM ciphertext too short", check="decryption")
        try:
            return AESGCM(key).decrypt(data[:12], data[12:], None)
        except Exception:
            raise FailedCheck("GCM authentication tag does not match", check="decryption") from None
    block = 8 if algorithm is EncryptionAlg.TRIPLEDES_CBC else 16
    if len(data) < 2 * block or len(data) % block:
        raise FailedCheck("CBC ciphertext has a wrong length", check="decryption")
    if block == 16:
        padded = crypto.aes_cbc_decrypt(key, data[:block], data[block:])
    else:
        decryptor = Cipher(_triple_des(key), modes.CBC(data[:block])).decryptor()
        padded = decryptor.update(data[block:]) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= block:
        raise FailedCheck("CBC padding is invalid", check="decryption")
    return padded[:-pad]


def _triple_des(key: bytes):
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES

    return TripleDES(key)


def _check_key(algorithm: EncryptionAlg, key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES[algorithm]:
        raise FailedCheck(
            f"{algorithm.value} needs a {KEY_BYTES[algorithm]}-byte key", check="decryption"
        )


# --- EncryptedData ----------------------------------------------------------------------


def encrypt_element(
    target: etree._Element,
    key: bytes,
    *,
    algorithm: EncryptionAlg = EncryptionAlg.AES256_CBC,
    content: bool = False,
    key_info: etree._Element | str | None = None,
    data_id: str | None = None,
    ledger: Ledger | None = None,
) -> etree._Element:
    """Replace ``target`` (or, with ``content=True``, its children and text) by an
    xenc:EncryptedData with Id ``data_id`` (a fresh one by default); return it.
    ``key_info`` goes into its ds:KeyInfo: an element, or its text."""
    algorithm = EncryptionAlg(algorithm)
    if content:
        plaintext = escape(target.text or "").encode() + b"".join(
            etree.tostring(child) for child in target
        )
    else:
        plaintext = etree.tostring(target, with_tail=False)
    if ledger is not None:
        ledger.record(Op.XML_SERIALIZE, len(plaintext))
    cipher = encrypt_bytes(algorithm, key, plaintext, ledger)
    kind = EncryptedType.CONTENT if content else EncryptedType.ELEMENT
    inline = key_info if isinstance(key_info, str) else ""
    data = fragment(
        _encrypted_data_text(algorithm, kind, data_id, inline, cipher, key_info is not None)
    )
    if key_info is not None and not inline:
        data[1].append(key_info)
    if content:
        for child in list(target):
            target.remove(child)
        target.text = None
        target.append(data)
    else:
        data.tail = target.tail
        target.getparent().replace(target, data)
    return data


def _encrypted_data_text(
    algorithm: EncryptionAlg,
    kind: EncryptedType,
    data_id: str | None,
    key_info: str,
    cipher: bytes,
    with_key_info: bool = True,
) -> str:
    data_id = escape(data_id) if data_id else new_id("ED-")
    return (
        f'<xenc:EncryptedData xmlns:xenc="{ns.XENC}" Id="{data_id}" Type="{kind.value}">'
        f'<xenc:EncryptionMethod Algorithm="{algorithm.value}"/>'
        + (f'<ds:KeyInfo xmlns:ds="{ns.DS}">{key_info}</ds:KeyInfo>' if with_key_info else "")
        + f"<xenc:CipherData><xenc:CipherValue>{b64(cipher)}</xenc:CipherValue></xenc:CipherData>"
        "</xenc:EncryptedData>"
    )


def encrypt_content_text(
    content: str,
    key: bytes,
    *,
    algorithm: EncryptionAlg = EncryptionAlg.AES256_CBC,
    key_info: str | None,
    data_id: str | None = None,
    ledger: Ledger | None = None,
) -> tuple[str, str]:
    """The text of the xenc:EncryptedData (Type Content) that :func:`encrypt_element` puts in
    place of an element's content, given that content as text (``key_info``: text for its
    ds:KeyInfo, or None for none), and its Id (``data_id``, or a fresh one)."""
    algorithm = EncryptionAlg(algorithm)
    plaintext = content.encode()
    if ledger is not None:
        ledger.record(Op.XML_SERIALIZE, len(plaintext))
    cipher = encrypt_bytes(algorithm, key, plaintext, ledger)
    data_id = data_id or new_id("ED-")  # drawn after the cipher's IV, as encrypt_element does
    text = _encrypted_data_text(
        algorithm, EncryptedType.CONTENT, data_id, key_info or "", cipher, key_info is not None
    )
    return text, data_id


@dataclass(frozen=True)
class EncryptedDataInfo:
    element: etree._Element
    algorithm: EncryptionAlg
    content: bool
    key_info: etree._Element | None
    cipher: bytes


_ENCRYPTION_BY_URI = {alg.value: alg for alg in EncryptionAlg}
_ELEMENT_TYPE, _CONTENT_TYPE = EncryptedType.ELEMENT.value, EncryptedType.CONTENT.value


def read_encrypted_data(data: etree._Element, policy: EncryptionPolicy) -> EncryptedDataInfo:
    if data.tag != ENCRYPTED_DATA:
        raise InvalidSecurity(f"expected xenc:EncryptedData, got {data.tag}")
    parts = children_by_tag(data, _DATA_PARTS)
    method = required(parts, _METHOD, "xenc:EncryptionMethod")
    algorithm = _ENCRYPTION_BY_URI.get(method.get("Algorithm"))
    if algorithm is None:
        raise UnsupportedAlgorithm(
            f"encryption {method.get('Algorithm')!r} is not supported", check="algorithm"
        )
    if algorithm not in policy.data_algorithms:
        raise UnsupportedAlgorithm(f"encryption {algorithm.value} not allowed", check="algorithm")
    kind = data.get("Type", _ELEMENT_TYPE)
    if kind not in (_ELEMENT_TYPE, _CONTENT_TYPE):
        raise UnsupportedAlgorithm(f"EncryptedData Type {kind!r} not supported")
    key_info = parts.get(_KEY_INFO)
    cipher_data = required(parts, _CIPHER_DATA, "xenc:CipherData")
    value = one_child(cipher_data, _CIPHER_VALUE, "xenc:CipherValue")
    return EncryptedDataInfo(
        data,
        algorithm,
        kind == _CONTENT_TYPE,
        key_info[0] if key_info is not None and len(key_info) else None,
        unb64(value.text, "xenc:CipherValue"),
    )


@functools.lru_cache(maxsize=256)
def _declarations(nsmap: tuple[tuple[str | None, str], ...]) -> bytes:
    """Namespace declarations making the bindings ``nsmap`` (an element's in-scope ones)."""
    return "".join(
        f' xmlns{":" + prefix if prefix else ""}="{uri}"' for prefix, uri in nsmap if uri
    ).encode()


def decrypt_element(
    info: EncryptedDataInfo, key: bytes, *, ledger: Ledger | None = None
) -> etree._Element:
    """Decrypt in place: the EncryptedData is replaced by what it held. Returns the element
    that now stands where the EncryptedData was (or its parent, for Content)."""
    plaintext = decrypt_bytes(info.algorithm, key, info.cipher, ledger)
    parent = info.element.getparent()
    # Parse the plaintext in the namespace context of where it goes back.
    declarations = _declarations(tuple(parent.nsmap.items()))
    if ledger is not None:
        ledger.record(Op.XML_PARSE, len(plaintext))
    try:
        wrapper = parse(
            b"<wrapper" + declarations + b">" + plaintext + b"</wrapper>", limits=DEFAULT_LIMITS
        )
    except InvalidSecurity:
        raise FailedCheck("decrypted data is not well-formed XML", check="decryption") from None
    if info.content:
        parent.remove(info.element)
        if wrapper.text:
            parent.text = (parent.text or "") + wrapper.text
        for child in list(wrapper):
            parent.append(child)
        return parent
    elements = [child for child in wrapper if isinstance(child.tag, str)]
    if len(elements) != 1 or (wrapper.text or "").strip():
        raise FailedCheck("decrypted Element data is not one element", check="decryption")
    restored = elements[0]
    restored.tail = info.element.tail
    parent.replace(info.element, restored)
    return restored


# --- EncryptedKey -----------------------------------------------------------------------


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


def build_encrypted_key(
    session_key: bytes,
    recipient: rsa.RSAPublicKey,
    *,
    key_info: etree._Element | None,
    algorithm: KeyTransportAlg = KeyTransportAlg.RSA_OAEP_MGF1P,
    data_references: Sequence[str] = (),
    ledger: Ledger | None = None,
) -> etree._Element:
    """An xenc:EncryptedKey carrying ``session_key`` for ``recipient``.

    ``key_info`` names the recipient's certificate (an STR); ``data_references`` are the Ids
    of the EncryptedData it protects (a ReferenceList).
    """
    text, _ = encrypted_key_text(
        session_key,
        recipient,
        key_info=None if key_info is None else etree.tostring(key_info).decode(),
        algorithm=algorithm,
        data_references=data_references,
        ledger=ledger,
    )
    return fragment(text)


def encrypted_key_text(
    session_key: bytes,
    recipient: rsa.RSAPublicKey,
    *,
    key_info: str | None,
    algorithm: KeyTransportAlg = KeyTransportAlg.RSA_OAEP_MGF1P,
    data_references: Sequence[str] = (),
    ledger: Ledger | None = None,
) -> tuple[str, str]:
    """The text of :func:`build_encrypted_key` (``key_info``: the STR's text, or None) and
    its Id."""
    algorithm = KeyTransportAlg(algorithm)
    if ledger is not None:
        ledger.record(Op.RSA_ENCRYPT, recipient.key_size)
    if algorithm is KeyTransportAlg.RSA_OAEP_MGF1P:
        cipher = recipient.encrypt(session_key, _oaep())
        method = (
            f'<xenc:EncryptionMethod Algorithm="{algorithm.value}"><ds:DigestMethod '
            f'xmlns:ds="{ns.DS}" Algorithm="{ns.DigestAlg.SHA1.value}"/></xenc:EncryptionMethod>'
        )
    else:
        cipher = recipient.encrypt(session_key, padding.PKCS1v15())
        method = f'<xenc:EncryptionMethod Algorithm="{algorithm.value}"/>'
    key_id = new_id("EK-")
    info = "" if key_info is None else f'<ds:KeyInfo xmlns:ds="{ns.DS}">{key_info}</ds:KeyInfo>'
    references = (
        f"<xenc:ReferenceList>{_data_references_text(data_references)}</xenc:ReferenceList>"
        if data_references
        else ""
    )
    return (
        f'<xenc:EncryptedKey xmlns:xenc="{ns.XENC}" Id="{key_id}">{method}{info}'
        f"<xenc:CipherData><xenc:CipherValue>{b64(cipher)}</xenc:CipherValue></xenc:CipherData>"
        f"{references}</xenc:EncryptedKey>"
    ), key_id


def _data_references_text(ids: Sequence[str]) -> str:
    return "".join(f'<xenc:DataReference URI="#{escape(i)}"/>' for i in ids)


def reference_list_text(ids: Sequence[str]) -> str:
    """The text of an xenc:ReferenceList of DataReferences to ``ids``."""
    return (
        f'<xenc:ReferenceList xmlns:xenc="{ns.XENC}">{_data_references_text(ids)}'
        "</xenc:ReferenceList>"
    )


def read_data_references(parent: etree._Element) -> list[str]:
    ref_list = one_child(parent, REFERENCE_LIST, "xenc:ReferenceList", required=False)
    if ref_list is None:
        return []
    out = []
    for ref in ref_list:
        uri = ref.get("URI") or ""
        if ref.tag != ns.qname(ns.XENC, "DataReference") or not uri.startswith("#"):
            raise InvalidSecurity(f"unsupported data reference {uri!r}")
        out.append(uri[1:])
    return out


@dataclass(frozen=True)
class EncryptedKeyInfo:
    element: etree._Element
    algorithm: KeyTransportAlg
    key_info: etree._Element | None
    cipher: bytes
    data_references: tuple[str, ...]


def read_encrypted_key(ek: etree._Element, policy: EncryptionPolicy) -> EncryptedKeyInfo:
    if ek.tag != ENCRYPTED_KEY:
        raise InvalidSecurity(f"expected xenc:EncryptedKey, got {ek.tag}")
    method = one_child(ek, _METHOD, "xenc:EncryptionMethod")
    try:
        algorithm = KeyTransportAlg(method.get("Algorithm"))
    except ValueError:
        raise UnsupportedAlgorithm(
            f"key transport {method.get('Algorithm')!r} is not supported", check="algorithm"
        ) from None
    if algorithm not in policy.key_transport:
        raise UnsupportedAlgorithm(
            f"key transport {algorithm.value} not allowed", check="algorithm"
        )
    key_info = one_child(ek, _KEY_INFO, "ds:KeyInfo", required=False)
    value = one_child(
        one_child(ek, _CIPHER_DATA, "xenc:CipherData"), _CIPHER_VALUE, "xenc:CipherValue"
    )
    return EncryptedKeyInfo(
        ek,
        algorithm,
        key_info[0] if key_info is not None and len(key_info) else None,
        unb64(value.text, "xenc:CipherValue"),
        tuple(read_data_references(ek)),
    )


def decrypt_key(
    info: EncryptedKeyInfo,
    private_key: rsa.RSAPrivateKey,
    *,
    expected_bytes: int | None = None,
    policy: EncryptionPolicy = EncryptionPolicy(),
    ledger: Ledger | None = None,
) -> bytes:
    """The session key. For RSA 1.5 a failure yields a random key instead of an error, so
    that the padding check is no oracle (Bleichenbacher); the data decryption then fails."""
    if private_key.key_size < policy.min_rsa_bits:
        raise InvalidSecurity("recipient RSA key below the policy minimum", check="key-size")
    if ledger is not None:
        ledger.record(Op.RSA_DECRYPT, private_key.key_size)
    try:
        if info.algorithm is KeyTransportAlg.RSA_OAEP_MGF1P:
            key = private_key.decrypt(info.cipher, _oaep())
        else:
            key = private_key.decrypt(info.cipher, padding.PKCS1v15())
    except ValueError:
        if info.algorithm is KeyTransportAlg.RSA_1_5:
            return fresh_bytes(expected_bytes or 32)
        raise FailedCheck("EncryptedKey does not decrypt", check="decryption") from None
    if expected_bytes is not None and len(key) != expected_bytes:
        raise FailedCheck("EncryptedKey holds a key of the wrong size", check="decryption")
    return key


# --- EncryptedHeader (WSS 1.1) ------------------------------------------------------------


def encrypt_header(
    header_block: etree._Element,
    key: bytes,
    *,
    algorithm: EncryptionAlg = EncryptionAlg.AES256_CBC,
    key_info: etree._Element | None = None,
    ledger: Ledger | None = None,
) -> etree._Element:
    """Wrap ``header_block`` in a wsse11:EncryptedHeader holding its EncryptedData."""
    wrapper = etree.Element(ENCRYPTED_HEADER, nsmap={"k": ns.WSSE11})
    ensure_id(wrapper, prefix="EH-")
    header_block.addprevious(wrapper)
    wrapper.append(header_block)
    encrypt_element(header_block, key, algorithm=algorithm, key_info=key_info, ledger=ledger)
    return wrapper


def decrypt_header(
    wrapper: etree._Element, key: bytes, policy: EncryptionPolicy, ledger: Ledger | None = None
) -> etree._Element:
    """Restore the header block of a wsse11:EncryptedHeader in its place."""
    data = one_child(wrapper, ENCRYPTED_DATA, "xenc:EncryptedData")
    restored = decrypt_element(read_encrypted_data(data, policy), key, ledger=ledger)
    wrapper.addprevious(restored)
    wrapper.getparent().remove(wrapper)
    return restored
