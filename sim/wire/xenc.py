"""XML Encryption: EncryptedKey (RSA key transport) and EncryptedData (AES-CBC, AES-GCM,
3DES), of whole elements or of their content, and WSS 1.1 EncryptedHeader.

A receiver decrypts inside a :class:`DecryptionStage`: from the first decryption until the
signature has authenticated every decrypted part, whatever fails (CBC padding, a GCM tag,
plaintext that is not well-formed UTF-8 XML, a digest, the signature, a decrypted part no
signature covers) gives one fault with one text, charged the same work, so that the
receiver is no decryption oracle (Jager and Somorovsky, "How to break XML Encryption",
CCS 2011). The key transport is no oracle either: an EncryptedKey that does not decrypt
yields a random key (Bleichenbacher, Manger), and the data decryption then fails.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from lxml import etree

import sim.crypto as crypto
from sim.errors import FailedCheck, InvalidSecurity, SecurityFault, UnsupportedAlgorithm
from sim.wire import ns, rules
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
    whole_text,
)

ENCRYPTED_DATA = ns.qname(ns.XENC, "EncryptedData")
ENCRYPTED_KEY = ns.qname(ns.XENC, "EncryptedKey")
ENCRYPTED_HEADER = ns.qname(ns.WSSE11, "EncryptedHeader")
REFERENCE_LIST = ns.qname(ns.XENC, "ReferenceList")
_METHOD = ns.qname(ns.XENC, "EncryptionMethod")
_CIPHER_DATA = ns.qname(ns.XENC, "CipherData")
_CIPHER_VALUE = ns.qname(ns.XENC, "CipherValue")
_KEY_INFO = ns.qname(ns.DS, "KeyInfo")
_SIGNED_INFO = ns.qname(ns.DS, "SignedInfo")
_DATA_PARTS = {
    _METHOD: "xenc:EncryptionMethod",
    _KEY_INFO: "ds:KeyInfo",
    _CIPHER_DATA: "xenc:CipherData",
}

KEY_BYTES = rules.KEY_BYTES
_GCM = (EncryptionAlg.AES128_GCM, EncryptionAlg.AES192_GCM, EncryptionAlg.AES256_GCM)
#: XML Encryption 1.1 section 5.2.4: a 96-bit IV before the ciphertext, a 128-bit tag after
GCM_IV_BYTES, GCM_TAG_BYTES = 12, 16
#: The digests of rsa-oaep-mgf1p's ds:DigestMethod (XML Encryption section 5.4.2; SHA-1
#: when absent); the mask generation function of rsa-oaep-mgf1p is MGF1 with SHA-1.
OAEP_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    ns.DigestAlg.SHA1.value: hashes.SHA1,
    ns.DigestAlg.SHA256.value: hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmlenc#sha512": hashes.SHA512,
}
#: The one fault of a refused decryption (see :class:`DecryptionStage`).
DECRYPTION_FAILED = "the encrypted data does not decrypt to content the signature covers"


@dataclass(frozen=True)
class EncryptionPolicy:
    """Algorithms a receiver accepts for data encryption and key transport."""

    data_algorithms: frozenset[EncryptionAlg] = frozenset(KEY_BYTES)
    key_transport: frozenset[KeyTransportAlg] = frozenset({KeyTransportAlg.RSA_OAEP_MGF1P})
    oaep_digests: frozenset[str] = frozenset(OAEP_DIGESTS)
    min_rsa_bits: int = 1024


def decryption_fault() -> FailedCheck:
    """The fault of every failure after decryption starts: one type, text and check."""
    return FailedCheck(DECRYPTION_FAILED, check="decryption")


# --- symmetric ciphers ------------------------------------------------------------------


def encrypt_bytes(
    algorithm: EncryptionAlg, key: bytes, data: bytes, ledger: Ledger | None
) -> bytes:
    """IV || ciphertext (|| tag for GCM), as XML Encryption lays them out."""
    _check_key(algorithm, key)
    if algorithm in _GCM:
        if ledger is not None:
            ledger.record(Op.AES_GCM_ENCRYPT, len(data))
        iv = fresh_bytes(GCM_IV_BYTES)
        return iv + AESGCM(key).encrypt(iv, data, None)
    if ledger is not None:
        ledger.record(Op.AES_ENCRYPT, len(data))
    block = 8 if algorithm is EncryptionAlg.TRIPLEDES_CBC else 16
    pad = block - len(data) % block
    padded = data + fresh_bytes(pad - 1) + bytes([pad])
    iv = fresh_bytes(block)
    if block == 16:
        return iv + crypto.aes_cbc_encrypt(key, iv, padded)
    encryptor = Cipher(_triple_des(key), modes.CBC(iv)).encryptor()
    return iv + encryptor.update(padded) + encryptor.finalize()


def check_cipher_length(algorithm: EncryptionAlg, cipher: bytes) -> None:
    """Refuse a CipherValue too short, or not of whole blocks, for ``algorithm`` (public
    facts about the ciphertext, checked before anything is decrypted)."""
    if algorithm in _GCM:
        if len(cipher) < GCM_IV_BYTES + GCM_TAG_BYTES:
            raise InvalidSecurity("GCM ciphertext too short", check="cipher-length")
        return
    block = _block(algorithm)
    if len(cipher) < 2 * block or len(cipher) % block:
        raise InvalidSecurity("CBC ciphertext has a wrong length", check="cipher-length")


def plaintext_bound(algorithm: EncryptionAlg, cipher: bytes) -> int:
    """The length of the (padded) plaintext a ciphertext holds: all that its size tells."""
    overhead = GCM_IV_BYTES + GCM_TAG_BYTES if algorithm in _GCM else _block(algorithm)
    return max(len(cipher) - overhead, 0)


def _block(algorithm: EncryptionAlg) -> int:
    return 8 if algorithm is EncryptionAlg.TRIPLEDES_CBC else 16


def _decrypt(
    algorithm: EncryptionAlg, key: bytes, data: bytes, ledger: Ledger | None
) -> tuple[bytes, bool]:
    """(plaintext, valid): the padding or tag is checked without raising, and a CBC
    plaintext with bad padding comes back whole (the same length to parse as a good one)."""
    _check_key(algorithm, key)
    check_cipher_length(algorithm, data)
    if algorithm in _GCM:
        if ledger is not None:
            ledger.record(Op.AES_GCM_DECRYPT, len(data))
        try:
            return AESGCM(key).decrypt(data[:GCM_IV_BYTES], data[GCM_IV_BYTES:], None), True
        except InvalidTag:
            return b"", False
    if ledger is not None:
        ledger.record(Op.AES_DECRYPT, len(data))
    block = _block(algorithm)
    if block == 16:
        padded = crypto.aes_cbc_decrypt(key, data[:block], data[block:])
    else:
        decryptor = Cipher(_triple_des(key), modes.CBC(data[:block])).decryptor()
        padded = decryptor.update(data[block:]) + decryptor.finalize()
    pad = padded[-1]
    if 1 <= pad <= block:
        return padded[:-pad], True
    return padded, False


def decrypt_bytes(
    algorithm: EncryptionAlg, key: bytes, data: bytes, ledger: Ledger | None
) -> bytes:
    """Inverse of :func:`encrypt_bytes`; a wrong key, tag or padding is the one
    :func:`decryption_fault`."""
    plaintext, valid = _decrypt(algorithm, key, data, ledger)
    if not valid:
        raise decryption_fault()
    return plaintext


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


_ELEMENT_TYPE, _CONTENT_TYPE = EncryptedType.ELEMENT.value, EncryptedType.CONTENT.value


def read_encrypted_data(data: etree._Element, policy: EncryptionPolicy) -> EncryptedDataInfo:
    if data.tag != ENCRYPTED_DATA:
        raise InvalidSecurity(f"expected xenc:EncryptedData, got {data.tag}")
    parts = children_by_tag(data, _DATA_PARTS)
    method = required(parts, _METHOD, "xenc:EncryptionMethod")
    algorithm = rules.ENCRYPTION_BY_URI.get(method.get("Algorithm"))
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
    cipher = unb64(whole_text(value, "xenc:CipherValue"), "xenc:CipherValue")
    check_cipher_length(algorithm, cipher)
    return EncryptedDataInfo(
        data,
        algorithm,
        kind == _CONTENT_TYPE,
        key_info[0] if key_info is not None and len(key_info) else None,
        cipher,
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
    that now stands where the EncryptedData was (or its parent, for Content). Any failure is
    the one :func:`decryption_fault`, after the same work (see :class:`DecryptionStage`,
    which a receiver uses to cover the verification of what was decrypted as well)."""
    restored, failure = _restore(info, key, ledger)
    if restored is None:
        raise decryption_fault() from FailedCheck(failure, check="decryption")
    return restored


