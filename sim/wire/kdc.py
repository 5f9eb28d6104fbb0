"""The KDC exchanges of RFC 4120: AS-REQ/AS-REP (with PA-ENC-TIMESTAMP pre-authentication),
TGS-REQ/TGS-REP (the TGT in PA-TGS-REQ, its authenticator checksumming the request body),
and KRB-ERROR. Both sides: what a client sends and reads, what a KDC reads and answers."""

from __future__ import annotations

from dataclasses import dataclass

from minikerberos.protocol import asn1_structs as asn

from sim.crypto import krb5
from sim.crypto.krb5 import Enctype, KeyUsage, SessionKey
from sim.errors import (
    ExpiredData,
    FailedAuthentication,
    FailedCheck,
    InvalidSecurityToken,
    MessageExpired,
    SecurityFault,
    UnsupportedAlgorithm,
)
from sim.wire import kerberos as k
from sim.wire.kerberos import Principal, TicketInfo
from sim.wire.ledger import Ledger, Op


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """A ticket a client holds: the Ticket (decoded, sent as is), its session key, its
    service and end time."""

    ticket: dict
    key: SessionKey
    service: Principal
    endtime: float


@dataclass(frozen=True, slots=True, kw_only=True)
class KdcRequest:
    """An AS-REQ or TGS-REQ as the KDC read it (the TGS-REQ's TGT already accepted)."""

    msg_type: int
    client: Principal
    service: Principal
    nonce: int
    till: float
    etypes: tuple[int, ...]
    #: TGS-REQ: the TGT's grant (its session key encrypts the reply)
    tgt: TicketInfo | None = None
    #: AS-REQ: the time of the encrypted timestamp (checked against the client's key later)
    padata: tuple[tuple[int, bytes], ...] = ()


def _body(
    client: Principal | None, service: Principal, nonce: int, till: float, etype: Enctype
) -> dict:
    body = {
        "kdc-options": k._flags({"forwardable", "renewable", "canonicalize"}, asn.KDCOptions._map),
        "realm": service.realm,
        "sname": service.asn1(),
        "till": k.kerberos_time(till)[0],
        "nonce": nonce,
        "etype": [int(etype)],
    }
    if client is not None:
        body["cname"] = client.asn1()
    return body


def build_as_req(
    client: Principal,
    client_key: SessionKey,
    *,
    now: float,
    till: float,
    nonce: int,
    ledger: Ledger,
) -> bytes:
    """An AS-REQ for a TGT, pre-authenticated with an encrypted timestamp."""
    stamp, micros = k.kerberos_time(now)
    timestamp = asn.PA_ENC_TS_ENC({"patimestamp": stamp, "pausec": micros}).dump()
    enc = asn.EncryptedData(k.seal(client_key, KeyUsage.AS_REQ_PA_ENC_TIMESTAMP, timestamp, ledger))
    return asn.AS_REQ(
        {
            "pvno": 5,
            "msg-type": k.AS_REQ,
            "padata": [{"padata-type": k.PA_ENC_TIMESTAMP, "padata-value": enc.dump()}],
            "req-body": _body(
                client, Principal(k.TGS_SERVICE, client.realm), nonce, till, client_key.enctype
            ),
        }
    ).dump()


def build_tgs_req(
    tgt: Credentials,
    client: Principal,
    service: Principal,
    *,
    now: float,
    till: float,
    nonce: int,
    ledger: Ledger,
) -> bytes:
    """A TGS-REQ for ``service``: the TGT and an authenticator checksumming the body."""
    body = asn.KDC_REQ_BODY(_body(None, service, nonce, till, tgt.key.enctype)).dump()
    ledger.record(Op.KRB_CHECKSUM, len(body))
    kind, value = krb5.checksum(tgt.key, KeyUsage.TGS_REQ_AUTH_CKSUM, body)
    ap_req = k.build_ap_req(
        tgt.ticket,
        tgt.key,
        client,
        now=now,
        ledger=ledger,
        checksum={"cksumtype": kind, "checksum": value},
        usage=KeyUsage.TGS_REQ_AUTHENTICATOR,
    )
    return asn.TGS_REQ(
        {
            "pvno": 5,
            "msg-type": k.TGS_REQ,
            "padata": [{"padata-type": k.PA_TGS_REQ, "padata-value": ap_req}],
            "req-body": asn.KDC_REQ_BODY.load(body),
        }
    ).dump()


def message_type(data: bytes) -> int:
    """The [APPLICATION n] tag of a Kerberos message (AS-REQ 10, TGS-REQ 12...)."""
    if len(data) < 2 or data[0] & 0xE0 != 0x60:
        raise InvalidSecurityToken("not a Kerberos message", check="kerberos")
    return data[0] & 0x1F


