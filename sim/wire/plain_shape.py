"""The fast reader of the plain derived-key shape: a message as wssim's senders protect it
with keys derived from one source (a security context, a token): a Security header of
Timestamp, two DerivedKeyTokens (signature, encryption; each with the wsc:Label of its
direction), a ReferenceList and an HMAC Signature, and the Body's content encrypted.

``sim.wire.layout`` finds the parts in one walk (:func:`~sim.wire.layout.find`); :func:`read`
then makes the receiver's checks on what it found, with the outcome of the general reader
(``sim.protocol.unprotect.unprotect_symmetric`` with its callbacks): the same keys, the same
ledger entries in the same order, the same typed fault at the same step. Every check that
needs neither a secret nor the decrypted content comes first; when one fails, :func:`read`
returns None having done nothing, and the general reader runs (and names the fault). Then,
as there, both keys are derived, and the decryption and everything up to the verified
signature make one :class:`~sim.wire.decryption.DecryptionStage` (one fault, the same charge,
whatever failed). The checks are the general readers' own (``sim.wire.rules`` and the
public checks of ``sc``, ``wss``, ``ciphers`` and ``decryption``), so that one rule is
written once.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import NamedTuple

from lxml import etree

import sim.crypto as crypto
from sim.errors import FailedCheck, InvalidSecurity
from sim.wire import ciphers, decryption, dsig, layout, rules, sc, wss
from sim.wire.ledger import Ledger, Op
from sim.wire.ns import C14N, DigestAlg, EncryptedType, SignatureAlg
from sim.wire.suites import AlgorithmSuite
from sim.wire.xmlutil import parse_time, unb64

_EXCLUSIVE = C14N.EXCLUSIVE.value
_CONTENT = EncryptedType.CONTENT.value


class _Elsewhere(Exception):
    """The message is to be read by the general reader."""


class _Key(NamedTuple):
    """A DerivedKeyToken's key parameters, checked as ``sc.read_dkt`` checks them."""

    dkt_id: str
    source: wss.TokenReference
    nonce: bytes
    length: int
    offset: int


class _Checked(NamedTuple):
    """What the checks needing no secret established."""

    stamp: wss.Timestamp
    signing: _Key
    encrypting: _Key
    data: decryption.EncryptedDataInfo
    signature: etree._Element
    signed_info: etree._Element
    algorithm: SignatureAlg
    references: list[tuple[str, DigestAlg, bytes]]
    value: bytes


def _dkt(dkt: layout.FoundDkt, expected_length: int, label: bytes) -> _Key:
    """A DerivedKeyToken's key parameters, as ``sc.read_dkt`` reads them, when its length is
    the one the algorithm needs and its label ``label``."""
    if (
        dkt.id is None
        or dkt.algorithm is not None
        or not dkt.source_uri
        or (dkt.label or "").strip().encode() != label
    ):
        raise _Elsewhere
    length = sc.check_length(rules.token_number((dkt.length or "").strip(), "wsc:Length"))
    offset = rules.token_number((dkt.offset or "").strip(), "wsc:Offset")
    offset = sc.key_offset(offset, None, length)
    if length != expected_length:
        raise _Elsewhere
    nonce = sc.check_nonce(unb64((dkt.nonce or "").strip(), "wsc:Nonce"))
    reference = wss.TokenReference(uri=dkt.source_uri, value_type=dkt.source_value_type)
    return _Key(dkt.id, reference, nonce, length, offset)