def _restore(
    info: EncryptedDataInfo, key: bytes, ledger: Ledger | None
) -> tuple[etree._Element | None, str]:
    """:func:`decrypt_element`: (the restored element, "") or (None, what failed) with the
    EncryptedData left in place. The plaintext is parsed whether its padding was good or
    not: the same work either way."""
    plaintext, valid = _decrypt(info.algorithm, key, info.cipher, ledger)
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
        wrapper = None
    if not valid:
        return None, "the padding or authentication tag is invalid"
    if wrapper is None:
        return None, "the plaintext is not well-formed UTF-8 XML"
    if info.content:
        parent.remove(info.element)
        if wrapper.text:
            parent.text = (parent.text or "") + wrapper.text
        for child in list(wrapper):
            parent.append(child)
        return parent, ""
    elements = [child for child in wrapper if isinstance(child.tag, str)]
    if len(elements) != 1 or (wrapper.text or "").strip():
        return None, "the plaintext of an Element is not one element"
    restored = elements[0]
    restored.tail = info.element.tail
    parent.replace(info.element, restored)
    return restored, ""


def charged_size(signed_info: etree._Element) -> int:
    """SignedInfo's size as charged: its markup and text counted in one linear walk. Not
    ``etree.tostring`` (lxml serializes a subtree in time quadratic in the namespaces in
    scope, a namespace flood's lever) nor its canonical form (work a refusal must not do)."""
    size = 0
    for el in signed_info.iter():
        tag = el.tag if isinstance(el.tag, str) else ""
        size += 2 * len(tag) + 5 + len(el.text or "") + len(el.tail or "")
        for name, value in el.attrib.items():
            size += len(name) + len(value) + 4
    return size


