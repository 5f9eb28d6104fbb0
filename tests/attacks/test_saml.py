"""The SAML strategies attacked from outside, through live sessions.

Each test runs a real session (client, STS, provider engines in the in-memory harness),
rewrites the bytes of a real message on the wire as an attacker would, and checks that the
receiving engine refuses it with a typed SOAP fault. The STS key is used only where the
attack needs an assertion the STS would sign for someone (another audience); everything
else forges unsigned parts of real, STS-signed assertions and messages.
"""

from __future__ import annotations

import copy

import pytest
from lxml import etree

from sim.protocol import build_strategy
from sim.protocol import protection as p
from sim.protocol.api import role_of
from sim.protocol.base import APP_ACTION, PROVIDER_ADDRESS
from sim.protocol.harness import Harness
from sim.wire import ns, saml, soap
from sim.wire.ledger import Ledger

SAML1, SAML2, DS = ns.SAML1, ns.SAML2, ns.DS
SIGNATURE = ns.qname(DS, "Signature")
SECURITY = ns.qname(ns.WSSE, "Security")
HEADER = ns.qname(ns.SOAP12, "Header")
TIMESTAMP = ns.qname(ns.WSU, "Timestamp")
BILLING = PROVIDER_ADDRESS + "-billing"  # another service the same STS issues tokens for
VERSIONS = ("1.1", "2.0")
#: the SAML strategies whose client sends the assertion to the provider itself
TOKEN_STRATEGIES = ("bearer", "hok-symmetric", "hok-public")


@pytest.fixture
def make(key_dir):
    def factory(name, version="2.0", **options):
        return build_strategy(name, {"saml_version": version, **options}, key_dir=key_dir)

    return factory


# --- the attacker's tools --------------------------------------------------------------------


def _security(root):
    return root.find(f"{HEADER}/{SECURITY}")


def _assertion(root):
    [assertion] = [el for el in _security(root) if el.tag in (saml.ASSERTION1, saml.ASSERTION2)]
    return assertion


def _q(assertion, local: str) -> str:
    return ns.qname(SAML2 if assertion.tag == saml.ASSERTION2 else SAML1, local)


def _subject(assertion):
    if assertion.tag == saml.ASSERTION2:
        return assertion.find(_q(assertion, "Subject"))
    return assertion.find(f"{_q(assertion, 'AuthenticationStatement')}/{_q(assertion, 'Subject')}")


def _name(assertion):
    subject = _subject(assertion)
    return subject.find(
        _q(assertion, "NameID" if assertion.tag == saml.ASSERTION2 else "NameIdentifier")
    )


def _split_with_comment(el, at: int) -> None:
    """``el``'s text split by an empty comment: exclusive C14N drops it, so every signature
    over ``el`` still verifies, while a reader taking the first text node sees less."""
    text = el.text
    el.text = text[:at]
    comment = etree.Comment("")
    comment.tail = text[at:]
    el.insert(0, comment)


def _resign(assertion, strategy) -> None:
    """Sign ``assertion`` anew with the STS's key: what the STS would have issued."""
    assertion.remove(assertion.find(SIGNATURE))
    saml.sign_assertion(assertion, strategy.setup.identity("sts"))


def _edit(forge):
    """A byte-level forger from a tree edit ``forge(root, strategy)``."""

    def rewrite(data: bytes, strategy) -> bytes:
        root = etree.fromstring(data)
        forge(root, strategy)
        return etree.tostring(root)

    return rewrite


def _run(strategy, rewrite, *, kind="app-request", role="provider"):
    """A live session whose first ``kind`` message to a ``role`` node the attacker rewrites
    with ``rewrite(data, strategy)``; the answer of the node that received it, and the
    client's result."""

    def tamper(delivery):
        if delivery.send.kind == kind and role_of(delivery.receiver) == role:
            return rewrite(delivery.send.data, strategy)
        return None

    outcome = Harness(strategy, tamper=tamper).request(b"payload", 0.0)
    delivery = next(
        d for d in outcome.deliveries if d.send.kind == kind and role_of(d.receiver) == role
    )
    return delivery.handled.events, outcome.results[-1]


def _refused(events, result, code: str = "wsse:InvalidSecurityToken") -> None:
    [answer] = events
    assert answer.kind == "fault", "the forged message was accepted"
    assert answer.fault == code, answer.data
    assert not result.ok


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", (*TOKEN_STRATEGIES, "sender-vouches"))
def test_an_untouched_message_rewritten_by_the_attackers_tools_is_accepted(make, name, version):
    """The control: parsing and reserializing a real request keeps it valid, so every refusal
    below is the receiver's check, not a broken message."""
    events, result = _run(make(name, version), _edit(lambda root, strategy: None))
    assert [e.kind for e in events] == ["app-response"]
    assert result.ok and result.payload == b"payload"