def _checked(
    found: layout.DerivedKeyMessage,
    envelope_root,
    now: float,
    suite_: AlgorithmSuite,
    policy,
    label: bytes,
) -> _Checked:
    """Every check of the general reader that needs neither a secret nor the decrypted
    content; raises (anything) when one fails."""
    stamp = wss.Timestamp(
        parse_time((found.created or "").strip(), "wsu:Created"),
        parse_time((found.expires or "").strip(), "wsu:Expires"),
        found.timestamp,
    )
    wss.check_freshness(stamp, now)
    signing = _dkt(found.signing_dkt, suite_.signature_derived_key_bits // 8, label)
    encrypting = _dkt(found.encrypting_dkt, suite_.encryption_key_bytes, label)
    if (
        signing.dkt_id == encrypting.dkt_id
        or found.signing_dkt.source_uri != found.encrypting_dkt.source_uri
        or found.signing_dkt.source_value_type != found.encrypting_dkt.source_value_type
    ):  # (the sources' TokenReferences compared field by field, without their __eq__)
        raise _Elsewhere  # one token for both keys, or two sources
    # the ReferenceList names the one EncryptedData of the document, the Body's content
    data = found.encrypted_data
    if (
        found.data_id is None
        or found.data_reference != f"#{found.data_id}"
        or found.data_type != _CONTENT
    ):
        raise _Elsewhere
    if list(envelope_root.iter(decryption.ENCRYPTED_DATA)) != [data]:
        raise _Elsewhere
    algorithm = rules.ENCRYPTION_BY_URI.get(found.data_method)
    if algorithm is not suite_.encryption:  # the one the receiver's policy allows
        raise _Elsewhere
    if found.data_key_uri != f"#{encrypting.dkt_id}" or found.key_uri != f"#{signing.dkt_id}":
        raise _Elsewhere
    cipher = unb64((found.cipher_value or "").strip(), "xenc:CipherValue")
    ciphers.check_cipher_length(algorithm, cipher)
    # the Signature
    if (
        found.c14n != _EXCLUSIVE
        or len(found.references) > policy.max_references
        or crypto.namespace_declarations(found.signed_info) > policy.max_namespaces
    ):
        raise _Elsewhere
    signature_algorithm = rules.accepted(
        SignatureAlg, found.signature_method, policy.signature_algorithms
    )
    if signature_algorithm not in rules.HMAC_ALGORITHMS:
        raise _Elsewhere
    checked_references = []
    for uri, transform, digest_method, digest_value in found.references:
        if not uri or not uri.startswith("#") or "(" in uri or transform != _EXCLUSIVE:
            raise _Elsewhere
        digest = rules.accepted(DigestAlg, digest_method, policy.digest_algorithms)
        checked_references.append((uri, digest, unb64(digest_value, "ds:DigestValue")))
    if signing.length < policy.min_hmac_key_bytes:
        raise _Elsewhere
    return _Checked(
        stamp,
        signing,
        encrypting,
        decryption.EncryptedDataInfo(data, algorithm, True, None, cipher),
        found.signature,
        found.signed_info,
        signature_algorithm,
        checked_references,
        unb64(found.signature_value, "ds:SignatureValue"),
    )


def read(
    envelope_root: etree._Element,
    security: etree._Element,
    body: etree._Element,
    *,
    secret_for: Callable[[wss.TokenReference], bytes],
    now: float,
    ledger: Ledger,
    suite_: AlgorithmSuite,
    policy: dsig.SignaturePolicy,
    direction: sc.Direction,
) -> tuple[wss.Timestamp, dsig.VerifiedSignature] | None:
    """Decrypt and verify a message of the plain derived-key shape travelling in
    ``direction``: (Timestamp, verified signature), or None (having done nothing) when the
    general reader is to read it."""
    found = layout.find(security, body)
    if found is None:
        return None
    try:
        checked = _checked(found, envelope_root, now, suite_, policy, sc.LABELS[direction])
    except Exception:  # the general reader names what is wrong
        return None
    stamp, signing, encrypting, info, signature, signed_info, algorithm, references, value = checked
    # From here on, the general reader's steps in its order (ledger entries, faults).
    label = sc.LABELS[direction]
    secret = secret_for(encrypting.source)
    key, signing_key = (  # the encryption's key first, as the general reader derives them
        sc.derive_key(
            secret, nonce=k.nonce, length=k.length, offset=k.offset, label=label, ledger=ledger
        )
        for k in (encrypting, signing)
    )
    with decryption.DecryptionStage(ledger, (info,), (signature, signing_key)) as stage:
        stage.decrypt(info, key)  # on a failure the data stays, and the checks go on
        # the checks above found no other EncryptedData: one now stands only in what the
        # Body's content decrypted to
        if any(data is not info.element for data in body.iter(decryption.ENCRYPTED_DATA)):
            raise InvalidSecurity("the message holds encrypted data no ReferenceList names")
        ids = dsig.index_ids(envelope_root)
        ancestors = list(signature.iterancestors())
        targets = []
        for uri, _, _ in references:
            target = ids.get(uri[1:])
            if target is None:
                raise InvalidSecurity(f"reference {uri} names no element", check="reference")
            if target in ancestors:  # lxml elements compare by identity
                raise InvalidSecurity(
                    "enveloped-signature transform must be used exactly when the signature is "
                    "inside the referenced element",
                    check="reference",
                )
            targets.append(target)
        # dsig.verify's order: the SignedInfo's signature first, then the digests
        signed_bytes = dsig.canonical(signed_info)
        ledger.record(Op.C14N, len(signed_bytes))
        rules.verify_value(algorithm, signing_key, signed_bytes, value, ledger)
        for target, (uri, digest, expected) in zip(targets, references, strict=True):
            if not hmac.compare_digest(rules.element_digest(target, digest, (), ledger), expected):
                raise FailedCheck(f"digest of {uri} does not match", check="digest")
        stage.require_signed(targets)
    verified = dsig.VerifiedSignature(signature, tuple(targets), algorithm, signing_key, value)
    return stamp, verified
