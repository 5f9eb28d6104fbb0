"""The sending side of message protection: asymmetric (the sender's RSA signature, the Body
encrypted under a per-message EncryptedKey) and symmetric (DerivedKeyTokens, HMAC, AES).

A message is written as text whether its envelope is still text (see ``soap.Envelope``) or
already a tree: only where the signed parts' digests come from, how the Body's content is
read and replaced, and where the Security header goes differ (:class:`_Draft`,
:class:`_Tree`). Every part a sender writes is in exclusive canonical form, so its digest is
the digest of its text. The Security header's children go in the one order of
``sim.wire.layout.HEADER_ORDER`` (every token before each reference to it), each written by
the wire layer's one writer of that element.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lxml import etree

from sim.wire import dsig, ns, rules, sc, wss, xenc
from sim.wire.keys import Identity
from sim.wire.layout import Part, header_children
from sim.wire.ledger import Ledger
from sim.wire.ns import DigestAlg, ValueType
from sim.wire.soap import Envelope, SoapVersion
from sim.wire.suites import AlgorithmSuite, suite
from sim.wire.xmlutil import fragment, fresh_bytes, get_id, new_id

DEFAULT_SUITE = suite("Basic256")
KeyLog = Callable[[str, str, bytes], None]
# an Enum member's ``.value`` is a Python-level property: read once, not per message
_DKT_VALUE_TYPE = ValueType.DKT.value
_SOAP_URIS = {version: version.value for version in SoapVersion}


@dataclass(frozen=True)
class CertificateRecipient:
    """A peer known only by its certificate (learned from a BinarySecurityToken)."""

    certificate: object

    @property
    def public_key(self):
        return self.certificate.public_key()

    @property
    def thumbprint_sha1(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return hashlib.sha1(self.certificate.public_bytes(serialization.Encoding.DER)).digest()

    @property
    def common_name(self) -> str:
        from cryptography.x509.oid import NameOID

        names = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return names[0].value if names else ""


def security_header(envelope: Envelope, now: float, ttl: float = 300.0, children: str = ""):
    """Add a Security header with a Timestamp (then the elements ``children`` spells) to an
    envelope built as a tree; returns (security, timestamp)."""
    security = wss.add_security_header(envelope, wss.timestamp_text(now, ttl) + children)
    return security, security[0]


_ACTION = ns.qname(ns.WSA, "Action")
_RELATES_TO = ns.qname(ns.WSA, "RelatesTo")


def _signed_parts(envelope: Envelope, timestamp, extra: Sequence[etree._Element]):
    """Body, Timestamp, ``extra``, wsa:Action and (in a reply) wsa:RelatesTo, which binds
    the reply to its request."""
    parts = [envelope.body, timestamp, *extra]
    parts += [h for h in envelope.header.iterchildren(_ACTION, _RELATES_TO)]
    return parts


def _text(part: etree._Element | str) -> str:
    """A part given as an element or as its text, as text: an element inside a document is
    written as moving it into the message would write it, declaring only the namespaces it
    uses of those it inherits (not every one in scope, as serializing it in place does)."""
    if isinstance(part, str):
        return part
    if part.getparent() is not None:
        part = copy.deepcopy(part)
    return etree.tostring(part).decode()


class _Draft:
    """An envelope still in text: its signed parts are digested from their canonical text."""

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope
        self.draft = envelope.draft

    def digests(
        self, ts_id: str, timestamp: str, extra: Sequence[etree._Element], digest, ledger
    ) -> list[tuple[str, bytes]]:
        """(id, digest) of what a message signs, in :func:`_signed_parts`' order."""
        draft = self.draft
        out = [
            (draft.body_id, dsig.text_digest(draft.canonical_body(), digest, ledger)),
            (ts_id, dsig.text_digest(timestamp, digest, ledger)),
        ]
        out += [(get_id(part), rules.element_digest(part, digest, (), ledger)) for part in extra]
        for part in (draft.action, draft.relates_to):
            if part is not None:
                out.append((part[0], dsig.text_digest(part[1], digest, ledger)))
        return out

    def body_content(self) -> bytes:
        return self.draft.serialized_content().encode()

    def replace_body(self, text: str) -> None:
        self.draft.replace_content(text)

    def send(self, children: str, ledger: Ledger) -> bytes:
        version = self.envelope.version
        self.draft.headers.insert(
            0, wss.security_header_text(_SOAP_URIS[version], version.prefix, children)
        )
        return self.envelope.to_bytes(ledger)


