"""Message protection shared by the strategies: asymmetric (X.509 sign + EncryptedKey) and
symmetric (DerivedKeyTokens, HMAC, AES) on the sending side, and the strict receiving side.

Everything here does the real work through the wire layer and records it in a ledger.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lxml import etree

from sim.errors import InvalidSecurity, InvalidSecurityToken, UnknownDerivationSource
from sim.wire import checks, dsig, ns, plain_shape, sc, soap, wss, xenc
from sim.wire.keys import Identity, KeyStore, load_certificate_der
from sim.wire.ledger import Ledger
from sim.wire.ns import EncryptionAlg, SignatureAlg, ValueType
from sim.wire.soap import Envelope
from sim.wire.suites import AlgorithmSuite, suite
from sim.wire.xmlutil import (
    WSU_ID,
    b64,
    children_by_tag,
    fresh_bytes,
    new_id,
    unb64,
    whole_text,
)

DEFAULT_SUITE = suite("Basic256")


@dataclass(frozen=True)
class CertificateRecipient:
    """A peer known only by its certificate (learned from a BinarySecurityToken)."""

    certificate: object

    @property
    def public_key(self):
        return self.certificate.public_key()

    @property
    def thumbprint_sha1(self) -> bytes:
        import hashlib

        from cryptography.hazmat.primitives import serialization

        return hashlib.sha1(self.certificate.public_bytes(serialization.Encoding.DER)).digest()

    @property
    def common_name(self) -> str:
        from cryptography.x509.oid import NameOID

        names = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return names[0].value if names else ""


PAYLOAD = ns.qname(ns.APP, "Payload")


def put_payload(envelope: Envelope, payload: bytes, local: str = "Request") -> None:
    """The application payload, base64 in an app element of the Body."""
    envelope.add_body_text(
        f'<app:{local} xmlns:app="{ns.APP}"><app:Payload>{b64(payload)}</app:Payload></app:{local}>'
    )


def get_payload(envelope: Envelope) -> bytes:
    """The application payload :func:`put_payload` wrote, read strictly: the Body holds one
    element of the application's namespace holding one app:Payload, whose whole text
    (:func:`~sim.wire.xmlutil.whole_text`: a comment C14N would drop is refused) is the
    payload in base64. Anything else there is refused, not skipped."""
    holders = list(envelope.body)
    if (
        len(holders) != 1
        or not isinstance(holders[0].tag, str)
        or etree.QName(holders[0]).namespace != ns.APP
    ):
        raise InvalidSecurity("the Body carries no application payload", check="payload")
    children = list(holders[0])
    if (
        len(children) != 1
        or children[0].tag != PAYLOAD
        or (holders[0].text or "").strip()
        or (children[0].tail or "").strip()
    ):
        raise InvalidSecurity(
            "the Body's application element is not one app:Payload", check="payload"
        )
    return unb64(whole_text(children[0], "app:Payload"), "app:Payload")


def security_header(envelope: Envelope, now: float, ttl: float = 300.0, children: str = ""):
    """Add a Security header with a Timestamp (then the elements ``children`` spells);
    returns (security, timestamp)."""
    security = wss.add_security_header(envelope, now=now, ttl=ttl, children=children)
    return security, security[0]


_ACTION = ns.qname(ns.WSA, "Action")
_RELATES_TO = ns.qname(ns.WSA, "RelatesTo")
_SIGNATURE = ns.qname(ns.DS, "Signature")


def _action_header(envelope: Envelope) -> etree._Element | None:
    return next(envelope.header.iterchildren(_ACTION), None)


def _signed_parts(envelope: Envelope, timestamp, extra: Sequence[etree._Element]):
    """Body, Timestamp, ``extra``, wsa:Action and (in a reply) wsa:RelatesTo, which binds
    the reply to its request."""
    parts = [envelope.body, timestamp, *extra]
    parts += [h for h in envelope.header.iterchildren(_ACTION, _RELATES_TO)]
    return parts


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
    key_info: etree._Element | None = None,
    keylog: Callable[[str, str, bytes], None] | None = None,
) -> bytes:
    """Sign Body, Timestamp, Action (and ``extra_signed``) with the sender's RSA key, and
    encrypt the Body content for ``recipient`` with a per-message EncryptedKey.

    ``signing_key``/``key_info`` override the sender's certificate (an ephemeral key whose
    KeyInfo points at a SAML assertion, for holder-of-key public key)."""
    draft = envelope.draft
    if (
        draft is not None
        and draft.signable
        and not (tokens or extra_signed)
        and signing_key is None
        and key_info is None
    ):
        return _protect_asymmetric_draft(
            envelope, sender, recipient, now=now, ledger=ledger, suite_=suite_, keylog=keylog
        )
    security, timestamp = security_header(envelope, now)
    for token in tokens:
        security.append(token)
    if key_info is None:
        bst = wss.build_binary_security_token(sender)
        security.append(bst)
        key_info = wss.str_reference(f"#{bst.get(WSU_ID)}", ValueType.X509V3.value)
    signature = dsig.sign(
        _signed_parts(envelope, timestamp, extra_signed),
        signing_key or sender.private_key,
        algorithm=suite_.asymmetric_signature,
        digest=suite_.digest,
        key_info=key_info,
        ledger=ledger,
    )
    if recipient is not None:
        session_key = fresh_bytes(suite_.encryption_key_bytes)
        data = xenc.encrypt_element(
            envelope.body, session_key, algorithm=suite_.encryption, content=True, ledger=ledger
        )
        encrypted_key = xenc.build_encrypted_key(
            session_key,
            recipient.public_key,
            key_info=wss.str_key_identifier(
                recipient.thumbprint_sha1, ValueType.THUMBPRINT_SHA1.value
            ),
            algorithm=suite_.asymmetric_key_wrap,
            data_references=[data.get("Id")],
            ledger=ledger,
        )
        security.append(encrypted_key)
        if keylog is not None:
            keylog("session-key", encrypted_key.get("Id"), session_key)
    security.append(signature)
    return envelope.to_bytes(ledger)


def _protect_asymmetric_draft(
    envelope: Envelope,
    sender: Identity,
    recipient: Identity | CertificateRecipient | None,
    *,
    now: float,
    ledger: Ledger,
    suite_: AlgorithmSuite,
    keylog: Callable[[str, str, bytes], None] | None,
) -> bytes:
    """:func:`protect_asymmetric` (the sender's BinarySecurityToken, no extra tokens) for an
    envelope still in text: the same bytes, ledger and keys, without building a tree."""
    draft = envelope.draft
    ts_id = new_id("TS-")
    timestamp = wss.timestamp_text(now, ts_id=ts_id)
    bst, bst_id = wss.binary_security_token_text(sender)
    signature = dsig.sign_text(
        _draft_digests(draft, ts_id, timestamp, suite_, ledger),
        sender.private_key,
        algorithm=suite_.asymmetric_signature,
        digest=suite_.digest,
        key_info=wss.str_reference_text(f"#{bst_id}", ValueType.X509V3.value),
        ledger=ledger,
    )
    encrypted_key = ""
    if recipient is not None:
        session_key = fresh_bytes(suite_.encryption_key_bytes)
        data_id = _encrypt_draft_body(draft, session_key, suite_, None, ledger)
        encrypted_key, key_id = xenc.encrypted_key_text(
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
    return _send_draft(envelope, timestamp + bst + encrypted_key + signature, ledger)


def _draft_digests(draft: soap.Draft, ts_id: str, timestamp: str, suite_, ledger) -> list:
    """(id, digest) of what a message signs: the Body, the Timestamp and wsa:Action."""
    signed = [(draft.body_id, draft.canonical_body()), (ts_id, timestamp)]
    if draft.action is not None:
        signed.append(draft.action)
    if draft.relates_to is not None:
        signed.append(draft.relates_to)
    return [(part_id, dsig.text_digest(text, suite_.digest, ledger)) for part_id, text in signed]


def _encrypt_draft_body(
    draft: soap.Draft, key: bytes, suite_, key_info: str | None, ledger, data_id=None
) -> str:
    """Encrypt the Body's content in place (an EncryptedData of Type Content); its Id."""
    data, data_id = xenc.encrypt_content_text(
        draft.serialized_content(),
        key,
        algorithm=suite_.encryption,
        key_info=key_info,
        data_id=data_id,
        ledger=ledger,
    )
    draft.replace_content(data)
    return data_id


def _send_draft(envelope: Envelope, security: str, ledger: Ledger) -> bytes:
    """The envelope's bytes with a Security header holding the elements ``security`` spells."""
    version = envelope.version
    envelope.draft.headers.insert(
        0, wss.security_header_text(version.value, version.prefix, security)
    )
    return envelope.to_bytes(ledger)


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
) -> list[tuple[xenc.EncryptedDataInfo, bytes]]:
    """Every EncryptedData the ReferenceLists of the Security header name, read, with the key
    that decrypts it; refused when one is missing, listed twice or listed nowhere. Nothing
    is decrypted here: these are the checks of what anyone can see."""
    data_ids: list[tuple[str, etree._Element]] = []
    for child in security:
        if child.tag == xenc.ENCRYPTED_KEY:
            data_ids += [(i, child) for i in xenc.read_data_references(child)]
        elif child.tag == xenc.REFERENCE_LIST:
            data_ids += [(i, child) for i in xenc.read_data_references(security)]
            break
    present = list(envelope.root.iter(xenc.ENCRYPTED_DATA))
    ids = {el.get("Id"): el for el in present}
    parts = []
    for data_id, holder in data_ids:
        data = ids.pop(data_id, None)
        if data is None:
            raise InvalidSecurity(
                f"encrypted data #{data_id} not found or listed twice", check="reference"
            )
        info = xenc.read_encrypted_data(data, policy)
        parts.append((info, key_for(holder, info)))
    if len(parts) != len(present):
        raise _unlisted()
    return parts


