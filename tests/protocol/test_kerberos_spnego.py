"""``sct-spnego``: a ticket from the KDC, the SPNEGO legs tunneled in WS-Trust, then the
context as ``sct`` keeps it (derived keys, Renew, Cancel, BadContextToken recovery)."""

from __future__ import annotations

from collections import Counter

import pytest

from sim.errors import InvalidSecurityToken
from sim.protocol.harness import Harness
from sim.wire import kerberos as k
from sim.wire import spnego
from sim.wire.ns import Action
from tests.tampering import flip_base64_char

KDC_LEGS = ["krb-as-req", "krb-as-rep", "krb-tgs-req", "krb-tgs-rep"]
NEGOTIATION = ["rst-spnego", "rstrc-spnego"]
APP = ["app-request", "app-response"]


def kinds(outcome):
    return [str(d.send.kind) for d in outcome.deliveries]


def test_the_context_is_negotiated_once_then_messages_use_derived_keys(make):
    harness = Harness(make("sct-spnego"))
    first, second = harness.request(b"a", 0.0), harness.request(b"b", 1.0)
    assert kinds(first) == KDC_LEGS + NEGOTIATION + APP
    assert kinds(second) == APP
    ops = Counter(op for _, steps in second.ops.get("provider-0", []) for op, _ in steps)
    assert ops["krb_decrypt"] == 0 and ops["p_sha1"] == 4  # two keys to read, two to reply
    closed = harness.close(2.0)
    assert kinds(closed) == ["rst-cancel", "rstr-cancel"] and closed.closed


def test_the_legs_carry_spnego_with_the_kerberos_ap_req_and_ap_rep(make):
    outcome = Harness(make("sct-spnego")).request(b"a", 0.0)
    legs = {str(d.send.kind): d.send.data for d in outcome.deliveries}
    actions = {str(d.send.kind): d.send.action for d in outcome.deliveries}
    assert actions["rst-spnego"] == Action.SCT_ISSUE.value
    assert actions["rstrc-spnego"] == Action.RSTRC_ISSUE_FINAL.value
    assert b"http://schemas.xmlsoap.org/ws/2005/02/trust/spnego" in legs["rst-spnego"]
    assert b"BinaryExchange" in legs["rst-spnego"] and b"BinaryExchange" in legs["rstrc-spnego"]
    assert b"Authenticator" in legs["rstrc-spnego"] and b"spnego#GSS_Wrap" in legs["rstrc-spnego"]
    provider = next(d for d in outcome.deliveries if d.send.kind == "rst-spnego")
    ops = Counter(op for op, _ in provider.handled_ops)
    # the ticket and authenticator opened, the AP-REP and the wrapped key sealed
    assert ops["krb_decrypt"] == 2 and ops["krb_encrypt"] == 2


def test_a_provider_that_lost_the_context_renegotiates_without_the_kdc(make):
    harness = Harness(make("sct-spnego"))
    harness.request(b"a", 0.0)
    harness.servers["provider-0"].contexts.clear()
    outcome = harness.request(b"b", 1.0)
    assert kinds(outcome) == ["app-request", "fault", *NEGOTIATION, *APP]
    assert outcome.results[0].ok and outcome.results[0].recoveries == 1


def test_the_context_is_renewed_when_due(make):
    harness = Harness(make("sct-spnego", {"sct_lifetime_s": 100.0, "renew_at": 0.5}))
    harness.request(b"a", 0.0)
    outcome = harness.request(b"b", 60.0)
    assert kinds(outcome) == ["rst-renew", "rstr-renew", *APP]


def test_an_offer_bound_to_another_context_is_refused(make, monkeypatch):
    harness = Harness(make("sct-spnego"))
    real = k.gss_checksum
    monkeypatch.setattr(
        k, "gss_checksum", lambda binding, **kw: real(b"uuid-of-another-context", **kw)
    )
    outcome = harness.request(b"a", 0.0)
    assert harness.servers["provider-0"].last_refusal == "kerberos-binding"
    assert not outcome.results[0].ok


def test_a_replayed_first_leg_is_refused(make):
    harness = Harness(make("sct-spnego"))
    outcome = harness.request(b"a", 0.0)
    leg = next(d for d in outcome.deliveries if d.send.kind == "rst-spnego").send.data
    provider = harness.servers["provider-0"]
    provider.receive(leg, sender="client-0", now=1.0)
    assert provider.last_refusal == "replay"


def test_a_tampered_ap_rep_fails_the_negotiation_at_the_client(make):
    def tamper(delivery):
        if delivery.send.kind == "rstrc-spnego":
            data = delivery.send.data
            # the NegTokenResp's BinaryExchange: flip a base64 character inside it
            start = data.index(b"BinaryExchange") + 200
            return flip_base64_char(data, start)
        return None

    outcome = Harness(make("sct-spnego"), tamper=tamper).request(b"a", 0.0)
    assert not outcome.results[0].ok


def test_spnego_tokens_round_trip_and_refuse_garbage():
    token = spnego.build_init((spnego.KRB5_OID, spnego.NTLM_OID), b"ap-req")
    assert spnego.read_init(token) == spnego.NegTokenInit(
        (spnego.KRB5_OID, spnego.NTLM_OID), b"ap-req"
    )
    answer = spnego.build_resp(spnego.ACCEPT_COMPLETED, spnego.KRB5_OID, b"ap-rep")
    assert spnego.read_resp(answer) == spnego.NegTokenResp(0, spnego.KRB5_OID, b"ap-rep")
    for garbage in (b"", b"\x60\x00", answer, token[:-3]):
        with pytest.raises(InvalidSecurityToken):
            spnego.read_init(garbage)
