"""The Kerberos realm of a strategy: the ``kdc`` role (AS and TGS exchanges, RFC 4120) and
what a Kerberos client keeps, its credentials cache (a TGT and service tickets, each used
until it expires).

The realm's keys are derived from fixed passwords (users: their ``Setup.username``
password; services and ``krbtgt``: a password of their name) and computed once per
strategy, as a KDC keeps keys in its database; a client charges its string-to-key once,
on its first AS-REQ, as ``kinit`` does. KDC messages are DER on the wire, as over
Kerberos' own transport; a refused request is answered with a KRB-ERROR, which the client
reads as the matching typed fault."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from sim.crypto import krb5
from sim.crypto.krb5 import Enctype, SessionKey
from sim.errors import (
    ExpiredData,
    FailedAuthentication,
    FailedCheck,
    InvalidSecurityToken,
    SecurityFault,
)
from sim.protocol.api import KDC, Event, MessageKind, Send, Step, role_of
from sim.protocol.base import Client, Server, Setup, option
from sim.protocol.states import Input, State, Transition
from sim.wire import kdc as wire_kdc
from sim.wire import kerberos as k
from sim.wire import kerberos_token
from sim.wire.checks import ReplayCache
from sim.wire.kerberos import Principal
from sim.wire.ledger import Op

#: the options every Kerberos strategy has
KERBEROS_OPTIONS = {"enctype", "ticket_lifetime_s"}


class KerberosOptions:
    """The realm's options, read and checked."""

    def __init__(self, options) -> None:
        name = option(
            options, "enctype", "aes256-cts-hmac-sha1-96", str, choices=tuple(krb5.ENCTYPE_NAMES)
        )
        self.enctype = krb5.enctype_named(name)
        #: TGT and service ticket lifetime (MIT's and Windows' default: 10 hours)
        self.ticket_lifetime = option(
            options, "ticket_lifetime_s", 36_000.0, float, low=60.0, high=1e7
        )


@dataclass
class Realm:
    """The keys of every principal, computed once per strategy (``realm``)."""

    enctype: Enctype
    setup: Setup
    keys: dict[Principal, SessionKey]

    def key(self, principal: Principal) -> SessionKey:
        """The long-term key of ``principal`` (its string-to-key, computed once)."""
        key = self.keys.get(principal)
        if key is None:
            key = krb5.string_to_key(
                self.enctype, password_of(self.setup, principal), principal.salt()
            )
            self.keys[principal] = key
            self.setup.log_key(
                "krb5-long-term-key", kerberos_token.key_log_id(principal, self.enctype), key.value
            )
        return key

    def service_keys(self, *services: Principal) -> dict[Principal, dict[int, SessionKey]]:
        """The keytab of ``services``: each one's key by enctype."""
        return {service: {int(self.enctype): self.key(service)} for service in services}


def password_of(setup: Setup, principal: Principal) -> str:
    """A principal's password: a user's from the setup, a service's from its name."""
    if len(principal.components) == 1:
        password = setup.passwords.get(principal.components[0])
        if password is None:
            raise FailedAuthentication("unknown client principal", check="kerberos-principal")
        return password
    return "service-password-of-" + "/".join(principal.components)


def realm(setup: Setup) -> Realm:
    """The strategy's realm (built once and shared by its actors)."""
    found = setup.shared.get("krb5-realm")
    if found is None:
        found = Realm(KerberosOptions(setup.options).enctype, setup, {})
        setup.shared["krb5-realm"] = found
    return found