def _unlisted() -> InvalidSecurity:
    return InvalidSecurity("the message holds encrypted data no ReferenceList names")


def _decrypt_parts(
    stage: xenc.DecryptionStage,
    envelope: Envelope,
    parts: list[tuple[xenc.EncryptedDataInfo, bytes]],
) -> None:
    """Decrypt every part in place (in ``stage``); what decrypted may hold no more
    encrypted data. A part that did not decrypt stays, and the verification goes on over
    it (its digest fails as a wrong plaintext's does): the same work whatever failed."""
    for info, key in parts:
        stage.decrypt(info, key)
    stayed = {id(info.element) for info, _ in parts}
    if any(id(data) not in stayed for data in envelope.root.iter(xenc.ENCRYPTED_DATA)):
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
    parts: list[tuple[xenc.EncryptedDataInfo, bytes]],
    ledger: Ledger,
    suite_: AlgorithmSuite,
) -> dsig.VerifiedSignature:
    """Decrypt ``parts`` and verify ``signature`` with ``key``, in one decryption stage:
    from the first decryption until the signature covers every decrypted part, any failure
    is the one fault of :class:`xenc.DecryptionStage`, charged the same."""
    with xenc.DecryptionStage(ledger, [info for info, _ in parts], (signature, key)) as stage:
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
    policy = xenc.EncryptionPolicy(
        data_algorithms=frozenset({suite_.encryption}),
        key_transport=frozenset({suite_.asymmetric_key_wrap}),
    )
    if receiver is not None:

        def key_for(holder, info):
            ek = xenc.read_encrypted_key(holder, policy)
            return xenc.decrypt_key(
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
        if reference.uri is None or not reference.uri.startswith("#"):
            if key_resolver is not None:
                return key_resolver(reference)
            raise InvalidSecurityToken("unsupported signature key reference")
        token = ids.get(reference.uri[1:])
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
def _signature_policy(suite_: AlgorithmSuite) -> dsig.SignaturePolicy:
    return dsig.SignaturePolicy.from_suite(suite_)


@functools.cache
def _symmetric_encryption_policy(suite_: AlgorithmSuite) -> xenc.EncryptionPolicy:
    return xenc.EncryptionPolicy(data_algorithms=frozenset({suite_.encryption}))


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
    keylog: Callable[[str, str, bytes], None] | None = None,
    direction: sc.Direction | None = None,
) -> bytes:
    """Sign with HMAC-SHA1 and encrypt with AES under keys derived from ``secret``
    (a fresh DerivedKeyToken each for signature and encryption, pointing at the source
    through ``source_reference()``, an STR element or its text, and carrying the wsc:Label
    of ``direction``: a request's keys are not a reply's; by default a message carrying
    wsa:RelatesTo is a reply, any other a request); with ``derive=False`` the secret is used
    directly.

    ``encrypt_tokens`` (a UsernameToken sent inside the protected traffic) go into the
    Security header, are signed, and are encrypted in place like the Body."""
    draft = envelope.draft
    text_only = (
        draft is not None
        and draft.signable
        and derive
        and not (tokens or extra_signed or encrypt_tokens)
    )
    extra_signed = [*extra_signed, *encrypt_tokens]
    data_ids = [new_id("ED-") for _ in range(len(encrypt_tokens) + 1)] if encrypt else []
    enc_length = suite_.encryption_key_bytes
    if derive:
        # The DerivedKeyTokens and the ReferenceList go into the header in the same fragment
        # as the Timestamp; the keys come from the nonces, not from reading the tokens back.
        source = source_reference()
        if not isinstance(source, str):
            source = etree.tostring(source).decode()
        label = sc.LABELS[direction or _direction_of(envelope)]
        sig_length = suite_.signature_derived_key_bits // 8
        sig_nonce = fresh_bytes(16)
        header, sig_dkt_id = sc.dkt_text(source, length=sig_length, nonce=sig_nonce, label=label)
        sig_key = sc.derive_key(
            secret, nonce=sig_nonce, length=sig_length, label=label, ledger=ledger
        )
        sig_info = wss.str_reference_text(f"#{sig_dkt_id}", ValueType.DKT.value)
        if encrypt:
            enc_nonce = fresh_bytes(16)
            enc_text, enc_dkt_id = sc.dkt_text(
                source, length=enc_length, nonce=enc_nonce, label=label
            )
            header += enc_text
            enc_key = sc.derive_key(
                secret, nonce=enc_nonce, length=enc_length, label=label, ledger=ledger
            )
            enc_info = wss.str_reference_text(f"#{enc_dkt_id}", ValueType.DKT.value)
    else:
        header = ""
        sig_key, sig_info = secret, source_reference()
        enc_key = secret[:enc_length]
    if encrypt:
        header += xenc.reference_list_text(data_ids)
    if keylog and derive:
        keylog("derived-key", sig_dkt_id, sig_key)
        if encrypt:
            keylog("derived-key", enc_dkt_id, enc_key)
    if text_only:
        return _protect_draft(
            envelope,
            header,
            now=now,
            sig_key=sig_key,
            sig_info=sig_info,
            enc_key=enc_key if encrypt else None,
            enc_info=enc_info if encrypt else "",
            data_id=data_ids[0] if encrypt else "",
            ledger=ledger,
            suite_=suite_,
        )
    security, timestamp = security_header(envelope, now, children=header)
    for index, token in enumerate((*tokens, *encrypt_tokens), start=1):
        security.insert(index, token)
    signature = dsig.sign(
        _signed_parts(envelope, timestamp, extra_signed),
        sig_key,
        algorithm=suite_.symmetric_signature,
        digest=suite_.digest,
        key_info=sig_info,
        ledger=ledger,
    )
    if encrypt:
        targets = [(token, False) for token in encrypt_tokens] + [(envelope.body, True)]
        for (target, content), data_id in zip(targets, data_ids, strict=True):
            xenc.encrypt_element(
                target,
                enc_key,
                algorithm=suite_.encryption,
                content=content,
                key_info=enc_info if derive else source_reference(),
                data_id=data_id,
                ledger=ledger,
            )
    security.append(signature)
    return envelope.to_bytes(ledger)


