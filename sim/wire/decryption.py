"""Reading XML Encryption: EncryptedData and EncryptedKey read strictly, the session key
unwrapped, and the :class:`DecryptionStage` a receiver decrypts in.

From the first decryption until the signature has authenticated every decrypted part,
whatever fails (CBC padding, a GCM tag, plaintext that is not well-formed UTF-8 XML, a
digest, the signature, a decrypted part no signature covers) gives one fault with one text,
charged the same work, so that the receiver is no decryption oracle (Jager and Somorovsky,
"How to break XML Encryption", CCS 2011). The key transport is no oracle either: an
EncryptedKey that does not decrypt yields a random key (Bleichenbacher, Manger), and the
data decryption then fails. ``sim.wire.xenc`` writes what is read here.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from sim.errors import FailedCheck, InvalidSecurity, SecurityFault, UnsupportedAlgorithm
from sim.wire import ns, rules
from sim.wire.ciphers import (
    GCM,
    OAEP_DIGESTS,
    EncryptionPolicy,
    check_cipher_length,
    decrypt_checked,
    decryption_fault,
    oaep,
    plaintext_bound,
)
from sim.wire.ledger import Ledger, Op
from sim.wire.ns import EncryptedType, EncryptionAlg, KeyTransportAlg
from sim.wire.xmlparse import DEFAULT_LIMITS, parse
from sim.wire.xmlutil import (
    children_by_tag,
    fresh_bytes,
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
_ANY_POLICY = EncryptionPolicy()
_DATA_PARTS = {
    _METHOD: "xenc:EncryptionMethod",
    _KEY_INFO: "ds:KeyInfo",
    _CIPHER_DATA: "xenc:CipherData",
}


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
    plaintext, valid = decrypt_checked(info.algorithm, key, info.cipher, ledger)
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
            decrypt = Op.AES_GCM_DECRYPT if info.algorithm in GCM else Op.AES_DECRYPT
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
    policy: EncryptionPolicy = _ANY_POLICY,
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
            key = private_key.decrypt(info.cipher, oaep(info.oaep_digest, info.oaep_params))
        else:
            key = private_key.decrypt(info.cipher, padding.PKCS1v15())
    except ValueError:
        return random_key
    if expected_bytes is not None and len(key) != expected_bytes:
        return random_key
    return key


def decrypt_header(
    wrapper: etree._Element, key: bytes, policy: EncryptionPolicy, ledger: Ledger | None = None
) -> etree._Element:
    """Restore the header block of a wsse11:EncryptedHeader in its place."""
    data = one_child(wrapper, ENCRYPTED_DATA, "xenc:EncryptedData")
    restored = decrypt_element(read_encrypted_data(data, policy), key, ledger=ledger)
    wrapper.addprevious(restored)
    wrapper.getparent().remove(wrapper)
    return restored
