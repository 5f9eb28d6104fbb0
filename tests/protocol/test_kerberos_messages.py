"""The Kerberos layer under the strategies: RFC 3962 string-to-key, RFC 3961 encryption
with its integrity check, the GSS framing, and typed faults for whatever does not read."""

from __future__ import annotations

import pytest

from sim.crypto import krb5
from sim.errors import FailedAuthentication, InvalidSecurityToken, SecurityFault
from sim.wire import kdc
from sim.wire import kerberos as k
from sim.wire.kerberos import Principal
from sim.wire.ledger import Ledger

AES256 = krb5.Enctype.AES256_CTS_HMAC_SHA1_96


@pytest.mark.parametrize(
    ("enctype", "expected"),
    [
        # RFC 3962 appendix B, iteration count 1200
        (krb5.Enctype.AES128_CTS_HMAC_SHA1_96, "4c01cd46d632d01e6dbe230a01ed642a"),
        (AES256, "55a6ac740ad17b4846941051e1e8b0a7548d93b0ab30a8bc3ff16280382b8c2a"),
    ],
)
def test_string_to_key_gives_the_rfc_3962_vectors(enctype, expected):
    assert (
        krb5.string_to_key(enctype, "password", "ATHENA.MIT.EDUraeburn", 1200).value.hex()
        == expected
    )


def test_rc4_string_to_key_is_the_md4_of_the_utf16_password():
    # RFC 4757: the NT hash ("foo" is a well-known value)
    assert (
        krb5.string_to_key(krb5.Enctype.RC4_HMAC, "foo", "").value.hex()
        == "ac8e657f83df82beea5d43bdaf7800cc"
    )


def test_a_ciphertext_opens_only_with_its_key_and_usage():
    key = krb5.random_key(AES256)
    sealed = krb5.encrypt(key, krb5.KeyUsage.TICKET, b"ticket part", b"\x01" * 16)
    assert krb5.decrypt(key, krb5.KeyUsage.TICKET, sealed) == b"ticket part"
    with pytest.raises(krb5.IntegrityError):
        krb5.decrypt(key, krb5.KeyUsage.AP_REQ_AUTHENTICATOR, sealed)
    with pytest.raises(krb5.IntegrityError):
        krb5.decrypt(krb5.random_key(AES256), krb5.KeyUsage.TICKET, sealed)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(krb5.IntegrityError):
        krb5.decrypt(key, krb5.KeyUsage.TICKET, tampered)


def _ticket_and_keys():
    service, client = Principal(k.PROVIDER_SERVICE), Principal(("user-001",))
    service_key, session = krb5.random_key(AES256), krb5.random_key(AES256)
    ticket = k.issue_ticket(
        service_key, service, client, session, authtime=0.0, endtime=3600.0, ledger=Ledger()
    )
    return ticket, session, client, {service: {int(AES256): service_key}}


def test_an_ap_req_is_accepted_once_with_its_subkey_and_binding():
    ticket, session, client, keytab = _ticket_and_keys()
    subkey = krb5.random_key(AES256)
    ap_req = k.build_ap_req(
        ticket,
        session,
        client,
        now=5.0,
        ledger=Ledger(),
        checksum=k.gss_checksum(b"m-1"),
        subkey=subkey,
    )
    token = k.gss_frame(k.TOK_AP_REQ, ap_req)
    accepted = k.accept_ap_req(k.gss_unframe(token, k.TOK_AP_REQ), keytab, now=5.0, ledger=Ledger())
    assert accepted.key == subkey and accepted.ticket.client == client
    k.check_gss_binding(accepted, b"m-1", Ledger())
    with pytest.raises(SecurityFault, match="bound to another message"):
        k.check_gss_binding(accepted, b"m-2", Ledger())
    with pytest.raises(InvalidSecurityToken):
        k.gss_unframe(token, k.TOK_AP_REP)


def test_a_ticket_sealed_under_another_key_is_refused():
    ticket, session, client, keytab = _ticket_and_keys()
    other = {service: {int(AES256): krb5.random_key(AES256)} for service in keytab}
    ap_req = k.build_ap_req(ticket, session, client, now=5.0, ledger=Ledger())
    with pytest.raises(FailedAuthentication):
        k.accept_ap_req(ap_req, other, now=5.0, ledger=Ledger())


@pytest.mark.parametrize("blob", [b"", b"\x6e", b"\x6e\x03\x30\x01\x00", b"\x30\x00", b"\xff" * 40])
def test_malformed_kerberos_messages_are_typed_faults(blob):
    _, _, _, keytab = _ticket_and_keys()
    with pytest.raises(SecurityFault):
        k.accept_ap_req(blob, keytab, now=0.0, ledger=Ledger())
    with pytest.raises(SecurityFault):
        kdc.read_kdc_req(blob, keytab, now=0.0, ledger=Ledger())
    with pytest.raises(SecurityFault):
        kdc.read_kdc_rep(
            blob,
            krb5.random_key(AES256),
            nonce=1,
            service=Principal(k.TGS_SERVICE),
            now=0.0,
            ledger=Ledger(),
        )


def test_a_krb_error_becomes_the_matching_fault_at_the_client():
    for fault in (FailedAuthentication("bad password"), kdc.ExpiredData("old ticket")):
        error = kdc.build_krb_error(fault, now=1.0)
        assert type(kdc.fault_of(error)) is type(fault)