def _direction_of(envelope: Envelope) -> sc.Direction:
    """A message answering another (it carries wsa:RelatesTo) is a reply, any other a
    request (the servers refuse a request carrying wsa:RelatesTo)."""
    draft = envelope.draft
    if draft is not None:
        answers = draft.relates_to is not None
    else:
        answers = next(envelope.header.iterchildren(_RELATES_TO), None) is not None
    return sc.Direction.REPLY if answers else sc.Direction.REQUEST


def _protect_draft(
    envelope: Envelope,
    header: str,
    *,
    now: float,
    sig_key: bytes,
    sig_info: str,
    enc_key: bytes | None,
    enc_info: str,
    data_id: str,
    ledger: Ledger,
    suite_: AlgorithmSuite,
) -> bytes:
    """:func:`protect_symmetric` for an envelope still in text (see :class:`soap.Envelope`):
    the same bytes, ledger and keys, without building a tree. Every signed part is generated
    in exclusive canonical form, so its digest is the digest of its text."""
    draft = envelope.draft
    ts_id = new_id("TS-")
    timestamp = wss.timestamp_text(now, ts_id=ts_id)
    signature = dsig.sign_text(
        _draft_digests(draft, ts_id, timestamp, suite_, ledger),
        sig_key,
        algorithm=suite_.symmetric_signature,
        digest=suite_.digest,
        key_info=sig_info,
        ledger=ledger,
    )
    if enc_key is not None:
        _encrypt_draft_body(draft, enc_key, suite_, enc_info, ledger, data_id)
    return _send_draft(envelope, timestamp + header + signature, ledger)


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


__all__ = [
    "DEFAULT_SUITE",
    "EncryptionAlg",
    "SignatureAlg",
    "Unprotected",
    "get_payload",
    "protect_asymmetric",
    "protect_symmetric",
    "put_payload",
    "unprotect_asymmetric",
    "unprotect_symmetric",
]
