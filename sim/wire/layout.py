"""The layout of a message protected with keys derived from one source (a security
context, a token), as ``sim.protocol.protection.protect_symmetric`` writes it: a Security
header of Timestamp, two DerivedKeyTokens (signature, encryption), a ReferenceList and an
HMAC Signature, and the Body's content encrypted. :data:`SECURITY` and :data:`BODY` name
every element; the kernel finds them in one walk (:func:`find`) for the fast reader
(``sim.wire.plain_shape``) knowing no element name itself.
"""

from __future__ import annotations

from typing import NamedTuple

from lxml import etree

import sim.crypto as crypto
from sim.crypto import Pattern
from sim.wire import ns

MAX_REFERENCES = 16


def _token_reference() -> Pattern:
    """A SecurityTokenReference holding one empty wsse:Reference: (URI, ValueType)."""
    reference = Pattern(ns.WSSE, "Reference", attributes=(("URI", None), ("ValueType", None)))
    return Pattern(
        ns.WSSE, "SecurityTokenReference", children=(reference._replace(content="empty"),)
    )


def _empty(namespace: str, local: str, attribute: str = "Algorithm") -> Pattern:
    return Pattern(namespace, local, attributes=((attribute, None),), content="empty")


def _text(namespace: str, local: str) -> Pattern:
    return Pattern(namespace, local, content="text")


_DKT = Pattern(
    ns.WSC,
    "DerivedKeyToken",
    attributes=(("Id", ns.WSU), ("Algorithm", None)),
    children=(
        _token_reference(),
        *(_text(ns.WSC, local) for local in ("Offset", "Length", "Label", "Nonce")),
    ),
)
_SIGNATURE = Pattern(
    ns.DS,
    "Signature",
    keep=True,
    children=(
        Pattern(
            ns.DS,
            "SignedInfo",
            keep=True,
            children=(
                _empty(ns.DS, "CanonicalizationMethod"),
                _empty(ns.DS, "SignatureMethod"),
                Pattern(
                    ns.DS,
                    "Reference",
                    attributes=(("URI", None),),
                    children=(
                        Pattern(ns.DS, "Transforms", children=(_empty(ns.DS, "Transform"),)),
                        _empty(ns.DS, "DigestMethod"),
                        _text(ns.DS, "DigestValue"),
                    ),
                    most=MAX_REFERENCES,
                ),
            ),
        ),
        _text(ns.DS, "SignatureValue"),
        Pattern(ns.DS, "KeyInfo", children=(_token_reference(),)),
    ),
)
#: The Security header's children, in the order the senders write them.
SECURITY = Pattern(
    None,
    None,
    children=(
        Pattern(
            ns.WSU,
            "Timestamp",
            keep=True,
            children=(_text(ns.WSU, "Created"), _text(ns.WSU, "Expires")),
        ),
        _DKT,  # the signature's key
        _DKT,  # the encryption's key
        Pattern(ns.XENC, "ReferenceList", children=(_empty(ns.XENC, "DataReference", "URI"),)),
        _SIGNATURE,
    ),
)
#: The Body: one EncryptedData of its content.
BODY = Pattern(
    None,
    None,
    children=(
        Pattern(
            ns.XENC,
            "EncryptedData",
            keep=True,
            attributes=(("Id", None), ("Type", None)),
            children=(
                _empty(ns.XENC, "EncryptionMethod"),
                Pattern(ns.DS, "KeyInfo", children=(_token_reference(),)),
                Pattern(ns.XENC, "CipherData", children=(_text(ns.XENC, "CipherValue"),)),
            ),
        ),
    ),
)
SECURITY_LAYOUT = crypto.compile_layout(SECURITY)
BODY_LAYOUT = crypto.compile_layout(BODY)


class FoundDkt(NamedTuple):
    """A DerivedKeyToken as written: every value the text the message carries."""

    id: str | None
    algorithm: str | None
    source_uri: str | None
    source_value_type: str | None
    offset: str | None
    length: str | None
    label: str | None
    nonce: str | None


class DerivedKeyMessage(NamedTuple):
    """The parts of a message of this layout, as :func:`find` finds them (the captures of
    :data:`SECURITY` then :data:`BODY`, in order): every value the text as written."""

    timestamp: etree._Element
    created: str | None
    expires: str | None
    signing_dkt: FoundDkt
    encrypting_dkt: FoundDkt
    data_reference: str | None
    signature: etree._Element
    signed_info: etree._Element
    c14n: str | None
    signature_method: str | None
    #: (URI, Transform, DigestMethod, DigestValue) of each ds:Reference
    references: tuple[tuple[str | None, str | None, str | None, str | None], ...]
    signature_value: str | None
    key_uri: str | None
    key_value_type: str | None
    encrypted_data: etree._Element
    data_id: str | None
    data_type: str | None
    data_method: str | None
    data_key_uri: str | None
    data_key_value_type: str | None
    cipher_value: str | None


_DKT_FIELDS = len(FoundDkt._fields)


def find(security: etree._Element, body: etree._Element) -> DerivedKeyMessage | None:
    """The parts of a message of this layout (a wsse:Security header and a SOAP Body), or
    None for any other layout: nothing but the layout's elements, whitespace text between
    them, and plain-text values."""
    header = crypto.match_layout(security, SECURITY_LAYOUT)
    if header is None:
        return None
    content = crypto.match_layout(body, BODY_LAYOUT)
    if content is None:
        return None
    # built with _make: a NamedTuple's __new__ costs several times more
    signing_end = 3 + _DKT_FIELDS
    encrypting_end = signing_end + _DKT_FIELDS
    return DerivedKeyMessage._make(
        (
            *header[:3],
            FoundDkt._make(header[3:signing_end]),
            FoundDkt._make(header[signing_end:encrypting_end]),
            *header[encrypting_end:],
            *content,
        )
    )