class DecryptionStage:
    """Context of a receiver from its first decryption until the signature has verified
    what was decrypted (``with DecryptionStage(ledger, parts) as stage:``).

    Inside, :meth:`decrypt` decrypts each part (an undecryptable one stays in place, to fail
    the signature's digest like a wrong plaintext does) and :meth:`require_signed` checks
    that every decrypted part lies in an element the signature verified. Any SecurityFault
    raised inside, or a part that did not decrypt, leaves as the one
    :func:`decryption_fault`; the ledger entries made inside are then replaced by the
    stage's public charge, the work the receiver does (decryption, parse, the SignedInfo's
    canonicalization and signature check, the digest of what decrypted) in sizes the
    message's public parts alone fix (the ciphertext's, the SignedInfo's as received, the
    key's), so every failure of a message costs the same simulated time whatever failed.
    (The success path keeps its real entries: no forged ciphertext reaches it.) With no
    parts, decryption never starts and faults pass through unchanged.

    ``signature`` is (the ds:Signature the receiver will verify, its key: bytes for an
    HMAC, else an RSA public key), for the charge.
    """

    def __init__(
        self,
        ledger: Ledger,
        parts: Sequence[EncryptedDataInfo],
        signature: tuple[etree._Element, object] | None = None,
    ) -> None:
        self.ledger = ledger
        self.active = bool(parts)
        self.failed = ""  # what failed to decrypt, for a debugger
        self.restored: list[etree._Element] = []
        self._mark = len(ledger.entries)
        self._parts = parts
        self._signature = signature

    def charge(self) -> list[tuple[str, int]]:
        """The public charge of a refused stage, in the order the work is done."""
        decrypted, digested = [], []
        for info in self._parts:
            size = plaintext_bound(info.algorithm, info.cipher)
            decrypt = Op.AES_GCM_DECRYPT if info.algorithm in _GCM else Op.AES_DECRYPT
            decrypted += [(decrypt.value, len(info.cipher)), (Op.XML_PARSE.value, size)]
            digested += [(Op.C14N.value, size), (Op.DIGEST.value, size)]
        verified = []
        if self._signature is not None:
            signature, key = self._signature
            signed_info = next(signature.iterchildren(_SIGNED_INFO), None)
            size = 0 if signed_info is None else charged_size(signed_info)
            verified = [(Op.C14N.value, size)]
            if isinstance(key, bytes):
                verified.append((Op.HMAC.value, size))
            elif isinstance(key, rsa.RSAPublicKey):
                verified.append((Op.RSA_VERIFY.value, key.key_size))
        return decrypted + verified + digested

    def __enter__(self) -> DecryptionStage:
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if not self.active or (error is None and not self.failed):
            return False
        if error is not None and not isinstance(error, SecurityFault):
            return False  # a bug, not a refusal
        del self.ledger.entries[self._mark :]
        self.ledger.extend(self.charge())
        # the cause stays on the exception, for a debugger; the peer sees the one fault
        cause = FailedCheck(self.failed, check="decryption") if self.failed else error
        raise decryption_fault() from cause

    def decrypt(self, info: EncryptedDataInfo, key: bytes) -> etree._Element | None:
        """Decrypt ``info`` in place (see :func:`decrypt_element`); None when it did not."""
        restored, failure = _restore(info, key, self.ledger)
        if restored is None:
            self.failed = self.failed or failure
        else:
            self.restored.append(restored)
        return restored

    def require_signed(self, targets: Sequence[etree._Element]) -> None:
        """Every decrypted part is, or lies inside, one of ``targets`` (what the signature
        verified): unsigned decrypted content would be an oracle again (and is not to be
        consumed)."""
        signed = {id(target) for target in targets}
        for restored in self.restored:
            if id(restored) not in signed and not any(
                id(ancestor) in signed for ancestor in restored.iterancestors()
            ):
                raise FailedCheck("decrypted content is not signed", check="decryption")