class Kdc(Server):
    """The ``kdc`` role: AS-REQ -> AS-REP (a TGT), TGS-REQ -> TGS-REP (a service ticket);
    anything refused -> KRB-ERROR."""

    role = KDC
    #: the services the KDC issues tickets for
    services: ClassVar[tuple[tuple[str, str], ...]] = (k.PROVIDER_SERVICE, k.STS_SERVICE)

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup)
        self.opts = KerberosOptions(setup.options)
        self.realm = realm(setup)
        self.tgs = Principal(k.TGS_SERVICE)
        self.replay = setup.replay_cache(self.role, node_id)

    def receive(self, data: bytes, *, sender: str, now: float) -> Step:
        self.last_refusal = None
        try:
            events = self.handle(data, sender, now)
        except SecurityFault as fault:
            self.last_refusal = fault.check
            events = [
                Send(
                    to=sender,
                    data=wire_kdc.build_krb_error(fault, now=now),
                    action="krb-error",
                    kind=MessageKind.KRB_ERROR,
                    reply=True,
                    fault=fault.code,
                    token_service=True,
                )
            ]
        return self._step(events)

    def handle(self, data: bytes, sender: str, now: float) -> list[Event]:
        request = wire_kdc.read_kdc_req(
            data, self.realm.service_keys(self.tgs), now=now, ledger=self.ledger, replay=self.replay
        )
        if self.realm.enctype not in request.etypes:
            raise wire_kdc.UnsupportedAlgorithm(
                "no enctype in common with the client", check="kerberos"
            )
        self.ledger.record(Op.CACHE_LOOKUP, 0)  # the principal database
        if request.msg_type == k.AS_REQ:
            if request.service != self.tgs:
                raise InvalidSecurityToken("an AS-REQ asks for a TGT", check="service-principal")
            reply_key = self.realm.key(request.client)
            wire_kdc.check_pre_authentication(request, reply_key, now, self.ledger)
            authtime, kind = now, MessageKind.KRB_AS_REP
        else:
            if request.service.components not in self.services or request.service.realm != k.REALM:
                raise InvalidSecurityToken("no such service principal", check="service-principal")
            reply_key, authtime, kind = (
                request.tgt.key,
                request.tgt.authtime,
                MessageKind.KRB_TGS_REP,
            )
        endtime = min(request.till, now + self.opts.ticket_lifetime)
        if request.tgt is not None:
            endtime = min(endtime, request.tgt.endtime)
        if endtime <= now:
            raise ExpiredData("the requested end time has passed", check="ticket-lifetime")
        session = krb5.random_key(
            self.realm.enctype, k.fresh_bytes(krb5.key_bytes(self.realm.enctype))
        )
        ticket = k.issue_ticket(
            self.realm.key(request.service),
            request.service,
            request.client,
            session,
            authtime=authtime,
            endtime=endtime,
            ledger=self.ledger,
        )
        data = wire_kdc.build_kdc_rep(
            request,
            ticket,
            session,
            reply_key,
            authtime=authtime,
            endtime=endtime,
            ledger=self.ledger,
        )
        self.setup.log_key(
            "krb5-session-key", f"{request.client} -> {request.service}", session.value
        )
        return [
            Send(to=sender, data=data, action=kind.value, kind=kind, reply=True, token_service=True)
        ]


@dataclass(slots=True, kw_only=True)
class _KdcPending:
    """The KDC request a client waits on: its nonce, the service it asked a ticket for and
    the key the reply is encrypted with."""

    nonce: int
    service: Principal
    reply_key: SessionKey


#: the transitions a Kerberos client's table holds for its KDC exchanges; ``then`` names the
#: states its ``start`` may go to once it holds the ticket
def kdc_transitions(then: tuple[State, ...]) -> tuple[Transition, ...]:
    return (
        Transition(
            state=State.KDC_AS,
            on=Input.REPLY,
            handler="on_kdc_reply",
            to=(State.KDC_TGS, *then),
            note="a TGT: next the service ticket",
        ),
        Transition(
            state=State.KDC_TGS,
            on=Input.REPLY,
            handler="on_kdc_reply",
            to=then,
            note="a service ticket: the request it was for",
        ),
    )


