"""``kerberos``: the KDC exchanges, the credentials cache, the per-message AP-REQ token and
its strict receiver (service principal, freshness, replay, binding, ticket lifetime)."""

from __future__ import annotations

from collections import Counter

import pytest

from sim.protocol.harness import Harness
from sim.wire import kerberos as k
from sim.wire.kerberos import Principal
from tests.tampering import flip_base64_char

KDC_LEGS = ["krb-as-req", "krb-as-rep", "krb-tgs-req", "krb-tgs-rep"]
APP = ["app-request", "app-response"]


def kinds(outcome):
    return [str(d.send.kind) for d in outcome.deliveries]


def ops_of(outcome, node):
    return Counter(op for _, ops in outcome.ops.get(node, []) for op, _ in ops)


def test_the_client_gets_a_tgt_and_a_ticket_once_and_keeps_them_for_their_lifetime(make):
    harness = Harness(make("kerberos", {"ticket_lifetime_s": 600.0}))
    first = harness.request(b"one", 0.0)
    second = harness.request(b"two", 10.0)
    assert kinds(first) == KDC_LEGS + APP
    assert kinds(second) == APP
    # past the lifetime (less the renewal margin): a new TGT and ticket first
    late = harness.request(b"three", 600.0)
    assert kinds(late) == KDC_LEGS + APP
    assert [r.ok for r in (*first.results, *second.results, *late.results)] == [True] * 3


def test_every_kerberos_operation_is_in_the_ledgers(make):
    harness = Harness(make("kerberos"))
    first = harness.request(b"one", 0.0)
    client = ops_of(first, "client-0")
    assert client["krb_string_to_key"] == 1  # the password, once
    # AS-REQ timestamp, TGS-REQ authenticator, AP-REQ authenticator
    assert client["krb_encrypt"] == 3
    assert client["krb_checksum"] == 1  # the TGS-REQ body
    assert client["krb_decrypt"] == 2  # AS-REP and TGS-REP parts
    kdc = ops_of(first, "kdc-0")
    # AS: timestamp; TGS: TGT and authenticator
    assert kdc["krb_decrypt"] == 3
    assert kdc["krb_encrypt"] == 4  # two tickets, two reply parts
    assert kdc["krb_checksum"] == 1
    second = harness.request(b"two", 1.0)
    assert ops_of(second, "client-0")["krb_string_to_key"] == 0
    assert ops_of(second, "client-0")["krb_encrypt"] == 1  # a fresh authenticator per message
    provider = ops_of(second, "provider-0")
    assert provider["krb_decrypt"] == 2  # the ticket and the authenticator
    assert provider["replay_lookup"] >= 2  # the authenticator and the signature


def test_each_request_carries_a_new_ap_req_whose_subkey_keys_the_message(make):
    harness = Harness(make("kerberos"))
    outcome = harness.session([b"a", b"b"])
    requests = [d.send.data for d in outcome.deliveries if d.send.kind == "app-request"]
    assert len(requests) == 2
    for data in requests:
        assert b"#GSS_Kerberosv5_AP_REQ" in data
        assert b"DerivedKeyToken" in data
    replies = [d.send.data for d in outcome.deliveries if d.send.kind == "app-response"]
    assert all(b"#Kerberosv5APREQSHA1" in r and b"BinarySecurityToken" not in r for r in replies)


def test_token_reference_sends_the_sha1_once_the_provider_has_the_token(make):
    harness = Harness(make("kerberos", {"token_reference": True}))
    first, second = harness.request(b"a", 0.0), harness.request(b"b", 1.0)
    request = next(d for d in second.deliveries if d.send.kind == "app-request").send.data
    assert b"BinarySecurityToken" not in request and b"#Kerberosv5APREQSHA1" in request
    assert first.results[0].ok and second.results[0].ok
    # a provider that forgot the token answers BadContextToken; the client sends a new one
    harness.servers["provider-0"].tokens.clear()
    again = harness.request(b"c", 2.0)
    assert kinds(again) == ["app-request", "fault", *APP]
    assert again.results[0].ok and again.results[0].recoveries == 1


def test_a_ticket_for_another_service_is_refused(make):
    harness = Harness(make("kerberos"))
    harness.request(b"a", 0.0)
    client = harness.client
    # the client presents its ticket for the STS to the provider
    sts = Principal(k.STS_SERVICE)
    client.tickets[client.service] = client.tickets[client.service].__class__(
        ticket={**client.tickets[client.service].ticket, "sname": sts.asn1()},
        key=client.tickets[client.service].key,
        service=client.service,
        endtime=client.tickets[client.service].endtime,
    )
    outcome = harness.request(b"b", 1.0)
    assert harness.servers["provider-0"].last_refusal == "service-principal"
    assert not outcome.results[0].ok


def test_a_replayed_request_is_refused(make):
    harness = Harness(make("kerberos"))
    outcome = harness.request(b"a", 0.0)
    request = next(d for d in outcome.deliveries if d.send.kind == "app-request")
    provider = harness.servers["provider-0"]
    provider.receive(request.send.data, sender="client-0", now=1.0)
    assert provider.last_refusal == "replay"


def test_an_authenticator_outside_the_clock_skew_is_refused(make, monkeypatch):
    harness = Harness(make("kerberos"))
    harness.request(b"a", 0.0)  # tickets in the cache
    real = k.build_ap_req
    # the message is fresh, the authenticator in it was made six minutes earlier
    monkeypatch.setattr(k, "build_ap_req", lambda *a, now, **kw: real(*a, now=now - 360.0, **kw))
    outcome = harness.request(b"b", 1000.0)
    assert harness.servers["provider-0"].last_refusal == "freshness"
    assert outcome.results[0].fault == "wsse:MessageExpired"


