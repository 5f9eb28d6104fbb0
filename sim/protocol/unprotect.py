"""The receiving side of message protection: strict checks of what ``sim.protocol.protect``
writes, asymmetric (the sender's certificate, the receiver's key for the EncryptedKey) and
symmetric (DerivedKeyTokens; the fast reader ``sim.wire.plain_shape`` first).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from sim.errors import InvalidSecurity, InvalidSecurityToken, UnknownDerivationSource
from sim.protocol.protect import DEFAULT_SUITE
from sim.wire import checks, decryption, dsig, ns, plain_shape, sc, soap, wss
from sim.wire.ciphers import EncryptionPolicy
from sim.wire.keys import Identity, KeyStore, load_certificate_der
from sim.wire.ledger import Ledger
from sim.wire.ns import ValueType
from sim.wire.soap import Envelope
from sim.wire.suites import AlgorithmSuite
from sim.wire.xmlutil import WSU_ID, children_by_tag

_ACTION = ns.qname(ns.WSA, "Action")
_SIGNATURE = ns.qname(ns.DS, "Signature")


def _action_header(envelope: Envelope) -> etree._Element | None:
    return next(envelope.header.iterchildren(_ACTION), None)


@dataclass(frozen=True)
class Unprotected:
    """What a receiver established about a message."""

    envelope: Envelope
    addressing: soap.Addressing
    security: etree._Element
    verified: dsig.VerifiedSignature
    signer: Identity | None = None
    certificate: object | None = None


def _encrypted_parts(
    envelope: Envelope, security, key_for: Callable, policy
) -> list[tuple[decryption.EncryptedDataInfo, bytes]]:
    """Every EncryptedData the ReferenceLists of the Security header name, read, with the key
    that decrypts it; refused when one is missing, listed twice or listed nowhere. Nothing
    is decrypted here: these are the checks of what anyone can see."""
    data_ids: list[tuple[str, etree._Element]] = []
    for child in security:
        if child.tag == decryption.ENCRYPTED_KEY:
            data_ids += [(i, child) for i in decryption.read_data_references(child)]
        elif child.tag == decryption.REFERENCE_LIST:
            data_ids += [(i, child) for i in decryption.read_data_references(security)]
            break
    present = list(envelope.root.iter(decryption.ENCRYPTED_DATA))
    ids = {el.get("Id"): el for el in present}
    parts = []
    for data_id, holder in data_ids:
        data = ids.pop(data_id, None)
        if data is None:
            raise InvalidSecurity(
                f"encrypted data #{data_id} not found or listed twice", check="reference"
            )
        info = decryption.read_encrypted_data(data, policy)
        parts.append((info, key_for(holder, info)))
    if len(parts) != len(present):
        raise _unlisted()
    return parts


def _unlisted() -> InvalidSecurity:
    return InvalidSecurity("the message holds encrypted data no ReferenceList names")


def _decrypt_parts(
    stage: decryption.DecryptionStage,
    envelope: Envelope,
    parts: list[tuple[decryption.EncryptedDataInfo, bytes]],
) -> None:
    """Decrypt every part in place (in ``stage``); what decrypted may hold no more
    encrypted data. A part that did not decrypt stays, and the verification goes on over
    it (its digest fails as a wrong plaintext's does): the same work whatever failed."""
    for info, key in parts:
        stage.decrypt(info, key)
    stayed = {id(info.element) for info, _ in parts}
    if any(id(data) not in stayed for data in envelope.root.iter(decryption.ENCRYPTED_DATA)):
        raise _unlisted()


_KEY_INFO_PART = {ns.qname(ns.DS, "KeyInfo"): "ds:KeyInfo"}


def _signature_key(signature: etree._Element, resolve: Callable):
    """The key of ``signature``'s KeyInfo, resolved before anything is decrypted, so that a
    token or key the receiver refuses is named as such (and is no part of the decryption
    stage's one fault)."""
    return resolve(children_by_tag(signature, _KEY_INFO_PART).get(ns.qname(ns.DS, "KeyInfo")))


def _verify_decrypted(
    envelope: Envelope,
    signature: etree._Element,
    key,
    parts: list[tuple[decryption.EncryptedDataInfo, bytes]],
    ledger: Ledger,
    suite_: AlgorithmSuite,
) -> dsig.VerifiedSignature:
    """Decrypt ``parts`` and verify ``signature`` with ``key``, in one decryption stage:
    from the first decryption until the signature covers every decrypted part, any failure
    is the one fault of :class:`decryption.DecryptionStage`, charged the same."""
    with decryption.DecryptionStage(ledger, [info for info, _ in parts], (signature, key)) as stage:
        _decrypt_parts(stage, envelope, parts)
        verified = dsig.verify(
            signature,
            key=key,
            ids=dsig.index_ids(envelope.root),
            ledger=ledger,
            policy=_signature_policy(suite_),
        )
        stage.require_signed(verified.references)
    return verified


def unprotect_asymmetric(
    envelope: Envelope,
    *,
    receiver: Identity | None,
    trust: KeyStore,
    now: float,
    ledger: Ledger,
    replay: checks.ReplayCache,
    suite_: AlgorithmSuite = DEFAULT_SUITE,
    key_resolver: Callable | None = None,
) -> Unprotected:
    """Check freshness, decrypt with the receiver's key, verify the sender's signature over
    Body, Timestamp and Action, refuse replays. ``key_resolver`` resolves a KeyInfo other than
    a BinarySecurityToken reference (returns a public key)."""
    addressing = soap.read_addressing(envelope)
    security = wss.find_security_header(envelope)
    timestamp = wss.read_timestamp(security)
    wss.check_freshness(timestamp, now)
    policy = EncryptionPolicy(
        data_algorithms=frozenset({suite_.encryption}),
        key_transport=frozenset({suite_.asymmetric_key_wrap}),
    )
    if receiver is not None:

        def key_for(holder, info):
            ek = decryption.read_encrypted_key(holder, policy)
            return decryption.decrypt_key(
                ek,
                receiver.private_key,
                expected_bytes=suite_.encryption_key_bytes,
                policy=policy,
                ledger=ledger,
            )

        parts = _encrypted_parts(envelope, security, key_for, policy)
    else:
        parts = []
    signature = _one_signature(security)
    ids = dsig.index_ids(envelope.root)  # for the key reference: the header is not encrypted
    certificate = None

    def resolve(key_info):
        nonlocal certificate
        if key_info is None or len(key_info) != 1:
            raise InvalidSecurityToken("signature KeyInfo must hold one token reference")
        reference = wss.read_str(key_info[0])
        local = reference.uri is not None and reference.uri.startswith("#")
        token = ids.get(reference.uri[1:]) if local else None
        if token is None or token.tag != wss.BINARY_SECURITY_TOKEN:
            # another token's key (a holder-of-key assertion's), which the caller resolves
            if key_resolver is not None:
                return key_resolver(reference)
            if not local:
                raise InvalidSecurityToken("unsupported signature key reference")
        if (
            token is None
            or token.tag != wss.BINARY_SECURITY_TOKEN
            or token.getparent() is not security
        ):
            raise InvalidSecurityToken("signature key is not a BinarySecurityToken of this header")
        certificate = load_certificate_der(wss.read_binary_security_token(token))
        trust.verify_trusted(certificate, now, ledger)
        return certificate.public_key()

    key = _signature_key(signature, resolve)
    verified = _verify_decrypted(envelope, signature, key, parts, ledger, suite_)
    _require_standard_parts(envelope, security, timestamp, verified)
    _remember(replay, verified, timestamp, now, ledger)
    return Unprotected(envelope, addressing, security, verified, certificate=certificate)


@functools.cache
def _policy_of(suite_: AlgorithmSuite) -> dsig.SignaturePolicy:
    return dsig.SignaturePolicy.from_suite(suite_)


#: id(suite) -> (suite, its policy): a suite's hash is a Python-level hash of all its fields,
#: and every message looks its policy up; the suite kept here keeps its id from being reused
_POLICIES: dict[int, tuple[AlgorithmSuite, dsig.SignaturePolicy]] = {}


def _signature_policy(suite_: AlgorithmSuite) -> dsig.SignaturePolicy:
    entry = _POLICIES.get(id(suite_))
    if entry is None or entry[0] is not suite_:
        if len(_POLICIES) >= 64:
            _POLICIES.clear()
        entry = _POLICIES[id(suite_)] = (suite_, _policy_of(suite_))
    return entry[1]


@functools.cache
def _symmetric_encryption_policy(suite_: AlgorithmSuite) -> EncryptionPolicy:
    return EncryptionPolicy(data_algorithms=frozenset({suite_.encryption}))


def _one_signature(security):
    signatures = list(security.iterchildren(_SIGNATURE))
    if len(signatures) != 1:
        raise InvalidSecurity(f"expected one signature in the header, found {len(signatures)}")
    return signatures[0]


def _remember(replay: checks.ReplayCache, verified, timestamp, now: float, ledger) -> None:
    """The replay check, after the signature: the store keeps the message's SignatureValue
    for as long as its signed Created and Expires let it be accepted again."""
    replay.check_and_add(
        verified.value,
        now,
        created=timestamp.created,
        expires=timestamp.expires,
        ledger=ledger,
    )


def _require_standard_parts(envelope, security, timestamp, verified) -> None:
    checks.require_body_signed(envelope, verified)
    checks.require_in_security_header(envelope, timestamp.element, "the Timestamp")
    checks.require_signed(verified, timestamp.element, "the Timestamp")
    action = _action_header(envelope)
    if action is not None:
        checks.require_signed(verified, action, "wsa:Action")


def unprotect_symmetric(
    envelope: Envelope,
    *,
    secret_for: Callable[[wss.TokenReference], bytes],
    now: float,
    ledger: Ledger,
    replay: checks.ReplayCache,
    suite_: AlgorithmSuite = DEFAULT_SUITE,
    direction: sc.Direction = sc.Direction.REQUEST,
) -> Unprotected:
    """Receiving side of :func:`protect_symmetric`. ``secret_for`` maps the source reference
    (SCT identifier, UsernameToken, assertion id) to its secret or raises the protocol's
    fault (wsc:BadContextToken, ...). ``direction`` is the way the messages this receiver
    reads travel (a service reads requests, a client replies): a DerivedKeyToken of the
    other direction is refused."""
    addressing = soap.read_addressing(envelope)
    security = wss.find_security_header(envelope)
    plain = plain_shape.read(
        envelope.root,
        security,
        envelope.body,
        secret_for=secret_for,
        now=now,
        ledger=ledger,
        suite_=suite_,
        policy=_signature_policy(suite_),
        direction=direction,
    )
    if plain is not None:  # the layout our senders write, read without walking it here
        timestamp, verified = plain
        _require_standard_parts(envelope, security, timestamp, verified)
        _remember(replay, verified, timestamp, now, ledger)
        return Unprotected(envelope, addressing, security, verified)
    timestamp = wss.read_timestamp(security)
    wss.check_freshness(timestamp, now)
    dkts = {el.get(WSU_ID): el for el in security if el.tag == sc.DKT}
    derived: dict[str, bytes] = {}
    sources: dict[wss.TokenReference, bytes] = {}

    def source_secret(reference: wss.TokenReference) -> bytes:
        # One lookup of a source per message (a context, a token), however many keys
        # derive from it: what an implementation does, and what the ledger charges.
        secret = sources.get(reference)
        if secret is None:
            secret = sources[reference] = secret_for(reference)
        return secret

    def key_from(reference: wss.TokenReference, expected_bytes: int) -> bytes:
        if reference.uri and reference.uri.startswith("#") and reference.uri[1:] in dkts:
            dkt_id = reference.uri[1:]
            if dkt_id not in derived:
                dkt = sc.read_dkt(dkts[dkt_id])
                sc.check_direction(dkt.label, direction)
                if dkt.length != expected_bytes:
                    raise InvalidSecurity("derived key length does not fit the algorithm")
                derived[dkt_id] = sc.derive(dkt, source_secret(dkt.reference), ledger)
            return derived[dkt_id]
        if reference.value_type == ValueType.DKT.value:
            raise UnknownDerivationSource("reference to an unknown DerivedKeyToken")
        return source_secret(reference)  # the source key itself (no derivation)

    policy = _symmetric_encryption_policy(suite_)

    def key_for(holder, info):
        if info.key_info is None:
            raise InvalidSecurity("encrypted data without key information")
        key = key_from(wss.read_str(info.key_info), suite_.encryption_key_bytes)
        return key[: suite_.encryption_key_bytes]

    parts = _encrypted_parts(envelope, security, key_for, policy)
    signature = _one_signature(security)

    def resolve(key_info):
        if key_info is None or len(key_info) != 1:
            raise InvalidSecurityToken("signature KeyInfo must hold one token reference")
        return key_from(wss.read_str(key_info[0]), suite_.signature_derived_key_bits // 8)

    key = _signature_key(signature, resolve)
    verified = _verify_decrypted(envelope, signature, key, parts, ledger, suite_)
    _require_standard_parts(envelope, security, timestamp, verified)
    _remember(replay, verified, timestamp, now, ledger)
    return Unprotected(envelope, addressing, security, verified)
