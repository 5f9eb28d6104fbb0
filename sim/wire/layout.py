"""The layout of the Security header our senders write, and of a message protected with keys
derived from one source (a security context, a token), as ``sim.protocol.protect`` writes
it: a Security header of Timestamp, two DerivedKeyTokens (signature, encryption), a
ReferenceList and an HMAC Signature, and the Body's content encrypted.

:data:`HEADER_ORDER` is the one order of the header's children: the writer joins its parts
in it (:func:`header_children`), and :data:`SECURITY`, the pattern the fast reader
(``sim.wire.plain_shape``) matches, is made of the same order. :data:`SECURITY` and
:data:`BODY` name every element; the kernel finds them in one walk (:func:`find`) knowing no
element name itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
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


class Part(str, Enum):
    """What a Security header holds (a str Enum: hashed in C, as the writer looks parts up
    for every message)."""

    TIMESTAMP = "wsu:Timestamp"
    #: tokens the message carries: an EncryptedKey a DerivedKeyToken derives from, a SAML
    #: assertion, a UsernameToken
    TOKENS = "tokens"
    SENDER_TOKEN = "wsse:BinarySecurityToken"
    ENCRYPTED_KEY = "xenc:EncryptedKey"
    SIGNING_KEY = "wsc:DerivedKeyToken (signature)"
    ENCRYPTING_KEY = "wsc:DerivedKeyToken (encryption)"
    REFERENCE_LIST = "xenc:ReferenceList"
    #: header blocks sent encrypted (a UsernameToken as an xenc:EncryptedData)
    ENCRYPTED_TOKENS = "encrypted tokens"
    SIGNATURE = "ds:Signature"


#: The order of the Security header's children, as WSS 1.1 section 5 (prepending) and
#: WS-I BSP 1.1 R5205 ask: every token before each reference to it. A DerivedKeyToken
#: follows the token it derives from; the ReferenceList follows the DerivedKeyToken whose
#: key decrypts, and precedes the encrypted header blocks it names (a receiver that walks
#: the header in order, as WSS4J does, decrypts them there and then reads the token they
#: held); the Signature comes last, after every token its references and key name.
HEADER_ORDER: tuple[Part, ...] = tuple(Part)


def header_children(parts: Mapping[Part, str]) -> str:
    """The Security header's children: the text of each part, in :data:`HEADER_ORDER`."""
    return "".join(parts.get(part, "") for part in HEADER_ORDER)


#: What the fast reader matches of each part (the parts of a plain derived-key message).
_PLAIN = {
    Part.TIMESTAMP: Pattern(
        ns.WSU,
        "Timestamp",
        keep=True,
        children=(_text(ns.WSU, "Created"), _text(ns.WSU, "Expires")),
    ),
    Part.SIGNING_KEY: _DKT,
    Part.ENCRYPTING_KEY: _DKT,
    Part.REFERENCE_LIST: Pattern(
        ns.XENC, "ReferenceList", children=(_empty(ns.XENC, "DataReference", "URI"),)
    ),
    Part.SIGNATURE: _SIGNATURE,
}
#: The Security header's children in a plain derived-key message, in :data:`HEADER_ORDER`.
SECURITY = Pattern(
    None, None, children=tuple(_PLAIN[part] for part in HEADER_ORDER if part in _PLAIN)
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