def test_an_ap_req_bound_to_another_message_is_refused(make, monkeypatch):
    harness = Harness(make("kerberos"))
    real = k.gss_checksum
    monkeypatch.setattr(k, "gss_checksum", lambda binding: real(b"urn:uuid:another-message"))
    outcome = harness.request(b"a", 0.0)
    assert harness.servers["provider-0"].last_refusal == "kerberos-binding"
    assert outcome.results[0].fault == "wsse:FailedCheck"


def test_an_expired_ticket_is_refused_and_the_client_gets_new_ones(make):
    harness = Harness(make("kerberos", {"ticket_lifetime_s": 600.0}))
    harness.request(b"a", 0.0)
    client = harness.client
    # the client's clock says the ticket is still good; the provider's says it is not
    client.margin = -1e9
    outcome = harness.request(b"b", 600.0 + k.SKEW + 1)
    assert kinds(outcome) == ["app-request", "fault", *KDC_LEGS, *APP]
    assert outcome.results[0].ok and outcome.results[0].recoveries == 1


def test_a_wrong_password_gets_a_krb_error_and_fails_the_message(make):
    strategy = make("kerberos")
    harness = Harness(strategy)
    user = harness.client.user
    strategy.setup.passwords[user] = "another-password"
    harness.client.realm.keys.clear()  # the KDC's database: the new password
    harness.client.user_key = k.krb5.string_to_key(
        harness.client.realm.enctype, "the-old-password", harness.client.principal.salt()
    )
    outcome = harness.request(b"a", 0.0)
    assert kinds(outcome) == ["krb-as-req", "krb-error"]
    assert outcome.results[0].fault == "wsse:FailedAuthentication"


def test_a_replayed_tgs_req_is_refused_by_the_kdc(make):
    harness = Harness(make("kerberos"))
    outcome = harness.request(b"a", 0.0)
    tgs_req = next(d for d in outcome.deliveries if d.send.kind == "krb-tgs-req").send.data
    step = harness.servers["kdc-0"].receive(tgs_req, sender="client-0", now=1.0)
    assert step.events[0].kind == "krb-error"
    assert harness.servers["kdc-0"].last_refusal == "replay"


@pytest.mark.parametrize("enctype", ["aes128-cts-hmac-sha1-96", "rc4-hmac"])
def test_the_older_enctypes_work_end_to_end(make, enctype):
    outcome = Harness(make("kerberos", {"enctype": enctype})).session([b"a", b"b"])
    assert [r.ok for r in outcome.results] == [True, True]


def test_message_sizes_and_ledgers_do_not_depend_on_the_draw(make):
    def sizes(at):
        outcome = Harness(make("kerberos")).session([b"x" * 100] * 3, start=at)
        return [len(d.send.data) for d in outcome.deliveries], [
            ops for steps in outcome.ops.values() for _, ops in steps
        ]

    assert sizes(0.0) == sizes(0.0) == sizes(1234.5678)


def test_the_keylog_holds_the_realm_keys_and_the_session_keys(make):
    logged = []

    class Log:
        def log(self, kind, key_id, key):
            logged.append((kind, key_id))

    Harness(make("kerberos", keylog=Log())).session([b"a"])
    kinds_logged = {kind for kind, _ in logged}
    assert {"krb5-long-term-key", "krb5-session-key", "session-key", "derived-key"} <= kinds_logged
    assert (
        "krb5-long-term-key",
        "HTTP/provider.example@WSSIM.EXAMPLE aes256-cts-hmac-sha1-96",
    ) in logged


@pytest.mark.parametrize("name", ["kerberos", "sct-spnego"])
def test_a_session_is_the_same_bytes_under_the_same_seed(make, monkeypatch, name):
    """Every random part (nonces, confounders, session keys, subkeys) comes from the one
    random source, so a seeded source replays a session exactly."""
    import os
    import random
    import threading

    from sim.wire import xmlutil

    def session(seed):
        monkeypatch.setattr(os, "urandom", random.Random(seed).randbytes)
        monkeypatch.setattr(xmlutil, "_POOLS", threading.local())
        outcome = Harness(make(name)).session([b"x" * 100] * 2)
        return [d.send.data for d in outcome.deliveries]

    assert session(7) == session(7) != session(8)


def test_a_forged_copy_refused_first_leaves_the_original_acceptable(make):
    """The authenticator enters the replay store only once the message signature has
    verified: a tampered copy that arrives first does not make the original a replay."""
    captured = []

    def hold(delivery):
        if delivery.send.kind == "app-request" and not captured:
            captured.append(delivery.send.data)
            marker = delivery.send.data.index(b"CipherValue>") + len(b"CipherValue>") + 3
            data = delivery.send.data
            return flip_base64_char(data, marker)
        return None

    harness = Harness(make("kerberos"), tamper=hold)
    outcome = harness.request(b"a", 0.0)
    provider = harness.servers["provider-0"]
    assert not outcome.results[0].ok and provider.last_refusal != "replay"
    step = provider.receive(captured[0], sender="client-0", now=0.5)
    assert provider.last_refusal is None and step.events[0].kind == "app-response"
    provider.receive(captured[0], sender="client-0", now=0.6)
    assert provider.last_refusal == "replay"