# --- class 1: unsigned content read as signed ---------------------------------------------


def _plant(placement: str):
    """An attacker's subject named ``admin`` (with the message's own proof key, so that the
    message signature still verifies), planted inside the assertion's own ds:Signature,
    which the enveloped-signature transform removes from the digest."""

    def forge(root, strategy):
        assertion = _assertion(root)
        evil = copy.deepcopy(_subject(assertion))
        name = evil.find(
            _q(assertion, "NameID" if assertion.tag == saml.ASSERTION2 else "NameIdentifier")
        )
        name.text = "admin"
        for el in evil.iter():  # a copied EncryptedKey keeps no Id: ids must stay unique
            el.attrib.pop("Id", None)
        signature = assertion.find(SIGNATURE)
        if placement in ("signature-first", "object-first"):
            # a reader taking the first child that holds a Subject now meets the signature
            assertion.remove(signature)
            assertion.insert(0, signature)
        if placement in ("signature-first", "signature-in-place"):
            signature.append(evil)
        elif placement == "object-first":
            holder = etree.SubElement(signature, ns.qname(DS, "Object"))
            if assertion.tag == saml.ASSERTION1:
                holder = etree.SubElement(holder, _q(assertion, "AuthenticationStatement"))
            holder.append(evil)
        elif placement == "key-info":
            signature.find(ns.qname(DS, "KeyInfo")).append(evil)
        elif placement == "signature-value":
            signature.find(ns.qname(DS, "SignatureValue")).append(evil)

    return _edit(forge)


PLACEMENTS = (
    "signature-first",
    "object-first",
    "signature-in-place",
    "key-info",
    "signature-value",
)


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", TOKEN_STRATEGIES)
def test_a_subject_planted_in_the_assertions_own_signature_is_refused(
    make, name, version, placement
):
    _refused(*_run(make(name, version), _plant(placement)))


@pytest.mark.parametrize("where", ["assertion", "subject", "confirmation", "conditions"])
@pytest.mark.parametrize("version", VERSIONS)
def test_an_unexpected_child_of_an_sts_signed_assertion_is_refused(make, version, where):
    """Content the reader does not understand, even signed by the STS, is refused rather
    than skipped (a statement, condition or key a lax reader would not see)."""

    def forge(root, strategy):
        assertion = _assertion(root)
        subject = _subject(assertion)
        parent = {
            "assertion": assertion,
            "subject": subject,
            "confirmation": subject.find(_q(assertion, "SubjectConfirmation")),
            "conditions": assertion.find(_q(assertion, "Conditions")),
        }[where]
        etree.SubElement(parent, ns.qname(ns.APP, "Extra")).text = "x"
        _resign(assertion, strategy)

    _refused(*_run(make("bearer", version), _edit(forge)))


# --- class 2: comments in signed values ----------------------------------------------------


def _comment_in(path: str, at: int):
    def forge(root, strategy):
        assertion = _assertion(root)
        if path == "name":
            el = _name(assertion)
        elif path == "issuer":
            el = assertion.find(_q(assertion, "Issuer"))
        elif path == "audience":
            el = next(assertion.iter(_q(assertion, "Audience")))
        elif path == "method":
            el = next(assertion.iter(_q(assertion, "ConfirmationMethod")))
        elif path == "class-ref":
            el = next(assertion.iter(_q(assertion, "AuthnContextClassRef")))
        elif path == "modulus":
            el = next(assertion.iter(ns.qname(DS, "Modulus")))
        _split_with_comment(el, at)

    return _edit(forge)


@pytest.mark.parametrize(
    ("name", "version", "path"),
    [
        ("bearer", "2.0", "name"),
        ("bearer", "1.1", "name"),
        ("bearer", "2.0", "issuer"),
        ("bearer", "2.0", "audience"),
        ("bearer", "1.1", "audience"),
        ("bearer", "1.1", "method"),
        ("bearer", "2.0", "class-ref"),
        ("hok-public", "2.0", "modulus"),
        ("hok-public", "1.1", "modulus"),
    ],
)
def test_a_comment_inside_a_signed_value_is_refused(make, name, version, path):
    """The signature still verifies (C14N drops comments): the reader must refuse."""
    _refused(*_run(make(name, version), _comment_in(path, 5)))