def read_kdc_req(
    data: bytes,
    krbtgt_keys: dict[Principal, dict[int, SessionKey]],
    *,
    now: float,
    ledger: Ledger,
    replay=None,
) -> KdcRequest:
    """Read an AS-REQ, or a TGS-REQ whose TGT and authenticator (with its checksum over the
    request body) it accepts with ``krbtgt_keys``."""
    kind = message_type(data)
    if kind not in (k.AS_REQ, k.TGS_REQ):
        raise InvalidSecurityToken("the KDC takes AS-REQ and TGS-REQ only", check="kerberos")
    structure = asn.AS_REQ if kind == k.AS_REQ else asn.TGS_REQ
    request = k._load(structure, data, "KDC-REQ")
    if request["pvno"] != 5 or request["msg-type"] != kind:
        raise InvalidSecurityToken("not a Kerberos V5 KDC request", check="kerberos")
    body = request["req-body"]
    padata = tuple((p["padata-type"], bytes(p["padata-value"])) for p in request["padata"] or ())
    service = k.principal_of(body["sname"], body["realm"]) if body.get("sname") else None
    if service is None or body.get("till") is None:
        raise InvalidSecurityToken("a KDC request names its service and end time", check="kerberos")
    common = {
        "msg_type": kind,
        "service": service,
        "nonce": body["nonce"],
        "till": k.seconds_of(body["till"]),
        "etypes": tuple(body["etype"]),
    }
    if kind == k.AS_REQ:
        if body.get("cname") is None:
            raise InvalidSecurityToken("an AS-REQ names its client", check="kerberos")
        return KdcRequest(
            client=k.principal_of(body["cname"], body["realm"]), padata=padata, **common
        )
    ap_reqs = [value for kind_, value in padata if kind_ == k.PA_TGS_REQ]
    if len(ap_reqs) != 1:
        raise InvalidSecurityToken("a TGS-REQ carries one PA-TGS-REQ", check="kerberos")
    accepted = k.accept_ap_req(
        ap_reqs[0],
        krbtgt_keys,
        now=now,
        ledger=ledger,
        replay=replay,
        usage=KeyUsage.TGS_REQ_AUTHENTICATOR,
    )
    if accepted.checksum is None:
        raise FailedCheck("the TGS-REQ authenticator has no checksum", check="kerberos-binding")
    raw_body = structure.load(bytes(data))["req-body"].untag().dump()
    ledger.record(Op.KRB_CHECKSUM, len(raw_body))
    try:
        krb5.verify_checksum(
            accepted.ticket.key, KeyUsage.TGS_REQ_AUTH_CKSUM, raw_body, *accepted.checksum
        )
    except krb5.IntegrityError:
        raise FailedCheck(
            "the TGS-REQ body is not the one checksummed", check="kerberos-binding"
        ) from None
    return KdcRequest(client=accepted.ticket.client, tgt=accepted.ticket, **common)


def check_pre_authentication(
    request: KdcRequest, client_key: SessionKey, now: float, ledger: Ledger
) -> None:
    """The AS-REQ's PA-ENC-TIMESTAMP decrypts under the client's key and is fresh."""
    stamps = [value for kind, value in request.padata if kind == k.PA_ENC_TIMESTAMP]
    if len(stamps) != 1:
        raise FailedAuthentication("pre-authentication required", check="kerberos-preauth")
    enc = k._load(asn.EncryptedData, stamps[0], "PA-ENC-TIMESTAMP")
    plain = k.unseal(client_key, KeyUsage.AS_REQ_PA_ENC_TIMESTAMP, enc, ledger, "the timestamp")
    stamp = k._load(asn.PA_ENC_TS_ENC, plain, "PA-ENC-TS-ENC")
    if abs(k.seconds_of(stamp["patimestamp"]) - now) > k.SKEW:
        raise MessageExpired("the pre-authentication timestamp is stale", check="freshness")


def build_kdc_rep(
    request: KdcRequest,
    ticket: dict,
    session_key: SessionKey,
    reply_key: SessionKey,
    *,
    authtime: float,
    endtime: float,
    ledger: Ledger,
) -> bytes:
    """The AS-REP (``reply_key``: the client's key) or TGS-REP (the TGT session key)."""
    as_rep = request.msg_type == k.AS_REQ
    part_class = asn.EncASRepPart if as_rep else asn.EncTGSRepPart
    part = part_class(
        {
            "key": {"keytype": int(session_key.enctype), "keyvalue": session_key.value},
            "last-req": [{"lr-type": 0, "lr-value": k.kerberos_time(authtime)[0]}],
            "nonce": request.nonce,
            "flags": k._flags({"forwardable", "renewable", "pre-authent"}, asn.TicketFlags._map),
            "authtime": k.kerberos_time(authtime)[0],
            "endtime": k.kerberos_time(endtime)[0],
            "srealm": request.service.realm,
            "sname": request.service.asn1(),
        }
    ).dump()
    usage = KeyUsage.AS_REP_ENC_PART if as_rep else KeyUsage.TGS_REP_ENC_PART
    reply_class = asn.AS_REP if as_rep else asn.TGS_REP
    return reply_class(
        {
            "pvno": 5,
            "msg-type": k.AS_REP if as_rep else k.TGS_REP,
            "crealm": request.client.realm,
            "cname": request.client.asn1(),
            "ticket": ticket,
            "enc-part": k.seal(reply_key, usage, part, ledger),
        }
    ).dump()


