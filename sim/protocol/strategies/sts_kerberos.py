"""The RST to the STS authenticated with a Kerberos token (option
``strategy_options.<name>.sts_authentication = "kerberos"`` of ``bearer``, ``hok-symmetric``
and ``hok-public``; seed 004: "the WS consumer user authenticates himself or herself with
the Security Token Service, for example, with a Kerberos token").

The client gets a TGT and a ticket for the STS's service principal (``HTTP/sts.example``)
from the ``kdc``, kept until they expire, and puts a Kerberos Token Profile 1.1
BinarySecurityToken (``#GSS_Kerberosv5_AP_REQ``, its GSS checksum binding the RST's
wsa:MessageID) in place of the UsernameToken. The STS accepts it as the ``kerberos``
provider does (its ticket for the STS, a fresh authenticator not seen before, the
binding), and issues the assertion to the ticket's client principal. The ``kdc`` role is
in the run only with the option."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from lxml import etree

from sim.errors import FailedAuthentication, SecurityFault
from sim.protocol.api import KDC, STS
from sim.protocol.base import Client, Setup, option
from sim.protocol.sending import record_tls
from sim.protocol.states import Input, Machine, State
from sim.protocol.strategies import kdc
from sim.protocol.strategies.kerberos import accept_token, new_token
from sim.protocol.strategies.saml_hok import HokPublicClient, HokSymmetricClient
from sim.protocol.strategies.saml_tokens import (
    BearerClient,
    BearerPerMessageClient,
    TokenOptions,
    TokenSts,
    fresh_over_tls,
)
from sim.wire import kerberos as k
from sim.wire import ns, soap, wss
from sim.wire.kerberos import Principal
from sim.wire.xmlutil import WSU_ID

#: the options a SAML token strategy adds for it
OPTIONS = {"sts_authentication"} | kdc.KERBEROS_OPTIONS
STS_PRINCIPAL = Principal(k.STS_SERVICE)


def by_kerberos(options: Mapping) -> bool:
    """Whether the RST to the STS carries a Kerberos token (else a UsernameToken)."""
    choice = option(
        options, "sts_authentication", "username", str, choices=("username", "kerberos")
    )
    return choice == "kerberos"


def read_options(options: Mapping) -> None:
    """The SAML token options, how the STS authenticates, and the realm's (checked even
    when unused, so that a bad value is refused, never ignored)."""
    TokenOptions(options)
    by_kerberos(options)
    kdc.KerberosOptions(options)


def _machine(base: Machine) -> Machine:
    """``base`` with the KDC exchanges before the RST: ``start`` may first ask for a TGT or
    the STS's ticket, whose reply leads on to the RST."""
    rows = []
    for row in base.transitions:
        if row.on is Input.FAULT:
            continue  # the machine adds its own
        if row.state is State.IDLE and row.on is Input.REQUEST:
            row = dataclasses.replace(
                row,
                to=(State.KDC_AS, State.KDC_TGS, *row.to),
                note=row.note + "; kdc-as, kdc-tgs first when the STS's ticket is missing",
            )
        rows.append(row)
    return Machine([*rows, *kdc.kdc_transitions((State.ISSUE,))])


def kerberos_client(base: type[Client]) -> type[Client]:
    """``base`` (a SAML ``TokenClient``) authenticating its RST with a Kerberos token."""

    class KerberosStsClient(kdc.KerberosClient, base):
        machine = _machine(base.machine)

        def __init__(self, setup: Setup, client_id: str) -> None:
            super().__init__(setup, client_id)
            self.sts_ticket = None

        def horizon(self) -> float:
            return min(base.horizon(self), self.ticket_horizon())

        def _request_token(self, now):
            credentials = self.credentials(STS_PRINCIPAL, now)
            if isinstance(credentials, list):
                return credentials
            self.sts_ticket = credentials
            return base._request_token(self, now)

        def sts_token(self, message_id: str, now: float) -> etree._Element:
            _, element = new_token(self, self.sts_ticket, message_id, now)
            return element

        def forget(self, fault: SecurityFault) -> bool:
            return self.forget_tickets(fault) | base.forget(self, fault)

    KerberosStsClient.__name__ = KerberosStsClient.__qualname__ = f"Kerberos{base.__name__}"
    return KerberosStsClient


# module attributes by their own names, so that the classes pickle (parallel runs)
KerberosBearerClient = kerberos_client(BearerClient)
KerberosBearerPerMessageClient = kerberos_client(BearerPerMessageClient)
KerberosHokSymmetricClient = kerberos_client(HokSymmetricClient)
KerberosHokPublicClient = kerberos_client(HokPublicClient)
_CLIENTS = {
    BearerClient: KerberosBearerClient,
    BearerPerMessageClient: KerberosBearerPerMessageClient,
    HokSymmetricClient: KerberosHokSymmetricClient,
    HokPublicClient: KerberosHokPublicClient,
}


class KerberosSts(TokenSts):
    """The STS accepting a Kerberos token for its own service principal."""

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup, node_id, shared)
        self.keytab = kdc.realm(setup).service_keys(STS_PRINCIPAL)

    def authenticate(self, data: bytes, now: float) -> tuple[soap.Envelope, soap.Addressing, str]:
        """A request over TLS (a fresh Timestamp, a new MessageID) carrying one Kerberos
        token: accepted, its authenticator remembered, the subject its ticket's client."""
        record_tls(self.ledger, data)
        envelope, addressing = self.read_request(data)
        security = fresh_over_tls(envelope, addressing, now, self.replay, self.ledger)
        tokens = [
            el
            for el in security
            if el.tag == wss.BINARY_SECURITY_TOKEN and el.get("ValueType") == ns.KERBEROS_AP_REQ
        ]
        if len(tokens) != 1 or not tokens[0].get(WSU_ID):
            raise FailedAuthentication("the STS needs one Kerberos token", check="authentication")
        _, _, accepted = accept_token(
            self, security, tokens[0].get(WSU_ID), addressing.message_id, self.keytab, now
        )
        k.remember(accepted, self.replay, now, self.ledger)
        client = accepted.ticket.client
        if len(client.components) != 1 or client.realm != k.REALM:
            raise FailedAuthentication("the ticket's client is not a user", check="kerberos")
        return envelope, addressing, client.components[0]


def resolve(entry, options: Mapping):
    """A SAML token strategy's registry entry as the options make it: with
    ``sts_authentication = "kerberos"``, the Kerberos client and STS, and the ``kdc``."""
    if not by_kerberos(options):
        return entry
    servers = {KDC: kdc.Kdc, **entry.servers, STS: KerberosSts}
    return dataclasses.replace(entry, client=_CLIENTS[entry.client], servers=servers)
