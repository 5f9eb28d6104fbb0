"""Kerberos V5 messages (RFC 4120) as the KDC, its clients and the services exchange them:
AS-REQ/AS-REP, TGS-REQ/TGS-REP, AP-REQ/AP-REP and KRB-ERROR, in DER through minikerberos'
asn1crypto structures, with the GSS-API framing of RFC 1964/4121 that the WS-Security
Kerberos Token Profile 1.1 and SPNEGO carry.

Builders record every cryptographic operation in the ledger they are given (``krb_encrypt``,
``krb_decrypt``, ``krb_checksum``, ``krb_string_to_key``). Readers refuse, with a typed
fault, anything malformed, of another message type, not decrypting under the key, or
naming another principal. Integers and times have a fixed DER width (nonces and sequence
numbers in 2^30..2^31-1, microseconds at least 2^15), so that a configuration's message
sizes do not depend on the draw or the clock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from asn1crypto import parser
from minikerberos.protocol import asn1_structs as asn

from sim.crypto import krb5
from sim.crypto.krb5 import Enctype, KeyUsage, SessionKey
from sim.errors import (
    ExpiredData,
    FailedAuthentication,
    FailedCheck,
    InvalidSecurityToken,
    MessageExpired,
    UnsupportedAlgorithm,
)
from sim.wire.ledger import Ledger, Op
from sim.wire.xmlutil import EPOCH, fresh_bytes

REALM = "WSSIM.EXAMPLE"
#: the service principal of the provider (WCF: the host's SPN) and of the KDC's TGS
PROVIDER_SERVICE = ("HTTP", "provider.example")
STS_SERVICE = ("HTTP", "sts.example")
TGS_SERVICE = ("krbtgt", REALM)
#: RFC 4120 message types and the name types used here
AS_REQ, AS_REP, TGS_REQ, TGS_REP, AP_REQ, AP_REP, KRB_ERROR = 10, 11, 12, 13, 14, 15, 30
NT_PRINCIPAL, NT_SRV_INST = 1, 2
PA_TGS_REQ, PA_ENC_TIMESTAMP = 1, 2
#: RFC 4121: the GSS checksum type of an AP-REQ made by gss_init_sec_context
GSS_CHECKSUM = 0x8003
GSS_KRB5_OID = bytes.fromhex("06092a864886f712010202")
TOK_AP_REQ, TOK_AP_REP, TOK_ERROR = b"\x01\x00", b"\x02\x00", b"\x03\x00"
#: GSS context flags of the GSS checksum: mutual, replay, sequence, confidentiality, integrity
GSS_FLAGS = 0x04 | 0x08 | 0x10 | 0x20
#: and the mutual-authentication flag: the acceptor answers with an AP-REP and its subkey
GSS_MUTUAL = 0x02
#: tolerated clock skew (RFC 4120's usual five minutes)
SKEW = 300.0
#: KRB-ERROR codes used (RFC 4120 section 7.5.9)
KDC_ERR_C_PRINCIPAL_UNKNOWN = 6
KDC_ERR_S_PRINCIPAL_UNKNOWN = 7
KDC_ERR_ETYPE_NOSUPP = 14
KDC_ERR_PREAUTH_FAILED = 24
KRB_AP_ERR_TKT_EXPIRED = 32
KRB_AP_ERR_REPEAT = 34
KRB_AP_ERR_SKEW = 37
KRB_AP_ERR_BAD_INTEGRITY = 31
KRB_AP_ERR_MODIFIED = 41
KRB_ERR_GENERIC = 60

_LOW, _HIGH = 1 << 30, (1 << 31) - 1
_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)


@dataclass(frozen=True, slots=True)
class Principal:
    """A principal: its name components and realm (``user-001@WSSIM.EXAMPLE``)."""

    components: tuple[str, ...]
    realm: str = REALM

    @property
    def name_type(self) -> int:
        return NT_SRV_INST if len(self.components) > 1 else NT_PRINCIPAL

    def asn1(self) -> dict:
        return {"name-type": self.name_type, "name-string": list(self.components)}

    def salt(self) -> str:
        """The default salt of its long-term key: realm and components (RFC 4120 4)."""
        return self.realm + "".join(self.components)

    def __str__(self) -> str:
        return "/".join(self.components) + "@" + self.realm


def principal_of(name: dict, realm: str) -> Principal:
    """A Principal from a decoded PrincipalName and realm."""
    return Principal(tuple(str(part) for part in name["name-string"]), str(realm))


def kerberos_time(now: float):
    """A KerberosTime (whole seconds, as RFC 4120 requires) and its microseconds, of
    simulated time ``now``; the microseconds are at least 2^15 (fixed DER width)."""
    instant = EPOCH + timedelta(seconds=now)
    micros = max(instant.microsecond, 1 << 15)
    return instant.replace(microsecond=0), micros


def seconds_of(value) -> float:
    """Simulated seconds of a decoded KerberosTime (a datetime)."""
    return (value - EPOCH).total_seconds()


def fresh_number() -> int:
    """A nonce or sequence number of fixed DER width."""
    return _LOW + int.from_bytes(fresh_bytes(4), "big") % (_HIGH - _LOW)


def _flags(names: set[str], mapping: dict[int, str]) -> set[str]:
    """A KerberosFlags value with ``names`` set (asn1crypto sizes it by ``mapping``)."""
    unknown = names - set(mapping.values())
    if unknown:
        raise ValueError(f"unknown flags {sorted(unknown)}")
    return set(names)


def seal(key: SessionKey, usage: KeyUsage, plaintext: bytes, ledger: Ledger, kvno=None) -> dict:
    """An EncryptedData of ``plaintext`` under ``key`` (one ``krb_encrypt``)."""
    ledger.record(Op.KRB_ENCRYPT, len(plaintext))
    confounder = fresh_bytes(krb5.CONFOUNDER_BYTES[key.enctype])
    data = {"etype": int(key.enctype), "cipher": krb5.encrypt(key, usage, plaintext, confounder)}
    if kvno is not None:
        data["kvno"] = kvno
    return data


def unseal(key: SessionKey, usage: KeyUsage, enc: dict, ledger: Ledger, what: str) -> bytes:
    """The plaintext of an EncryptedData under ``key`` (one ``krb_decrypt``), or a typed
    fault: another enctype, or an integrity check that fails."""
    if enc["etype"] != int(key.enctype):
        raise UnsupportedAlgorithm(f"{what} is encrypted with enctype {enc['etype']}")
    cipher = bytes(enc["cipher"])
    ledger.record(Op.KRB_DECRYPT, len(cipher))
    try:
        return krb5.decrypt(key, usage, cipher)
    except krb5.IntegrityError:
        raise FailedAuthentication(
            f"{what} does not decrypt under the key", check="kerberos"
        ) from None


def _load(kind, data: bytes, what: str):
    """Decode ``data`` as ``kind`` entirely (lazily parsed fields forced), or a typed fault."""
    try:
        value = kind.load(bytes(data), strict=True)
        return value.native
    except _PARSE_ERRORS as exc:
        raise InvalidSecurityToken(f"malformed {what}: {str(exc)[:80]}", check="kerberos") from None


# --- tickets ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketInfo:
    """What a decrypted ticket grants: its session key, client, service and validity."""

    key: SessionKey
    client: Principal
    service: Principal
    authtime: float
    endtime: float


def issue_ticket(
    service_key: SessionKey,
    service: Principal,
    client: Principal,
    session_key: SessionKey,
    *,
    authtime: float,
    endtime: float,
    ledger: Ledger,
) -> dict:
    """A Ticket for ``client`` to ``service``, its EncTicketPart under ``service_key``."""
    part = asn.EncTicketPart(
        {
            "flags": _flags({"forwardable", "renewable", "pre-authent"}, asn.TicketFlags._map),
            "key": {"keytype": int(session_key.enctype), "keyvalue": session_key.value},
            "crealm": client.realm,
            "cname": client.asn1(),
            "transited": {"tr-type": 1, "contents": b""},
            "authtime": kerberos_time(authtime)[0],
            "endtime": kerberos_time(endtime)[0],
        }
    ).dump()
    return {
        "tkt-vno": 5,
        "realm": service.realm,
        "sname": service.asn1(),
        "enc-part": seal(service_key, KeyUsage.TICKET, part, ledger, kvno=1),
    }


def read_ticket(
    ticket: dict, service_keys: dict[Principal, dict[int, SessionKey]], ledger: Ledger, now: float
) -> TicketInfo:
    """Decrypt a ticket with the key of the service it names, if that service is one of
    ``service_keys`` (by enctype); refuse it if it expired."""
    service = principal_of(ticket["sname"], ticket["realm"])
    keys = service_keys.get(service)
    if keys is None:
        raise InvalidSecurityToken(
            f"the ticket is for {service}, not this service", check="service-principal"
        )
    key = keys.get(ticket["enc-part"]["etype"])
    if key is None:
        raise UnsupportedAlgorithm("no service key of the ticket's enctype", check="kerberos")
    part = _load(
        asn.EncTicketPart,
        unseal(key, KeyUsage.TICKET, ticket["enc-part"], ledger, "the ticket"),
        "EncTicketPart",
    )
    session = part["key"]
    try:
        enctype = Enctype(session["keytype"])
    except ValueError:
        raise UnsupportedAlgorithm("unsupported session key type", check="kerberos") from None
    info = TicketInfo(
        key=SessionKey(enctype, bytes(session["keyvalue"])),
        client=principal_of(part["cname"], part["crealm"]),
        service=service,
        authtime=seconds_of(part["authtime"]),
        endtime=seconds_of(part["endtime"]),
    )
    if now > info.endtime + SKEW:
        raise ExpiredData("the Kerberos ticket has expired", check="ticket-lifetime")
    if info.authtime > now + SKEW:
        raise MessageExpired("the ticket is not valid yet", check="ticket-lifetime")
    return info


# --- AP-REQ / AP-REP ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted:
    """An AP-REQ a service accepted: the ticket, the authenticator's time, subkey, checksum."""

    ticket: TicketInfo
    ctime: float
    cusec: int
    subkey: SessionKey | None
    checksum: tuple[int, bytes] | None
    seq_number: int | None
    #: the authenticator ciphertext (the replay cache's key)
    cipher: bytes

    @property
    def key(self) -> SessionKey:
        """The key of the context: the subkey, else the ticket's session key."""
        return self.subkey or self.ticket.key


