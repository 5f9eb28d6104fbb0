"""XML Signature verification attacked from outside, through live sessions: messages built to
burn a receiver's CPU before anyone is authenticated (class 5 of issue 14), and messages
signed with algorithms outside the receiver's suite (class 9).

Each test runs real sessions between the real engines (the in-memory harness), rewrites
the bytes of a real message as an attacker would (or runs an attacker's own client),
delivers them to the live receiving engine and checks its refusal: a SOAP fault with a
standard code; the check of ``dsig.verify`` that refused it (a spy: a receiver that had
started decrypting answers only its one decryption fault, issue 14 class 4, so the SOAP
fault does not name it); and the canonicalizations the receiver made (a spy on the crypto
facade: what the CPU burn was). Never a timing: ``benchmarks/bench_refusal.py`` measures
the cost.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

import sim.crypto as crypto
from sim.errors import FAULTS_BY_CODE, SecurityFault
from sim.protocol import build_strategy
from sim.protocol.harness import Delivery, Harness
from sim.wire import dsig, soap
from sim.wire.ns import DigestAlg, SignatureAlg
from tests.attacks.signature_forgery import BEYOND_THE_BOUNDS, SIZE, WITHIN_THE_BOUNDS


@pytest.fixture
def make(key_dir):
    def factory(name: str, **options):
        return build_strategy(name, options or None, key_dir=key_dir)

    return factory


@pytest.fixture
def canonicalized(monkeypatch) -> list[tuple[str, str, int]]:
    """Every canonicalization made through the crypto facade while the test runs, as
    ``(kind, element tag, bytes)``: "c14n" (SignedInfo) or "digest" (a reference)."""
    seen: list[tuple[str, str, int]] = []
    exc_c14n, c14n_digest_sized = crypto.exc_c14n, crypto.c14n_digest_sized

    def spy_c14n(element, **options):
        out = exc_c14n(element, **options)
        seen.append(("c14n", element.tag, len(out)))
        return out

    def spy_digest(element, algorithm="sha1", **options):
        value, size = c14n_digest_sized(element, algorithm, **options)
        seen.append(("digest", element.tag, size))
        return value, size

    monkeypatch.setattr(crypto, "exc_c14n", spy_c14n)
    monkeypatch.setattr(crypto, "c14n_digest_sized", spy_digest)
    return seen


class Refusals(list):
    """The check of every refusal ``dsig.verify`` raised inside a server engine's
    ``receive`` (the client's own refusals of the replies are not the attack's outcome)."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = 0

    def watch(self, harness: Harness) -> Harness:
        for server in harness.servers.values():
            receive = server.receive

            def watched(data, *, _receive=receive, **options):
                self.inside += 1
                try:
                    return _receive(data, **options)
                finally:
                    self.inside -= 1

            server.receive = watched
        return harness


@pytest.fixture
def refusals(monkeypatch) -> Refusals:
    seen = Refusals()
    verify = dsig.verify

    def spy(*args, **kwargs):
        try:
            return verify(*args, **kwargs)
        except SecurityFault as fault:
            if seen.inside:
                seen.append(fault.check)
            raise

    monkeypatch.setattr(dsig, "verify", spy)
    return seen


#: strategies whose provider verifies a signature an outsider can reach: X.509 (any client
#: of the CA), SecureConversation (a captured context reference) and a bearer assertion
#: (a captured assertion, over TLS: the message itself is neither signed nor encrypted)
STRATEGIES = ["x509", "sct", "bearer"]
_MESSAGE_ID = re.compile(rb"(<a:MessageID[^>]*>)([^<]*)(</a:MessageID>)")


def _request(strategy) -> tuple[Harness, Delivery]:
    """A live session, and its first application request (the provider knows the client,
    its certificate or its security context)."""
    harness = Harness(strategy)
    outcome = harness.request(b"PAY 100", now=0.0)  # the session stays open
    return harness, next(d for d in outcome.deliveries if d.send.kind == "app-request")


def _captured(name: str, data: bytes) -> bytes:
    """What the attacker starts from: the request as captured, under a MessageID of its own
    where nothing signs it (bearer: TLS only), so that the replay check does not stop it."""
    if name != "bearer":
        return data
    return _MESSAGE_ID.sub(lambda m: m.group(1) + b"urn:uuid:attacker" + m.group(3), data, 1)


def _refused(harness: Harness, data: bytes, now: float) -> str:
    """Deliver ``data`` to the provider: its one answer must be a SOAP fault with a standard
    code; returns the check that refused it."""
    provider = harness.servers["provider-0"]
    [event] = provider.receive(data, sender="client-0", now=now).events
    assert event.fault in FAULTS_BY_CODE, f"accepted, answered {event.kind}"
    soap.read_fault(soap.read_envelope(event.data))
    return provider.last_refusal


def _forged_and_refused(make, name: str, forge, refusals, canonicalized) -> str:
    """A live session's first request of ``name``, captured, forged by ``forge`` to about
    ``SIZE`` bytes and delivered to the provider, with the refusals and canonicalizations
    watched from the delivery on; returns the check that refused it."""
    harness, request = _request(make(name))
    refusals.watch(harness)
    forged = forge(_captured(name, request.send.data))
    assert SIZE - 2048 < len(forged) <= SIZE
    canonicalized.clear()
    return _refused(harness, forged, request.t + 1.0)