class KerberosClient(Client):
    """A client with a credentials cache: ``credentials(service, now)`` returns a valid
    service ticket, or the AS-REQ / TGS-REQ that gets one (the handler then calls
    ``start`` again once the reply is in)."""

    #: a ticket is renewed this long before it ends, so that no request carries one that
    #: expires on the way
    margin: ClassVar[float] = 60.0

    def __init__(self, setup: Setup, client_id: str) -> None:
        super().__init__(setup, client_id)
        self.kopts = KerberosOptions(setup.options)
        self.realm = realm(setup)
        self.user, _ = setup.username(client_id)
        self.principal = Principal((self.user,))
        self.user_key: SessionKey | None = None
        self.tgt: wire_kdc.Credentials | None = None
        self.tickets: dict[Principal, wire_kdc.Credentials] = {}
        self.kdc_pending: _KdcPending | None = None
        self.replay = ReplayCache()

    def _valid(self, credentials: wire_kdc.Credentials | None, now: float) -> bool:
        return credentials is not None and now < credentials.endtime - self.margin

    def ticket_horizon(self) -> float:
        """When a cached ticket falls due for renewal (a KDC exchange then comes first)."""
        ends = [c.endtime - self.margin for c in (self.tgt, *self.tickets.values()) if c]
        return min(ends, default=float("inf"))

    def new_ap_req(
        self, credentials: wire_kdc.Credentials, checksum: dict, now: float, *, mutual: bool = False
    ) -> tuple[SessionKey, bytes]:
        """A new subkey and an AP-REQ (DER) presenting ``credentials`` that carries it, with
        ``checksum`` (a GSS checksum) and a fresh sequence number."""
        enctype = self.realm.enctype
        subkey = krb5.random_key(enctype, k.fresh_bytes(krb5.key_bytes(enctype)))
        ap_req = k.build_ap_req(
            credentials.ticket,
            credentials.key,
            self.principal,
            now=now,
            ledger=self.ledger,
            checksum=checksum,
            subkey=subkey,
            seq_number=k.fresh_number(),
            mutual=mutual,
        )
        return subkey, ap_req

    def credentials(self, service: Principal, now: float) -> wire_kdc.Credentials | list[Event]:
        """A valid ticket to ``service``, else the KDC request that gets one."""
        ticket = self.tickets.get(service)
        if self._valid(ticket, now):
            return ticket
        nonce, till = k.fresh_number(), now + self.kopts.ticket_lifetime
        if not self._valid(self.tgt, now):
            if self.user_key is None:
                self.ledger.record(Op.KRB_STRING_TO_KEY, _iterations(self.realm.enctype))
                self.user_key = self.realm.key(self.principal)
            tgs = Principal(k.TGS_SERVICE)
            data = wire_kdc.build_as_req(
                self.principal, self.user_key, now=now, till=till, nonce=nonce, ledger=self.ledger
            )
            self.kdc_pending = _KdcPending(nonce=nonce, service=tgs, reply_key=self.user_key)
            kind = MessageKind.KRB_AS_REQ
        else:
            data = wire_kdc.build_tgs_req(
                self.tgt,
                self.principal,
                service,
                now=now,
                till=till,
                nonce=nonce,
                ledger=self.ledger,
            )
            self.kdc_pending = _KdcPending(nonce=nonce, service=service, reply_key=self.tgt.key)
            kind = MessageKind.KRB_TGS_REQ
        return [Send(to=KDC, data=data, action=kind.value, kind=kind, token_service=True)]

    def on_kdc_reply(self, data: bytes, sender: str, now: float) -> list[Event]:
        pending, self.kdc_pending = self.kdc_pending, None
        credentials = wire_kdc.read_kdc_rep(
            data,
            pending.reply_key,
            nonce=pending.nonce,
            service=pending.service,
            now=now,
            ledger=self.ledger,
        )
        if pending.service.components == k.TGS_SERVICE:
            self.tgt = credentials
        else:
            self.tickets[pending.service] = credentials
        self.setup.log_key(
            "krb5-session-key", f"{self.principal} -> {pending.service}", credentials.key.value
        )
        return self.start(now)

    def forget_tickets(self, fault: SecurityFault) -> bool:
        """An expired ticket (the service's or the KDC's wst:ExpiredData, the only
        recoverable fault a ticket causes): drop the cached credentials, so that a fresh
        AS exchange follows; True when there were some to drop."""
        if isinstance(fault, ExpiredData):
            had = self.tgt is not None or bool(self.tickets)
            self.tgt, self.tickets = None, {}
            return had
        return False

    def request(self, payload: bytes, *, now: float) -> Step:
        self.kdc_pending = None
        return super().request(payload, now=now)

    def receive(self, data: bytes, *, sender: str, now: float) -> Step:
        if role_of(sender) != KDC:
            return super().receive(data, sender=sender, now=now)
        self.last_refusal = None
        try:
            events = self._on_kdc_data(data, sender, now)
        except SecurityFault as fault:
            self.last_refusal = fault.check
            events = self._end(fault)
        return self._step(events)

    def _on_kdc_data(self, data: bytes, sender: str, now: float) -> list[Event]:
        if self.kdc_pending is None or self.state not in (State.KDC_AS, State.KDC_TGS):
            raise FailedCheck("a KDC reply when no KDC request is pending", check="relates-to")
        if wire_kdc.message_type(data) == k.KRB_ERROR:
            self.kdc_pending = None
            return self._fire(Input.FAULT, wire_kdc.fault_of(data), now)
        return self._fire(Input.REPLY, data, sender, now)


def _iterations(enctype: Enctype) -> int:
    """The PBKDF2 iterations of a string-to-key (RC4's MD4 counts as one)."""
    return 1 if enctype is Enctype.RC4_HMAC else krb5.AES_ITERATIONS