def read_kdc_rep(
    data: bytes,
    reply_key: SessionKey,
    *,
    nonce: int,
    service: Principal,
    now: float,
    ledger: Ledger,
) -> Credentials:
    """The credentials an AS-REP or TGS-REP hands over, once its encrypted part decrypts
    under ``reply_key``, answers ``nonce`` and names ``service``; a KRB-ERROR is raised as
    its fault."""
    kind = message_type(data)
    if kind == k.KRB_ERROR:
        raise fault_of(data)
    if kind not in (k.AS_REP, k.TGS_REP):
        raise InvalidSecurityToken("expected an AS-REP or TGS-REP", check="kerberos")
    reply = k._load(asn.AS_REP if kind == k.AS_REP else asn.TGS_REP, data, "KDC-REP")
    usage = KeyUsage.AS_REP_ENC_PART if kind == k.AS_REP else KeyUsage.TGS_REP_ENC_PART
    plain = k.unseal(reply_key, usage, reply["enc-part"], ledger, "the KDC reply")
    # RFC 4120 5.4.2: some KDCs tag an AS reply's part as EncTGSRepPart; accept either
    part_class = asn.EncASRepPart if plain[:1] == b"\x79" else asn.EncTGSRepPart
    part = k._load(part_class, plain, "EncKDCRepPart")
    if part["nonce"] != nonce:
        raise FailedCheck("the KDC reply answers another request", check="relates-to")
    named = k.principal_of(part["sname"], part["srealm"])
    if (
        named != service
        or k.principal_of(reply["ticket"]["sname"], reply["ticket"]["realm"]) != service
    ):
        raise InvalidSecurityToken(
            "the KDC issued a ticket for another service", check="service-principal"
        )
    endtime = k.seconds_of(part["endtime"])
    if endtime <= now:
        raise ExpiredData("the KDC issued an expired ticket", check="ticket-lifetime")
    try:
        enctype = Enctype(part["key"]["keytype"])
    except ValueError:
        raise UnsupportedAlgorithm("unsupported session key type", check="kerberos") from None
    return Credentials(
        ticket=reply["ticket"],
        key=SessionKey(enctype, bytes(part["key"]["keyvalue"])),
        service=service,
        endtime=endtime,
    )


#: KRB-ERROR codes and the fault each becomes at the client
_FAULTS: dict[int, type[SecurityFault]] = {
    k.KRB_AP_ERR_TKT_EXPIRED: ExpiredData,
    k.KRB_AP_ERR_SKEW: MessageExpired,
    k.KRB_AP_ERR_REPEAT: MessageExpired,
    k.KDC_ERR_PREAUTH_FAILED: FailedAuthentication,
    k.KDC_ERR_C_PRINCIPAL_UNKNOWN: FailedAuthentication,
    k.KDC_ERR_S_PRINCIPAL_UNKNOWN: InvalidSecurityToken,
    k.KDC_ERR_ETYPE_NOSUPP: UnsupportedAlgorithm,
    k.KRB_AP_ERR_BAD_INTEGRITY: FailedAuthentication,
    k.KRB_AP_ERR_MODIFIED: FailedCheck,
}
#: and back: the KRB-ERROR code a KDC answers a fault with
_CODES: dict[type[SecurityFault], int] = {
    ExpiredData: k.KRB_AP_ERR_TKT_EXPIRED,
    MessageExpired: k.KRB_AP_ERR_SKEW,
    FailedAuthentication: k.KDC_ERR_PREAUTH_FAILED,
    UnsupportedAlgorithm: k.KDC_ERR_ETYPE_NOSUPP,
    FailedCheck: k.KRB_AP_ERR_MODIFIED,
}


def build_krb_error(fault: SecurityFault, *, now: float, service: Principal | None = None) -> bytes:
    """The KRB-ERROR a KDC answers a refused request with (its code from the fault)."""
    stime, micros = k.kerberos_time(now)
    code = _CODES.get(type(fault), k.KRB_ERR_GENERIC)
    if fault.check == "replay":
        code = k.KRB_AP_ERR_REPEAT
    service = service or Principal(k.TGS_SERVICE)
    return asn.KRB_ERROR(
        {
            "pvno": 5,
            "msg-type": k.KRB_ERROR,
            "stime": stime,
            "susec": micros,
            "error-code": code,
            "realm": service.realm,
            "sname": service.asn1(),
            "e-text": fault.reason[:120],
        }
    ).dump()


def fault_of(data: bytes) -> SecurityFault:
    """The fault a client raises for a KRB-ERROR."""
    error = k._load(asn.KRB_ERROR, data, "KRB-ERROR")
    code = error["error-code"]
    fault = _FAULTS.get(code, InvalidSecurityToken)
    return fault(f"the KDC refused the request (KRB-ERROR {code})", check="kdc")