def _issued_for(audiences: list[list[str]], comment_at: int | None = None):
    """The request's assertion as the STS signs it for ``audiences`` (one list per
    AudienceRestriction), the first Audience then split by a comment at ``comment_at``."""

    def forge(root, strategy):
        assertion = _assertion(root)
        conditions = assertion.find(_q(assertion, "Conditions"))
        restriction = _q(
            assertion,
            "AudienceRestriction"
            if assertion.tag == saml.ASSERTION2
            else "AudienceRestrictionCondition",
        )
        for old in conditions.findall(restriction):
            conditions.remove(old)
        for values in audiences:
            holder = etree.SubElement(conditions, restriction)
            for value in values:
                etree.SubElement(holder, _q(assertion, "Audience")).text = value
        _resign(assertion, strategy)
        if comment_at is not None:
            _split_with_comment(next(conditions.iter(_q(assertion, "Audience"))), comment_at)

    return _edit(forge)


@pytest.mark.parametrize("version", VERSIONS)
def test_an_audience_truncated_by_a_comment_does_not_match(make, version):
    """Issued for ``.../service-billing``; ``.../service<!---->-billing`` must not pass as
    ``.../service``."""
    forge = _issued_for([[BILLING]], comment_at=len(PROVIDER_ADDRESS))
    _refused(*_run(make("bearer", version), forge))


# --- class 9: every AudienceRestriction must hold -------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_every_audience_restriction_must_hold(make, version):
    forge = _issued_for([[BILLING], [PROVIDER_ADDRESS]])
    _refused(*_run(make("bearer", version), forge), "wsse:FailedCheck")


@pytest.mark.parametrize("version", VERSIONS)
def test_one_audience_of_a_restriction_suffices(make, version):
    """The control: within one restriction, any of its audiences matches."""
    forge = _issued_for([[BILLING, PROVIDER_ADDRESS], [PROVIDER_ADDRESS]])
    events, result = _run(make("bearer", version), forge)
    assert [e.kind for e in events] == ["app-response"] and result.ok


# --- class 6: the tokens the policy requires ------------------------------------------------


def _x509_signed(signer: str, *, with_assertion: bool, recipient: str | None = None):
    """A request signed with the certificate ``signer`` holds (a BinarySecurityToken, as any
    party the CA certified can send), optionally carrying the real request's assertion."""

    def rewrite(data: bytes, strategy) -> bytes:
        original = etree.fromstring(data)
        tokens = [copy.deepcopy(_assertion(original))] if with_assertion else []
        message_id = original.find(f"{HEADER}/{ns.qname(ns.WSA, 'MessageID')}").text
        envelope = soap.new_envelope()
        # in place of the original, in its exchange (the same MessageID)
        soap.add_addressing(envelope, action=APP_ACTION, to=PROVIDER_ADDRESS, message_id=message_id)
        p.put_payload(envelope, b"forged")
        return p.protect_asymmetric(
            envelope,
            sender=strategy.setup.identity(signer),
            recipient=strategy.setup.identity(recipient) if recipient else None,
            now=0.0,
            ledger=Ledger(),
            suite_=strategy.setup.suite,
            tokens=tokens,
        )

    return rewrite


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("with_assertion", [False, True], ids=["no-assertion", "assertion"])
def test_hok_public_refuses_a_message_signed_by_a_certificate_instead_of_the_subject_key(
    make, version, with_assertion
):
    forge = _x509_signed("client-1", with_assertion=with_assertion)
    events, result = _run(make("hok-public", version), forge)
    [answer] = events
    assert answer.kind == "fault" and not result.ok


def _without_assertion(root, strategy):
    security = _security(root)
    security.remove(_assertion(root))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", TOKEN_STRATEGIES)
def test_a_request_without_its_assertion_is_refused(make, name, version):
    events, result = _run(make(name, version), _edit(_without_assertion))
    [answer] = events
    assert answer.kind == "fault" and not result.ok


@pytest.mark.parametrize("version", VERSIONS)
def test_a_holder_of_key_assertion_does_not_stand_in_for_a_bearer_token(make, version):
    """A real holder-of-key assertion, issued by the same STS to a hok-public client, sent
    to the bearer provider without proving possession of its key."""
    [captured] = [
        d.send.data
        for d in Harness(make("hok-public", version)).request(b"x", 0.0).deliveries
        if d.send.kind == "app-request"
    ]

    def forge(root, strategy):
        security = _security(root)
        security.replace(_assertion(root), copy.deepcopy(_assertion(etree.fromstring(captured))))

    _refused(*_run(make("bearer", version), _edit(forge)))


@pytest.mark.parametrize("version", VERSIONS)
def test_a_sender_vouches_assertion_does_not_stand_in_for_a_bearer_token(make, version):
    [captured] = [
        d.send.data
        for d in Harness(make("sender-vouches", version)).request(b"x", 0.0).deliveries
        if d.send.kind == "app-request" and role_of(d.receiver) == "provider"
    ]

    def forge(root, strategy):
        root_of_captured = etree.fromstring(captured)
        security = _security(root)
        security.replace(_assertion(root), copy.deepcopy(_assertion(root_of_captured)))

    _refused(*_run(make("bearer", version), _edit(forge)))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("signer", "with_assertion"),
    [("client-1", True), ("intermediary", False)],
    ids=["untrusted-signer", "no-assertion"],
)
def test_sender_vouches_provider_requires_a_trusted_signature_over_the_assertion(
    make, version, signer, with_assertion
):
    forge = _x509_signed(signer, with_assertion=with_assertion, recipient="provider")
    events, result = _run(make("sender-vouches", version), forge)
    [answer] = events
    assert answer.kind == "fault" and not result.ok