# --- EncryptedKey -----------------------------------------------------------------------


def _oaep(digest: str = ns.DigestAlg.SHA1.value, label: bytes | None = None) -> padding.OAEP:
    return padding.OAEP(
        mgf=padding.MGF1(hashes.SHA1()), algorithm=OAEP_DIGESTS[digest](), label=label or None
    )


def build_encrypted_key(
    session_key: bytes,
    recipient: rsa.RSAPublicKey,
    *,
    key_info: etree._Element | None,
    algorithm: KeyTransportAlg = KeyTransportAlg.RSA_OAEP_MGF1P,
    data_references: Sequence[str] = (),
    oaep_digest: str = ns.DigestAlg.SHA1.value,
    ledger: Ledger | None = None,
) -> etree._Element:
    """An xenc:EncryptedKey carrying ``session_key`` for ``recipient``.

    ``key_info`` names the recipient's certificate (an STR); ``data_references`` are the Ids
    of the EncryptedData it protects (a ReferenceList); ``oaep_digest`` the OAEP digest.
    """
    text, _ = encrypted_key_text(
        session_key,
        recipient,
        key_info=None if key_info is None else etree.tostring(key_info).decode(),
        algorithm=algorithm,
        data_references=data_references,
        oaep_digest=oaep_digest,
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
    oaep_digest: str = ns.DigestAlg.SHA1.value,
    ledger: Ledger | None = None,
) -> tuple[str, str]:
    """The text of :func:`build_encrypted_key` (``key_info``: the STR's text, or None) and
    its Id."""
    algorithm = KeyTransportAlg(algorithm)
    if ledger is not None:
        ledger.record(Op.RSA_ENCRYPT, recipient.key_size)
    if algorithm is KeyTransportAlg.RSA_OAEP_MGF1P:
        cipher = recipient.encrypt(session_key, _oaep(oaep_digest))
        method = (
            f'<xenc:EncryptionMethod Algorithm="{algorithm.value}"><ds:DigestMethod '
            f'xmlns:ds="{ns.DS}" Algorithm="{escape(oaep_digest)}"/></xenc:EncryptionMethod>'
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
    #: rsa-oaep-mgf1p's digest (a URI of OAEP_DIGESTS) and OAEPparams (the OAEP label)
    oaep_digest: str = ns.DigestAlg.SHA1.value
    oaep_params: bytes = b""


_DIGEST_METHOD = ns.qname(ns.DS, "DigestMethod")
_OAEP_PARAMS = ns.qname(ns.XENC, "OAEPparams")
_OAEP_PARTS = {_DIGEST_METHOD: "ds:DigestMethod", _OAEP_PARAMS: "xenc:OAEPparams"}


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
    digest, params = _oaep_parameters(method, algorithm, policy)
    key_info = one_child(ek, _KEY_INFO, "ds:KeyInfo", required=False)
    value = one_child(
        one_child(ek, _CIPHER_DATA, "xenc:CipherData"), _CIPHER_VALUE, "xenc:CipherValue"
    )
    return EncryptedKeyInfo(
        ek,
        algorithm,
        key_info[0] if key_info is not None and len(key_info) else None,
        unb64(whole_text(value, "xenc:CipherValue"), "xenc:CipherValue"),
        tuple(read_data_references(ek)),
        digest,
        params,
    )


def _oaep_parameters(
    method: etree._Element, algorithm: KeyTransportAlg, policy: EncryptionPolicy
) -> tuple[str, bytes]:
    """(digest URI, OAEPparams) of an EncryptionMethod (XML Encryption section 5.4.2): the
    ds:DigestMethod honoured, SHA-1 when absent; nothing else inside."""
    parts = children_by_tag(method, _OAEP_PARTS)
    for child in method:
        if child.tag not in _OAEP_PARTS or algorithm is not KeyTransportAlg.RSA_OAEP_MGF1P:
            raise InvalidSecurity(f"unexpected {child.tag!s:.100} in xenc:EncryptionMethod")
    digest = ns.DigestAlg.SHA1.value
    if _DIGEST_METHOD in parts:
        element = parts[_DIGEST_METHOD]
        digest = element.get("Algorithm") or ""
        if len(element) or (element.text or "").strip():
            raise InvalidSecurity("ds:DigestMethod of the OAEP padding must be empty")
        if digest not in OAEP_DIGESTS:
            raise UnsupportedAlgorithm(
                f"OAEP digest {digest[:100]!r} is not supported", check="algorithm"
            )
        if digest not in policy.oaep_digests:
            raise UnsupportedAlgorithm(f"OAEP digest {digest} not allowed", check="algorithm")
    params = b""
    if _OAEP_PARAMS in parts:
        params = unb64(whole_text(parts[_OAEP_PARAMS], "xenc:OAEPparams"), "xenc:OAEPparams")
    return digest, params


def decrypt_key(
    info: EncryptedKeyInfo,
    private_key: rsa.RSAPrivateKey,
    *,
    expected_bytes: int | None = None,
    policy: EncryptionPolicy = EncryptionPolicy(),
    ledger: Ledger | None = None,
) -> bytes:
    """The session key. A key that does not decrypt (RSA 1.5 or OAEP padding) or has the
    wrong size yields a random key instead of an error, so that the key transport is no
    oracle (Bleichenbacher; Manger for OAEP): the data decryption then fails, with the one
    fault of every decryption failure."""
    if private_key.key_size < policy.min_rsa_bits:
        raise InvalidSecurity("recipient RSA key below the policy minimum", check="key-size")
    if ledger is not None:
        ledger.record(Op.RSA_DECRYPT, private_key.key_size)
    random_key = fresh_bytes(expected_bytes or 32)  # drawn every time: the same work
    try:
        if info.algorithm is KeyTransportAlg.RSA_OAEP_MGF1P:
            key = private_key.decrypt(info.cipher, _oaep(info.oaep_digest, info.oaep_params))
        else:
            key = private_key.decrypt(info.cipher, padding.PKCS1v15())
    except ValueError:
        return random_key
    if expected_bytes is not None and len(key) != expected_bytes:
        return random_key
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