@pytest.mark.parametrize("name", STRATEGIES)
@pytest.mark.parametrize("forge", BEYOND_THE_BOUNDS.values(), ids=BEYOND_THE_BOUNDS)
def test_a_message_built_to_burn_cpu_is_refused_by_the_bounds_before_any_c14n(
    make, canonicalized, refusals, name, forge
):
    """An outsider rewrites a captured request to 29 KB of what C14N and the reference
    digests cost most: the receiver refuses it on the bounds of what a sender controls
    before its signature is verified, having canonicalized nothing."""
    check = _forged_and_refused(make, name, forge, refusals, canonicalized)
    assert refusals == ["limits"]
    assert canonicalized == []
    assert check == ("limits" if name == "bearer" else "decryption")


@pytest.mark.parametrize("name", STRATEGIES)
@pytest.mark.parametrize("forge", WITHIN_THE_BOUNDS.values(), ids=WITHIN_THE_BOUNDS)
def test_a_message_within_the_bounds_is_refused_by_its_signature_before_any_digest(
    make, canonicalized, refusals, name, forge
):
    """Within every bound, the references of a SignedInfo the sender could not sign are
    never digested: the SignatureValue is verified first (as WSS4J and Santuario do)."""
    check = _forged_and_refused(make, name, forge, refusals, canonicalized)
    assert refusals == ["signature"]
    assert [(kind, tag.rpartition("}")[2]) for kind, tag, _ in canonicalized] == [
        ("c14n", "SignedInfo")
    ]
    assert check == ("signature" if name == "bearer" else "decryption")


# --- class 9: algorithm policy -------------------------------------------------------------


SHA1_FORMS = {
    "sha1-digests": dict(digest=DigestAlg.SHA1),
    "rsa-sha1": dict(asymmetric_signature=SignatureAlg.RSA_SHA1),
    "hmac-sha1": dict(symmetric_signature=SignatureAlg.HMAC_SHA1),
    "all-sha1": dict(
        digest=DigestAlg.SHA1,
        asymmetric_signature=SignatureAlg.RSA_SHA1,
        symmetric_signature=SignatureAlg.HMAC_SHA1,
    ),
}


def _attacked_by_own_client(make, name: str, suite: str, **signing) -> Harness:
    """A live session of the strategy under ``suite`` whose client, holding a valid identity
    (same CA, same keys), signs with ``signing`` in place of the suite's algorithms."""
    victim = make(name, suite=suite)
    attacker = make(name, suite=suite)
    attacker.setup.suite = dataclasses.replace(attacker.setup.suite, **signing)
    harness = Harness(victim)
    harness.client = attacker.client("client-0")
    return harness


#: what a receiver answers when it refuses a message: UnsupportedAlgorithm, or the one fault
#: of a receiver that had started decrypting
REFUSED = {"wsse:UnsupportedAlgorithm", "wsse:FailedCheck"}


@pytest.mark.parametrize(
    ("name", "form"),
    [
        ("x509", "sha1-digests"),
        ("x509", "rsa-sha1"),
        ("x509", "all-sha1"),
        ("hok-public", "rsa-sha1"),
        ("sct", "hmac-sha1"),
        ("sct", "sha1-digests"),
        ("ut-derived", "hmac-sha1"),
    ],
)
def test_a_basic256sha256_receiver_refuses_a_message_re_signed_with_sha1(
    make, refusals, name, form
):
    """The attacker is a genuine client: only the algorithms are wrong. The first message
    signed with a SHA-1 form (the bootstrap's RSA signature for rsa-sha1, the application
    message for hmac-sha1) is refused on its algorithm, and the session ends in that fault
    (the control below: the same sessions with the suite's algorithms succeed)."""
    harness = refusals.watch(
        _attacked_by_own_client(make, name, "Basic256Sha256", **SHA1_FORMS[form])
    )
    outcome = harness.session([b"PAY 100"])
    [result] = outcome.results
    assert not result.ok and result.fault in REFUSED, result
    assert not any(d.send.kind == "app-response" for d in outcome.deliveries)
    assert refusals and set(refusals) == {"algorithm"}  # the close may be refused too


@pytest.mark.parametrize(
    "signing",
    [
        dict(digest=DigestAlg.SHA256),
        dict(asymmetric_signature=SignatureAlg.RSA_SHA256),
        dict(symmetric_signature=SignatureAlg.HMAC_SHA256),
    ],
    ids=["sha256-digests", "rsa-sha256", "hmac-sha256"],
)
def test_a_basic256_receiver_refuses_what_is_not_its_suite(make, refusals, signing):
    harness = refusals.watch(_attacked_by_own_client(make, "sct", "Basic256", **signing))
    outcome = harness.session([b"PAY 100"])
    [result] = outcome.results
    assert not result.ok and result.fault in REFUSED, result
    assert not any(d.send.kind == "app-response" for d in outcome.deliveries)
    assert refusals and set(refusals) == {"algorithm"}


@pytest.mark.parametrize("suite", ["Basic256Sha256", "Basic128Sha256Rsa15", "Basic256"])
@pytest.mark.parametrize("name", ["x509", "sct", "hok-public"])
def test_a_client_signing_with_its_suite_is_accepted(make, refusals, name, suite):
    """The control: the same sessions with the suite's own algorithms succeed."""
    harness = refusals.watch(_attacked_by_own_client(make, name, suite))
    [result] = harness.session([b"PAY 100"]).results
    assert result.ok, result
    assert refusals == []