@pytest.mark.parametrize("version", VERSIONS)
def test_sender_vouches_provider_requires_the_assertion_to_be_signed_by_the_intermediary(
    make, version
):
    """The intermediary's signature covers Body, Timestamp and Action but not the assertion
    it carries: anyone could have put it there."""
    forge = _x509_signed("intermediary", with_assertion=True, recipient="provider")
    events, result = _run(make("sender-vouches", version), forge)
    [answer] = events
    assert answer.kind == "fault" and not result.ok


# --- class 3: reflection --------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", (*TOKEN_STRATEGIES, "sender-vouches"))
def test_a_client_refuses_its_own_request_as_the_reply(make, name, version):
    strategy = make(name, version)
    sent: list[bytes] = []

    def tamper(delivery):
        if delivery.send.kind == "app-request" and delivery.sender == "client-0":
            sent.append(delivery.send.data)
        if delivery.send.kind == "app-response" and delivery.receiver == "client-0":
            return sent[-1]
        return None

    outcome = Harness(strategy, tamper=tamper).request(b"payload", 0.0)
    result = outcome.results[-1]
    assert not result.ok, "the client took its own request for the reply"


@pytest.mark.parametrize("version", VERSIONS)
def test_a_client_refuses_its_own_token_request_as_the_sts_reply(make, version):
    sent: list[bytes] = []

    def tamper(delivery):
        if delivery.send.kind == "rst-issue":
            sent.append(delivery.send.data)
        if delivery.send.kind == "rstr-issue":
            return sent[-1]
        return None

    outcome = Harness(make("bearer", version), tamper=tamper).request(b"payload", 0.0)
    assert not outcome.results[-1].ok


@pytest.mark.parametrize("version", VERSIONS)
def test_a_client_refuses_a_reply_to_another_request(make, version):
    """A genuine response to the client's first request, delivered as the reply to its
    second: its RelatesTo names another MessageID."""
    strategy = make("bearer", version)
    replies: list[bytes] = []

    def tamper(delivery):
        if delivery.send.kind == "app-response":
            replies.append(delivery.send.data)
            if len(replies) == 2:
                return replies[0]
        return None

    harness = Harness(strategy, tamper=tamper)
    assert harness.request(b"first", 0.0).results[-1].ok
    assert not harness.request(b"second", 1.0).results[-1].ok


def _reflected_response(name: str, version: str, make, *, comment_in_action: bool = False):
    """The provider's own response to a real request, the request's assertion copied into its
    Security header, sent back to the provider as a request."""
    harness = Harness(make(name, version))
    outcome = harness.request(b"payload", 0.0)
    request = next(d for d in outcome.deliveries if d.send.kind == "app-request")
    response = next(d for d in outcome.deliveries if d.send.kind == "app-response")
    root = etree.fromstring(response.send.data)
    timestamp = _security(root).find(TIMESTAMP)
    timestamp.addnext(copy.deepcopy(_assertion(etree.fromstring(request.send.data))))
    if comment_in_action:  # Process<!---->Response: C14N reads ProcessResponse, .text Process
        _split_with_comment(root.find(f"{HEADER}/{ns.qname(ns.WSA, 'Action')}"), len(APP_ACTION))
    provider = harness.servers[request.receiver]
    return provider.receive(etree.tostring(root), sender="client-0", now=1.0).events


@pytest.mark.parametrize("comment", [False, True], ids=["plain", "comment-in-action"])
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", ["hok-symmetric", "bearer", "hok-public"])
def test_a_provider_refuses_its_own_response_as_a_request(make, name, version, comment):
    [answer] = _reflected_response(name, version, make, comment_in_action=comment)
    assert answer.kind == "fault", "the provider took its own response for a request"


@pytest.mark.parametrize("version", VERSIONS)
def test_the_sts_refuses_its_own_token_response_as_a_request(make, version):
    harness = Harness(make("bearer", version))
    outcome = harness.request(b"payload", 0.0)
    response = next(d for d in outcome.deliveries if d.send.kind == "rstr-issue")
    sts = harness.servers[response.sender]
    [answer] = sts.receive(response.send.data, sender="client-0", now=1.0).events
    assert answer.kind == "fault" and sts.last_refusal == "action"
