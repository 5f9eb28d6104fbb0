"""The fast reader of the plain derived-key shape: a message as wssim's senders protect it
with keys derived from one source (a security context, a token): a Security header of
Timestamp, two DerivedKeyTokens (signature, encryption; each with the wsc:Label of its
direction), a ReferenceList and an HMAC Signature, and the Body's content encrypted.

The kernel recognizes the shape in one walk (``crypto.derived_key_shape``); :func:`read`
then makes the receiver's checks on what it found, with the outcome of the general reader
(``sim.protocol.protection.unprotect_symmetric`` with its callbacks): the same keys, the same
ledger entries in the same order, the same typed fault at the same step. Every check that
needs neither a secret nor the decrypted content comes first; when one fails, :func:`read`
returns None having done nothing, and the general reader runs (and names the fault). Then,
as there, both keys are derived, and the decryption and everything up to the verified
signature make one :class:`~sim.wire.xenc.DecryptionStage` (one fault, the same charge,
whatever failed). The checks use the general readers' own helpers (the ``_``-prefixed ones
of ``dsig``, ``sc`` and ``xenc``), so that one rule is written once.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from lxml import etree

import sim.crypto as crypto
from sim.errors import FailedCheck, InvalidSecurity
from sim.wire import dsig, ns, sc, wss, xenc
from sim.wire.ledger import Ledger, Op
from sim.wire.ns import C14N, EncryptedType, SignatureAlg
from sim.wire.suites import AlgorithmSuite
from sim.wire.xmlutil import parse_time, unb64

NAMESPACES = (ns.WSU, ns.WSSE, ns.WSC, ns.XENC, ns.DS)
_EXCLUSIVE = C14N.EXCLUSIVE.value
_CONTENT = EncryptedType.CONTENT.value


class _Elsewhere(Exception):
    """The message is to be read by the general reader."""


def _dkt(
    fields: tuple, expected_length: int, label: bytes
) -> tuple[str, wss.TokenReference, bytes, int, int]:
    """A DerivedKeyToken's (wsu:Id, source, nonce, length, offset), as ``sc.read_dkt`` reads
    it, when its length is the one the algorithm needs and its label ``label``."""
    dkt_id, (uri, value_type), offset, length, dkt_label, nonce = fields
    if dkt_id is None or not uri or (dkt_label or "").strip().encode() != label:
        raise _Elsewhere
    length = sc.check_length(sc._int((length or "").strip(), "wsc:Length"))
    offset = sc.key_offset(sc._int((offset or "").strip(), "wsc:Offset"), None, length)
    if length != expected_length:
        raise _Elsewhere
    nonce = sc.check_nonce(unb64((nonce or "").strip(), "wsc:Nonce"))
    return dkt_id, wss.TokenReference(uri=uri, value_type=value_type), nonce, length, offset


def _checked(
    shape: tuple, envelope_root, now: float, suite_: AlgorithmSuite, policy, label: bytes
) -> tuple:
    """Every check of the general reader that needs neither a secret nor the decrypted
    content; raises (anything) when one fails."""
    (
        timestamp,
        created,
        expires,
        dkts,
        data_reference,
        signature,
        signed_info,
        c14n,
        method,
        references,
        signature_value,
        key_reference,
        data,
        data_id,
        data_type,
        data_method,
        data_key,
        cipher_value,
    ) = shape
    stamp = wss.Timestamp(
        parse_time((created or "").strip(), "wsu:Created"),
        parse_time((expires or "").strip(), "wsu:Expires"),
        timestamp,
    )
    wss.check_freshness(stamp, now)
    signing = _dkt(dkts[0], suite_.signature_derived_key_bits // 8, label)
    encrypting = _dkt(dkts[1], suite_.encryption_key_bytes, label)
    if signing[0] == encrypting[0] or signing[1] != encrypting[1]:
        raise _Elsewhere  # one token for both keys, or two sources
    # the ReferenceList names the one EncryptedData of the document, the Body's content
    if data_id is None or data_reference != f"#{data_id}" or data_type != _CONTENT:
        raise _Elsewhere
    if list(envelope_root.iter(xenc.ENCRYPTED_DATA)) != [data]:
        raise _Elsewhere
    algorithm = xenc._ENCRYPTION_BY_URI.get(data_method)
    if algorithm is not suite_.encryption:  # the one the receiver's policy allows
        raise _Elsewhere
    if data_key[0] != f"#{encrypting[0]}" or key_reference[0] != f"#{signing[0]}":
        raise _Elsewhere
    cipher = unb64((cipher_value or "").strip(), "xenc:CipherValue")
    xenc.check_cipher_length(algorithm, cipher)
    # the Signature
    if (
        c14n != _EXCLUSIVE
        or len(references) > policy.max_references
        or crypto.namespace_declarations(signed_info) > policy.max_namespaces
    ):
        raise _Elsewhere
    signature_algorithm = dsig._accepted(SignatureAlg, method, policy.signature_algorithms)
    if signature_algorithm not in dsig._HMAC_ALGORITHMS:
        raise _Elsewhere
    checked_references = []
    for uri, transform, digest_method, digest_value in references:
        if not uri or not uri.startswith("#") or "(" in uri or transform != _EXCLUSIVE:
            raise _Elsewhere
        digest = dsig._accepted(dsig.DigestAlg, digest_method, policy.digest_algorithms)
        checked_references.append((uri, digest, unb64(digest_value, "ds:DigestValue")))
    if signing[3] < policy.min_hmac_key_bytes:
        raise _Elsewhere
    value = unb64(signature_value, "ds:SignatureValue")
    return (
        stamp,
        signing,
        encrypting,
        xenc.EncryptedDataInfo(data, algorithm, True, None, cipher),
        signature,
        signed_info,
        signature_algorithm,
        checked_references,
        value,
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
    shape = crypto.derived_key_shape(security, body, NAMESPACES)
    if shape is None:
        return None
    try:
        checked = _checked(shape, envelope_root, now, suite_, policy, sc.LABELS[direction])
    except Exception:  # the general reader names what is wrong
        return None
    stamp, signing, encrypting, info, signature, signed_info, algorithm, references, value = checked
    # From here on, the general reader's steps in its order (ledger entries, faults).
    label = sc.LABELS[direction]
    secret = secret_for(encrypting[1])
    key = sc.derive_key(
        secret,
        nonce=encrypting[2],
        length=encrypting[3],
        offset=encrypting[4],
        label=label,
        ledger=ledger,
    )
    signing_key = sc.derive_key(
        secret, nonce=signing[2], length=signing[3], offset=signing[4], label=label, ledger=ledger
    )
    with xenc.DecryptionStage(ledger, (info,), (signature, signing_key)) as stage:
        stage.decrypt(info, key)  # on a failure the data stays, and the checks go on
        if any(data is not info.element for data in envelope_root.iter(xenc.ENCRYPTED_DATA)):
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
        dsig._verify_bytes(algorithm, signing_key, signed_bytes, value, ledger)
        for target, (uri, digest, expected) in zip(targets, references, strict=True):
            if not hmac.compare_digest(dsig._digest(target, digest, (), ledger), expected):
                raise FailedCheck(f"digest of {uri} does not match", check="digest")
        stage.require_signed(targets)
    verified = dsig.VerifiedSignature(signature, tuple(targets), algorithm, signing_key, value)
    return stamp, verified