def gss_checksum(binding: bytes, *, mutual: bool = False) -> dict:
    """The GSS authenticator checksum (RFC 4121 4.1.1) binding ``binding`` (channel
    bindings application data: here what the AP-REQ is sent with); ``mutual`` asks the
    acceptor for an AP-REP (SPNEGO), without it the context key is the initiator's subkey
    (the WS-Security token, which has no reply token)."""
    value = (
        (16).to_bytes(4, "little")
        + krb5.channel_binding_hash(binding)
        + (GSS_FLAGS | (GSS_MUTUAL if mutual else 0)).to_bytes(4, "little")
    )
    return {"cksumtype": GSS_CHECKSUM, "checksum": value}


def check_gss_binding(accepted: Accepted, binding: bytes, ledger: Ledger) -> None:
    """Refuse an AP-REQ whose GSS checksum does not bind ``binding``."""
    ledger.record(Op.DIGEST, len(binding) + 20)
    if accepted.checksum is None or accepted.checksum[0] != GSS_CHECKSUM:
        raise FailedCheck("the AP-REQ carries no GSS checksum", check="kerberos-binding")
    value = accepted.checksum[1]
    if len(value) < 24 or value[4:20] != krb5.channel_binding_hash(binding):
        raise FailedCheck("the AP-REQ is bound to another message", check="kerberos-binding")