class _Tree:
    """An envelope built as a tree: its signed parts are digested where they stand."""

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope

    def digests(
        self, ts_id: str, timestamp: str, extra: Sequence[etree._Element], digest, ledger
    ) -> list[tuple[str, bytes]]:
        parts = _signed_parts(self.envelope, fragment(timestamp), extra)
        return [(get_id(part), rules.element_digest(part, digest, (), ledger)) for part in parts]

    def body_content(self) -> bytes:
        return xenc.serialized_content(self.envelope.body)

    def replace_body(self, text: str) -> None:
        body = self.envelope.body
        for child in list(body):
            body.remove(child)
        body.text = None
        body.append(fragment(text))

    def send(self, children: str, ledger: Ledger) -> bytes:
        wss.add_security_header(self.envelope, children)
        return self.envelope.to_bytes(ledger)


def _message(envelope: Envelope) -> _Draft | _Tree:
    draft = envelope.draft
    return _Draft(envelope) if draft is not None and draft.signable else _Tree(envelope)


def _encrypt_body(
    message: _Draft | _Tree,
    key: bytes,
    suite_: AlgorithmSuite,
    key_info: str | None,
    ledger: Ledger,
    data_id: str | None = None,
) -> str:
    """Encrypt the Body's content in place (an EncryptedData of Type Content); its Id."""
    text, data_id = xenc.encrypted_data_text(
        message.body_content(),
        key,
        algorithm=suite_.encryption,
        content=True,
        key_info=key_info,
        data_id=data_id,
        ledger=ledger,
    )
    message.replace_body(text)
    return data_id


# --- asymmetric ------------------------------------------------------------------------


def protect_asymmetric(
    envelope: Envelope,
    *,
    sender: Identity,
    recipient: Identity | CertificateRecipient | None,
    now: float,
    ledger: Ledger,
    suite_: AlgorithmSuite = DEFAULT_SUITE,
    extra_signed: Sequence[etree._Element] = (),
    tokens: Sequence[etree._Element] = (),
    signing_key=None,
    key_info: etree._Element | str | None = None,
    keylog: KeyLog | None = None,
) -> bytes:
    """Sign Body, Timestamp, Action (and ``extra_signed``) with the sender's RSA key, and
    encrypt the Body content for ``recipient`` with a per-message EncryptedKey.

    ``tokens`` go into the Security header after the Timestamp. ``signing_key``/``key_info``
    override the sender's certificate (an ephemeral key whose KeyInfo points at a SAML
    assertion, for holder-of-key public key)."""
    message = _message(envelope)
    ts_id = new_id("TS-")
    parts = {Part.TIMESTAMP: wss.timestamp_text(now, ts_id=ts_id)}
    parts[Part.TOKENS] = "".join(_text(token) for token in tokens)
    if key_info is None:
        parts[Part.SENDER_TOKEN], bst_id = wss.binary_security_token_text(sender)
        key_info = wss.str_reference_text(f"#{bst_id}", ValueType.X509V3.value)
    parts[Part.SIGNATURE] = dsig.sign_text(
        message.digests(ts_id, parts[Part.TIMESTAMP], extra_signed, suite_.digest, ledger),
        signing_key or sender.private_key,
        algorithm=suite_.asymmetric_signature,
        digest=suite_.digest,
        key_info=_text(key_info),
        ledger=ledger,
    )
    if recipient is not None:
        session_key = fresh_bytes(suite_.encryption_key_bytes)
        data_id = _encrypt_body(message, session_key, suite_, None, ledger)
        parts[Part.ENCRYPTED_KEY], key_id = xenc.encrypted_key_text(
            session_key,
            recipient.public_key,
            key_info=wss.str_key_identifier_text(
                recipient.thumbprint_sha1, ValueType.THUMBPRINT_SHA1.value
            ),
            algorithm=suite_.asymmetric_key_wrap,
            data_references=[data_id],
            ledger=ledger,
        )
        if keylog is not None:
            keylog("session-key", key_id, session_key)
    return message.send(header_children(parts), ledger)


# --- symmetric (derived keys) ------------------------------------------------------------


