"""Writing XML Encryption: EncryptedData (AES-CBC, AES-GCM, 3DES) of whole elements or of
their content, EncryptedKey (RSA key transport), ReferenceList, and WSS 1.1 EncryptedHeader.

Each element has one writer, returning its text (the senders write messages as text, see
``sim.protocol.protect``); :func:`encrypt_element` and :func:`encrypt_header` put that text in
place of an element of a tree. The ciphers are in ``sim.wire.ciphers``, the reading side in
``sim.wire.decryption`` (both re-exported here, where the callers find them).
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from sim.wire import ns
from sim.wire.ciphers import (
    DECRYPTION_FAILED,
    GCM,
    GCM_IV_BYTES,
    GCM_TAG_BYTES,
    KEY_BYTES,
    OAEP_DIGESTS,
    EncryptionPolicy,
    check_cipher_length,
    decrypt_bytes,
    decryption_fault,
    encrypt_bytes,
    oaep,
    plaintext_bound,
)
from sim.wire.decryption import (
    ENCRYPTED_DATA,
    ENCRYPTED_HEADER,
    ENCRYPTED_KEY,
    REFERENCE_LIST,
    DecryptionStage,
    EncryptedDataInfo,
    EncryptedKeyInfo,
    charged_size,
    decrypt_element,
    decrypt_header,
    decrypt_key,
    read_data_references,
    read_encrypted_data,
    read_encrypted_key,
)
from sim.wire.ledger import Ledger, Op
from sim.wire.ns import EncryptedType, EncryptionAlg, KeyTransportAlg
from sim.wire.xmlutil import b64, ensure_id, escape, fragment, new_id

__all__ = [
    "DECRYPTION_FAILED",
    "ENCRYPTED_DATA",
    "ENCRYPTED_HEADER",
    "ENCRYPTED_KEY",
    "GCM",
    "GCM_IV_BYTES",
    "GCM_TAG_BYTES",
    "KEY_BYTES",
    "OAEP_DIGESTS",
    "REFERENCE_LIST",
    "DecryptionStage",
    "EncryptedDataInfo",
    "EncryptedKeyInfo",
    "EncryptionPolicy",
    "charged_size",
    "check_cipher_length",
    "decrypt_bytes",
    "decrypt_element",
    "decrypt_header",
    "decrypt_key",
    "decryption_fault",
    "encrypt_bytes",
    "encrypt_element",
    "encrypt_header",
    "encrypted_data_text",
    "encrypted_key_text",
    "plaintext_bound",
    "read_data_references",
    "read_encrypted_data",
    "read_encrypted_key",
    "reference_list_text",
]


#: (an Enum member's ``.value`` is a Python-level property; a StrEnum member formats as its
#: value in C, as ``Algorithm="{algorithm}"`` below does)
_CONTENT, _ELEMENT = EncryptedType.CONTENT.value, EncryptedType.ELEMENT.value


# --- EncryptedData ----------------------------------------------------------------------


def encrypted_data_text(
    plaintext: bytes,
    key: bytes,
    *,
    algorithm: EncryptionAlg = EncryptionAlg.AES256_CBC,
    content: bool = False,
    key_info: str | None = None,
    data_id: str | None = None,
    ledger: Ledger | None = None,
) -> tuple[str, str]:
    """An xenc:EncryptedData of ``plaintext`` (a serialized element, or with ``content`` an
    element's content), with ``key_info`` (text, or None for no ds:KeyInfo), and its Id
    (``data_id``, or a fresh one drawn after the cipher's IV)."""
    if type(algorithm) is not EncryptionAlg:
        algorithm = EncryptionAlg(algorithm)
    if ledger is not None:
        ledger.record(Op.XML_SERIALIZE, len(plaintext))
    cipher = encrypt_bytes(algorithm, key, plaintext, ledger)
    data_id = escape(data_id) if data_id else new_id("ED-")
    kind = _CONTENT if content else _ELEMENT
    info = "" if key_info is None else f'<ds:KeyInfo xmlns:ds="{ns.DS}">{key_info}</ds:KeyInfo>'
    return (
        f'<xenc:EncryptedData xmlns:xenc="{ns.XENC}" Id="{data_id}" Type="{kind}">'
        f'<xenc:EncryptionMethod Algorithm="{algorithm}"/>{info}'
        f"<xenc:CipherData><xenc:CipherValue>{b64(cipher)}</xenc:CipherValue></xenc:CipherData>"
        "</xenc:EncryptedData>"
    ), data_id


def serialized_content(element: etree._Element) -> bytes:
    """An element's content as :func:`encrypt_element` encrypts it: its text, then each
    child as lxml serializes it on its own."""
    return escape(element.text or "").encode() + b"".join(
        etree.tostring(child) for child in element
    )


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
    """Replace ``target`` (or, with ``content=True``, its children and text) by the
    xenc:EncryptedData :func:`encrypted_data_text` writes of it; return that element.
    ``key_info`` goes into its ds:KeyInfo: an element, or its text."""
    plaintext = serialized_content(target) if content else etree.tostring(target, with_tail=False)
    if isinstance(key_info, etree._Element):
        key_info = etree.tostring(key_info).decode()
    text, _ = encrypted_data_text(
        plaintext,
        key,
        algorithm=algorithm,
        content=content,
        key_info=key_info,
        data_id=data_id,
        ledger=ledger,
    )
    data = fragment(text)
    if content:
        for child in list(target):
            target.remove(child)
        target.text = None
        target.append(data)
    else:
        data.tail = target.tail
        target.getparent().replace(target, data)
    return data


# --- EncryptedKey, ReferenceList --------------------------------------------------------


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
    """An xenc:EncryptedKey carrying ``session_key`` for ``recipient``, and its Id.

    ``key_info`` names the recipient's certificate (an STR's text, or None for no KeyInfo);
    ``data_references`` are the Ids of the EncryptedData it protects (a ReferenceList);
    ``oaep_digest`` the OAEP digest.
    """
    algorithm = KeyTransportAlg(algorithm)
    if ledger is not None:
        ledger.record(Op.RSA_ENCRYPT, recipient.key_size)
    if algorithm is KeyTransportAlg.RSA_OAEP_MGF1P:
        cipher = recipient.encrypt(session_key, oaep(oaep_digest))
        method = (
            f'<xenc:EncryptionMethod Algorithm="{algorithm.value}"><ds:DigestMethod '
            f'xmlns:ds="{ns.DS}" Algorithm="{escape(oaep_digest)}"/></xenc:EncryptionMethod>'
        )
    else:
        cipher = recipient.encrypt(session_key, padding.PKCS1v15())
        method = f'<xenc:EncryptionMethod Algorithm="{algorithm.value}"/>'
    key_id = new_id("EK-")
    info = "" if key_info is None else f'<ds:KeyInfo xmlns:ds="{ns.DS}">{key_info}</ds:KeyInfo>'
    references = reference_list_text(data_references, declare=False) if data_references else ""
    return (
        f'<xenc:EncryptedKey xmlns:xenc="{ns.XENC}" Id="{key_id}">{method}{info}'
        f"<xenc:CipherData><xenc:CipherValue>{b64(cipher)}</xenc:CipherValue></xenc:CipherData>"
        f"{references}</xenc:EncryptedKey>"
    ), key_id


def reference_list_text(ids: Sequence[str], *, declare: bool = True) -> str:
    """An xenc:ReferenceList of DataReferences to ``ids`` (without its namespace declaration
    when ``declare`` is false: inside an EncryptedKey, which makes it)."""
    declaration = f' xmlns:xenc="{ns.XENC}"' if declare else ""
    references = "".join(f'<xenc:DataReference URI="#{escape(i)}"/>' for i in ids)
    return f"<xenc:ReferenceList{declaration}>{references}</xenc:ReferenceList>"


# --- EncryptedHeader (WSS 1.1) ------------------------------------------------------------


def encrypt_header(
    header_block: etree._Element,
    key: bytes,
    *,
    algorithm: EncryptionAlg = EncryptionAlg.AES256_CBC,
    key_info: etree._Element | str | None = None,
    ledger: Ledger | None = None,
) -> etree._Element:
    """Wrap ``header_block`` in a wsse11:EncryptedHeader holding its EncryptedData."""
    wrapper = etree.Element(ENCRYPTED_HEADER, nsmap={"k": ns.WSSE11})
    ensure_id(wrapper, prefix="EH-")
    header_block.addprevious(wrapper)
    wrapper.append(header_block)
    encrypt_element(header_block, key, algorithm=algorithm, key_info=key_info, ledger=ledger)
    return wrapper