def build_ap_req(
    ticket: dict,
    session_key: SessionKey,
    client: Principal,
    *,
    now: float,
    ledger: Ledger,
    checksum: dict | None = None,
    subkey: SessionKey | None = None,
    seq_number: int | None = None,
    mutual: bool = False,
    usage: KeyUsage = KeyUsage.AP_REQ_AUTHENTICATOR,
) -> bytes:
    """An AP-REQ (DER) presenting ``ticket`` with a fresh authenticator."""
    ctime, cusec = kerberos_time(now)
    authenticator = {
        "authenticator-vno": 5,
        "crealm": client.realm,
        "cname": client.asn1(),
        "cusec": cusec,
        "ctime": ctime,
    }
    if checksum is not None:
        authenticator["cksum"] = checksum
    if subkey is not None:
        authenticator["subkey"] = {"keytype": int(subkey.enctype), "keyvalue": subkey.value}
    if seq_number is not None:
        authenticator["seq-number"] = seq_number
    plain = asn.Authenticator(authenticator).dump()
    options = {"mutual-required"} if mutual else set()
    return asn.AP_REQ(
        {
            "pvno": 5,
            "msg-type": AP_REQ,
            "ap-options": _flags(options, asn.APOptions._map),
            "ticket": ticket,
            "authenticator": seal(session_key, usage, plain, ledger),
        }
    ).dump()