def protect_symmetric(
    envelope: Envelope,
    *,
    secret: bytes,
    source_reference: Callable[[], etree._Element | str],
    now: float,
    ledger: Ledger,
    suite_: AlgorithmSuite = DEFAULT_SUITE,
    derive: bool = True,
    encrypt: bool = True,
    tokens: Sequence[etree._Element] = (),
    extra_signed: Sequence[etree._Element] = (),
    encrypt_tokens: Sequence[etree._Element] = (),
    keylog: KeyLog | None = None,
    direction: sc.Direction | None = None,
) -> bytes:
    """Sign with HMAC-SHA1 and encrypt with AES under keys derived from ``secret``
    (a fresh DerivedKeyToken each for signature and encryption, pointing at the source
    through ``source_reference()``, an STR element or its text, and carrying the wsc:Label
    of ``direction``: a request's keys are not a reply's; by default a message carrying
    wsa:RelatesTo is a reply, any other a request); with ``derive=False`` the secret is used
    directly.

    ``tokens`` (an EncryptedKey the keys derive from, an assertion) go into the Security
    header before the DerivedKeyTokens. ``encrypt_tokens`` (a UsernameToken sent inside the
    protected traffic) are signed, then encrypted into the header after the ReferenceList
    naming them."""
    message = _message(envelope)
    extra_signed = [*extra_signed, *encrypt_tokens]
    data_ids = [new_id("ED-") for _ in range(len(encrypt_tokens) + 1)] if encrypt else []
    enc_length = suite_.encryption_key_bytes
    parts: dict[Part, str] = {}
    if derive:
        source = _text(source_reference())
        label = sc.LABELS[direction or _direction_of(envelope)]
        sig_length = suite_.signature_derived_key_bits // 8
        parts[Part.SIGNING_KEY], sig_key, sig_info = _derived_key(
            secret, source, sig_length, label, ledger, keylog
        )
        if encrypt:
            parts[Part.ENCRYPTING_KEY], enc_key, enc_info = _derived_key(
                secret, source, enc_length, label, ledger, keylog
            )
    else:
        sig_key, sig_info = secret, _text(source_reference())
        enc_key, enc_info = secret[:enc_length], sig_info
    if encrypt:
        parts[Part.REFERENCE_LIST] = xenc.reference_list_text(data_ids)
    ts_id = new_id("TS-")
    parts[Part.TIMESTAMP] = wss.timestamp_text(now, ts_id=ts_id)
    parts[Part.TOKENS] = "".join(_text(token) for token in tokens)
    parts[Part.SIGNATURE] = dsig.sign_text(
        message.digests(ts_id, parts[Part.TIMESTAMP], extra_signed, suite_.digest, ledger),
        sig_key,
        algorithm=suite_.symmetric_signature,
        digest=suite_.digest,
        key_info=sig_info,
        ledger=ledger,
    )
    if encrypt:
        parts[Part.ENCRYPTED_TOKENS] = "".join(
            xenc.encrypted_data_text(
                _text(token).encode(),
                enc_key,
                algorithm=suite_.encryption,
                key_info=enc_info,
                data_id=data_id,
                ledger=ledger,
            )[0]
            for token, data_id in zip(encrypt_tokens, data_ids, strict=False)
        )
        _encrypt_body(message, enc_key, suite_, enc_info, ledger, data_ids[-1])
    return message.send(header_children(parts), ledger)


def _derived_key(
    secret: bytes, source: str, length: int, label: bytes, ledger: Ledger, keylog: KeyLog | None
) -> tuple[str, bytes, str]:
    """A fresh DerivedKeyToken from the source the STR text ``source`` names, the key it
    names (from its nonce, not read back) and the STR text referring to it."""
    nonce = fresh_bytes(16)
    text, dkt_id = sc.dkt_text(source, length=length, nonce=nonce, label=label)
    key = sc.derive_key(secret, nonce=nonce, length=length, label=label, ledger=ledger)
    if keylog is not None:
        keylog("derived-key", dkt_id, key)
    return text, key, wss.str_reference_text(f"#{dkt_id}", _DKT_VALUE_TYPE)


def _direction_of(envelope: Envelope) -> sc.Direction:
    """A message answering another (it carries wsa:RelatesTo) is a reply, any other a
    request (the servers refuse a request carrying wsa:RelatesTo)."""
    draft = envelope.draft
    if draft is not None:
        answers = draft.relates_to is not None
    else:
        answers = next(envelope.header.iterchildren(_RELATES_TO), None) is not None
    return sc.Direction.REPLY if answers else sc.Direction.REQUEST


__all__ = [
    "DEFAULT_SUITE",
    "CertificateRecipient",
    "DigestAlg",
    "protect_asymmetric",
    "protect_symmetric",
    "security_header",
]
