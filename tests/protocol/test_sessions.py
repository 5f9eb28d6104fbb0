"""Every strategy: full sessions between real engines, reuse of tokens and contexts exactly as
the strategy says, and deterministic ledgers."""

from __future__ import annotations

from collections import Counter

import pytest

from sim.protocol import STRATEGY_NAMES
from sim.protocol.harness import Harness

RSA = ("rsa_sign", "rsa_verify", "rsa_encrypt", "rsa_decrypt", "rsa_keygen")
VARIANTS = [(name, {}) for name in STRATEGY_NAMES] + [
    ("sct-tlsnego", {"tlsnego": False}),
    ("hok-symmetric", {"proof": "computed-key"}),
    ("bearer", {"saml_version": "1.1"}),
    ("sct", {"derived_keys": False}),
]


def payloads(n):
    return [bytes([i]) * (50 + i) + b"\x00\xff<&>" for i in range(n)]


@pytest.mark.parametrize(("name", "options"), VARIANTS, ids=lambda v: str(v))
def test_a_session_delivers_every_payload_intact_both_ways(make, name, options):
    sent = payloads(5)
    outcome = Harness(make(name, options)).session(sent)
    assert [r.ok for r in outcome.results] == [True] * 5
    assert [r.payload for r in outcome.results] == sent
    assert outcome.closed
    assert not any(d.send.fault for d in outcome.deliveries)


def _ops_by_message(strategy, count=4):
    """Per application message (after the first), the ops of every actor, as counters."""
    harness = Harness(strategy)
    per_message = []
    for i, payload in enumerate(payloads(count)):
        outcome = harness.request(payload, float(i))
        totals = Counter()
        for steps in outcome.ops.values():
            for _, ops in steps:
                totals.update(op for op, _ in ops)
        per_message.append((totals, outcome.deliveries))
    return per_message


def test_sct_establishes_once_then_uses_no_rsa(make):
    messages = _ops_by_message(make("sct"))
    first, rest = messages[0], messages[1:]
    assert sum(first[0][op] for op in RSA) >= 4  # bootstrap: sign, verify, wrap, unwrap both ways
    assert [d.send.kind for d in first[1]] == ["rst-sct", "rstr-sct", "app-request", "app-response"]
    for totals, deliveries in rest:
        assert sum(totals[op] for op in RSA) == 0
        assert [d.send.kind for d in deliveries] == ["app-request", "app-response"]
        assert totals["p_sha1"] == 8  # two derived keys per message, derived on both sides
        assert totals["hmac"] == 4


def test_x509_does_rsa_work_on_every_message(make):
    for totals, deliveries in _ops_by_message(make("x509")):
        assert len(deliveries) == 2
        # each side verifies the other's signature and the CA's on the other's certificate
        assert totals["rsa_sign"] == 2 and totals["rsa_verify"] == 4
        assert totals["rsa_encrypt"] == 2 and totals["rsa_decrypt"] == 2


def test_bearer_per_message_asks_the_sts_every_time(make):
    for totals, deliveries in _ops_by_message(make("bearer-per-message")):
        assert sum(d.send.token_service for d in deliveries) == 2
        assert totals["rsa_sign"] == 1  # the STS signs one assertion per message


def test_bearer_token_is_reused_until_its_renewal_point(make):
    strategy = make("bearer", {"token_lifetime_s": 100.0, "renew_at": 0.5})
    harness = Harness(strategy)
    sts_exchanges = []
    for t in (0.0, 10.0, 20.0, 49.0, 51.0, 60.0):
        outcome = harness.request(b"p", t)
        sts_exchanges.append(sum(d.send.token_service for d in outcome.deliveries) // 2)
        assert outcome.results[-1].ok
    assert sts_exchanges == [1, 0, 0, 0, 1, 0]


@pytest.mark.parametrize(
    "name", ["hok-symmetric", "hok-public", "ut-derived", "sender-vouches", "sct-tlsnego"]
)
def test_op_counts_follow_the_strategy_structure(make, name):
    messages = _ops_by_message(make(name))
    totals, _ = messages[-1]
    if name == "hok-symmetric":
        assert totals["rsa_verify"] == 1 and totals["rsa_decrypt"] == 1  # provider checks token
        assert totals["rsa_sign"] == 0
    if name == "hok-public":
        assert totals["rsa_sign"] == 1 and totals["rsa_verify"] == 2  # endorsing + STS signature
        assert messages[0][0]["rsa_keygen"] == 1 and totals["rsa_keygen"] == 0
    if name == "ut-derived":
        # each side derives the request's key and the response's (its own Salt)
        assert totals["ut_derive"] == 4 and sum(totals[op] for op in RSA) == 0
    if name == "sender-vouches":
        assert totals["rsa_sign"] == 5  # intermediary x2, STS x2 (RSTR + assertion), provider
    if name == "sct-tlsnego":
        assert sum(totals[op] for op in RSA) == 0
        assert messages[0][0]["tls_handshake"] == 2


@pytest.mark.parametrize(("name", "options"), VARIANTS, ids=lambda v: str(v))
def test_message_sizes_and_ledgers_are_deterministic(make, name, options):
    def trace():
        harness = Harness(make(name, options))
        out = harness.session(payloads(3))
        sizes = [(d.send.kind, len(d.send.data)) for d in out.deliveries]
        ledgers = {node: [ops for _, ops in steps] for node, steps in out.ops.items()}
        return sizes, ledgers

    assert trace() == trace()


def test_certificates_are_available_for_traces(make):
    certificates = make("x509").certificates()
    assert {"sts", "provider", "intermediary", "client-0"} <= set(certificates)
    assert all(pem.startswith(b"-----BEGIN CERTIFICATE-----") for pem in certificates.values())


@pytest.mark.parametrize(
    ("name", "options", "key"),
    [
        ("sct", {"sct_lifetime_s": -1}, "strategy_options.sct.sct_lifetime_s"),
        ("bearer", {"saml_version": "3.0"}, "strategy_options.bearer.saml_version"),
        ("x509", {"nonsense": 1}, "strategy_options.x509.nonsense"),
        ("ut-derived", {"suite": "Basic512"}, "strategy_options.ut-derived.suite"),
    ],
)
def test_bad_options_are_reported_when_the_strategy_is_built(make, name, options, key):
    from sim.errors import ScenarioError

    with pytest.raises(ScenarioError) as error:
        make(name, options)
    assert error.value.key == key