def accept_ap_req(
    data: bytes,
    service_keys: dict[Principal, dict[int, SessionKey]],
    *,
    now: float,
    ledger: Ledger,
    replay=None,
    usage: KeyUsage = KeyUsage.AP_REQ_AUTHENTICATOR,
) -> Accepted:
    """Accept an AP-REQ (DER): its ticket for one of ``service_keys``, an authenticator
    that decrypts under the ticket's session key, names the ticket's client, is within the
    clock skew and, given ``replay`` (a replay store), has not been seen (:func:`remember`)."""
    request = _load(asn.AP_REQ, data, "AP-REQ")
    if request["pvno"] != 5 or request["msg-type"] != AP_REQ:
        raise InvalidSecurityToken("not a Kerberos V5 AP-REQ", check="kerberos")
    ticket = read_ticket(request["ticket"], service_keys, ledger, now)
    enc = request["authenticator"]
    plain = unseal(ticket.key, usage, enc, ledger, "the authenticator")
    authenticator = _load(asn.Authenticator, plain, "Authenticator")
    if principal_of(authenticator["cname"], authenticator["crealm"]) != ticket.client:
        raise FailedAuthentication("the authenticator names another client", check="kerberos")
    ctime = seconds_of(authenticator["ctime"])
    if abs(ctime - now) > SKEW:
        raise MessageExpired("the authenticator is outside the clock skew", check="freshness")
    subkey = authenticator.get("subkey")
    if subkey is not None:
        try:
            subkey = SessionKey(Enctype(subkey["keytype"]), bytes(subkey["keyvalue"]))
        except ValueError:
            raise UnsupportedAlgorithm("unsupported subkey type", check="kerberos") from None
    checksum = authenticator.get("cksum")
    accepted = Accepted(
        ticket=ticket,
        ctime=ctime,
        cusec=authenticator["cusec"],
        subkey=subkey,
        checksum=(checksum["cksumtype"], bytes(checksum["checksum"])) if checksum else None,
        seq_number=authenticator.get("seq-number"),
        cipher=bytes(enc["cipher"]),
    )
    if replay is not None:
        remember(accepted, replay, now, ledger)
    return accepted


def remember(accepted: Accepted, replay, now: float, ledger: Ledger) -> None:
    """Put an accepted authenticator in the replay store (keyed by its ciphertext's
    digest), or refuse it as a replay: at once for an AP-REQ that is all its message is,
    after the signature for one a signed message carries (a forged copy then never takes
    the original's place)."""
    replay.check_and_add(
        hashlib.sha1(accepted.cipher).digest(), now, created=accepted.ctime, ledger=ledger
    )


def build_ap_rep(
    accepted: Accepted, subkey: SessionKey | None, seq_number: int, ledger: Ledger
) -> bytes:
    """The service's AP-REP (mutual authentication): the authenticator's time, under the
    ticket's session key, with the acceptor's subkey and sequence number."""
    ctime, _ = kerberos_time(accepted.ctime)
    part = {"ctime": ctime, "cusec": accepted.cusec, "seq-number": seq_number}
    if subkey is not None:
        part["subkey"] = {"keytype": int(subkey.enctype), "keyvalue": subkey.value}
    plain = asn.EncAPRepPart(part).dump()
    return asn.AP_REP(
        {
            "pvno": 5,
            "msg-type": AP_REP,
            "enc-part": seal(accepted.ticket.key, KeyUsage.AP_REP_ENC_PART, plain, ledger),
        }
    ).dump()


def read_ap_rep(
    data: bytes, session_key: SessionKey, ctime: float, ledger: Ledger
) -> SessionKey | None:
    """Check an AP-REP answers our authenticator of ``ctime``; the acceptor's subkey."""
    reply = _load(asn.AP_REP, data, "AP-REP")
    if reply["pvno"] != 5 or reply["msg-type"] != AP_REP:
        raise InvalidSecurityToken("not a Kerberos V5 AP-REP", check="kerberos")
    plain = unseal(session_key, KeyUsage.AP_REP_ENC_PART, reply["enc-part"], ledger, "the AP-REP")
    part = _load(asn.EncAPRepPart, plain, "EncAPRepPart")
    if seconds_of(part["ctime"]) != float(int(ctime)):
        raise FailedAuthentication("the AP-REP answers another authenticator", check="kerberos")
    subkey = part.get("subkey")
    if subkey is None:
        return None
    try:
        return SessionKey(Enctype(subkey["keytype"]), bytes(subkey["keyvalue"]))
    except ValueError:
        raise UnsupportedAlgorithm("unsupported subkey type", check="kerberos") from None


# --- GSS-API framing (RFC 1964 section 1.1, RFC 2743 section 3.1) -------------------------


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def gss_frame(token_id: bytes, inner: bytes) -> bytes:
    """An InitialContextToken: [APPLICATION 0] with the krb5 mechanism OID, the token id
    (``01 00`` AP-REQ, ``02 00`` AP-REP) and the Kerberos message."""
    body = GSS_KRB5_OID + token_id + inner
    return b"\x60" + _der_length(len(body)) + body


def gss_unframe(token: bytes, token_id: bytes) -> bytes:
    """The Kerberos message of a GSS krb5 token of type ``token_id``, or a typed fault."""
    try:
        class_, method, tag, _, body, _ = parser.parse(bytes(token), strict=True)
    except _PARSE_ERRORS:
        raise InvalidSecurityToken("malformed GSS token", check="kerberos") from None
    if class_ != 1 or tag != 0 or method != 1:
        raise InvalidSecurityToken("not a GSS InitialContextToken", check="kerberos")
    head = GSS_KRB5_OID + token_id
    if not body.startswith(head):
        raise InvalidSecurityToken(
            "not a Kerberos V5 GSS token of the expected type", check="kerberos"
        )
    return body[len(head) :]


def token_sha1(token: bytes) -> bytes:
    """The Kerberosv5APREQSHA1 key identifier of a token (SHA-1 of its octets)."""
    return hashlib.sha1(token).digest()
