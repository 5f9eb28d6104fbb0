"""``kerberos``: the WS-Security Kerberos Token Profile 1.1, as WCF's wsHttpBinding with
Windows credentials and ``establishSecurityContext=false`` sends it. The client gets a TGT
(AS exchange) and a ticket for the provider's service principal (TGS exchange) from the
``kdc`` and keeps both until they expire; every application request then carries a
wsse:BinarySecurityToken ``#GSS_Kerberosv5_AP_REQ`` (a fresh authenticator with a new
subkey, its GSS checksum binding the request's wsa:MessageID) and is signed and encrypted
with DerivedKeyTokens from that subkey. The provider answers under keys derived from the
same subkey, naming the token by its SHA-1 (``#Kerberosv5APREQSHA1``).

Option ``token_reference = true``: once the provider has accepted a token, later requests
name it by its SHA-1 instead of carrying it (the profile allows it); a provider that does
not know the token answers wsc:BadContextToken, and the client sends a new one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from lxml import etree

from sim.crypto import krb5
from sim.errors import BadContextToken, InvalidSecurityToken, SecurityFault, UnknownDerivationSource
from sim.protocol import protection as p
from sim.protocol.api import PROVIDER, MessageKind
from sim.protocol.base import (
    APP_ACTION,
    APP_RESPONSE_ACTION,
    PROVIDER_ADDRESS,
    ContextCache,
    Server,
    Setup,
    app_response,
    option,
    send,
)
from sim.protocol.states import Input, Machine, State, Transition
from sim.protocol.strategies.kdc import (
    KERBEROS_OPTIONS,
    KerberosClient,
    KerberosOptions,
    kdc_transitions,
    realm,
)
from sim.wire import kerberos as k
from sim.wire import kerberos_token as kt
from sim.wire import ns, soap, wss
from sim.wire.checks import require_signed
from sim.wire.kdc import Credentials
from sim.wire.kerberos import Principal
from sim.wire.xmlutil import WSU_ID, b64

OPTIONS = KERBEROS_OPTIONS | {"token_reference", "derived_keys", "cache_capacity"}


class KerberosTokenOptions(KerberosOptions):
    """The realm's options and the token's."""

    def __init__(self, options) -> None:
        super().__init__(options)
        self.token_reference = option(options, "token_reference", False, bool)
        self.derived_keys = option(options, "derived_keys", True, bool)
        #: tokens a provider node remembers for SHA-1 references
        self.capacity = option(options, "cache_capacity", 10_000, int, low=1, high=10**8)


@dataclass(slots=True, kw_only=True)
class _Sent:
    """A token the client has sent: its octets, its subkey, the ticket it came from."""

    token: bytes
    subkey: krb5.SessionKey
    ticket: Credentials


def _key_of(reference, token: bytes) -> bool:
    return (
        reference.value_type == ns.KERBEROS_AP_REQ_SHA1
        and reference.key_identifier == k.token_sha1(token)
    )


def new_token(
    client: KerberosClient, credentials: Credentials, message_id: str, now: float
) -> tuple[_Sent, etree._Element]:
    """A Kerberos BinarySecurityToken for a request: an AP-REQ with a fresh authenticator
    and subkey, its GSS checksum binding the request's ``message_id``."""
    subkey, ap_req = client.new_ap_req(credentials, k.gss_checksum(message_id.encode()), now)
    sent = _Sent(token=k.gss_frame(k.TOK_AP_REQ, ap_req), subkey=subkey, ticket=credentials)
    element = kt.token_element(sent.token)
    client.setup.log_key("session-key", element.get(WSU_ID), subkey.value)
    return sent, element


def accept_token(
    server: Server, security: etree._Element, token_id: str, message_id: str, keytab, now: float
) -> tuple[etree._Element, bytes, k.Accepted]:
    """The Kerberos BinarySecurityToken ``token_id`` of a request's header, accepted: its
    ticket for a service of ``keytab``, a fresh authenticator, its GSS checksum binding
    ``message_id``. The caller puts the authenticator in its replay store
    (:func:`~sim.wire.kerberos.remember`) once the message signature has verified."""
    element = next(
        (
            el
            for el in security
            if el.tag == wss.BINARY_SECURITY_TOKEN and el.get(WSU_ID) == token_id
        ),
        None,
    )
    if element is None:
        raise InvalidSecurityToken("no Kerberos token with that Id in the header")
    token = kt.read_token_element(element)
    accepted = k.accept_ap_req(
        k.gss_unframe(token, k.TOK_AP_REQ), keytab, now=now, ledger=server.ledger
    )
    k.check_gss_binding(accepted, message_id.encode(), server.ledger)
    return element, token, accepted


class KerberosTokenClient(KerberosClient):
    machine: ClassVar[Machine] = Machine(
        [
            Transition(
                state=State.IDLE,
                on=Input.REQUEST,
                handler="start",
                to=(State.KDC_AS, State.KDC_TGS, State.APP),
                note="kdc-as: no valid TGT; kdc-tgs: no valid service ticket; else the request",
            ),
            *kdc_transitions((State.APP,)),
            Transition(state=State.APP, on=Input.REPLY, handler="on_app_reply"),
            Transition(state=State.IDLE, on=Input.CLOSE, handler="close_session"),
        ]
    )

    def __init__(self, setup: Setup, client_id: str) -> None:
        super().__init__(setup, client_id)
        self.opts = KerberosTokenOptions(setup.options)
        self.service = Principal(k.PROVIDER_SERVICE)
        self.sent: _Sent | None = None
        #: the token of the request in flight (the reply's keys derive from its subkey)
        self.current: _Sent | None = None

    def horizon(self) -> float:
        return self.ticket_horizon()

    def start(self, now):
        credentials = self.credentials(self.service, now)
        if isinstance(credentials, list):
            return credentials
        envelope = soap.new_envelope()
        sent = self.address_request(envelope, APP_ACTION, APP_RESPONSE_ACTION, to=PROVIDER_ADDRESS)
        p.put_payload(envelope, self.payload)
        reuse = (
            self.opts.token_reference and self.sent is not None and self.sent.ticket is credentials
        )
        if reuse:
            token_sent, tokens = self.sent, []
            source = kt.sha1_reference(token_sent.token)
        else:
            token_sent, element = new_token(self, credentials, sent.message_id, now)
            tokens = [element]
            source = kt.token_reference(element.get(WSU_ID))
        self.current = token_sent
        data = p.protect_symmetric(
            envelope,
            secret=token_sent.subkey.value,
            source_reference=lambda: source,
            now=now,
            ledger=self.ledger,
            suite_=self.setup.suite,
            derive=self.opts.derived_keys,
            tokens=tokens,
            extra_signed=tokens,
            keylog=self.setup.log_key,
        )
        return send(PROVIDER, data, action=APP_ACTION, kind=MessageKind.APP_REQUEST)

    def on_app_reply(self, envelope, sender, now):
        current = self.current

        def secret_for(reference):
            if not _key_of(reference, current.token):
                raise UnknownDerivationSource("the reply's keys derive from another token")
            return current.subkey.value

        self.open_symmetric(envelope, now, secret_for)
        self.sent = current
        return [self.done(p.get_payload(envelope))]

    def forget(self, fault: SecurityFault) -> bool:
        if isinstance(fault, (BadContextToken, UnknownDerivationSource)) and self.sent is not None:
            self.sent = None
            return True
        return self.forget_tickets(fault)


class KerberosTokenProvider(Server):
    role = PROVIDER
    request_actions = frozenset({APP_ACTION})

    def __init__(self, setup: Setup, node_id: str, shared: ContextCache | None = None) -> None:
        super().__init__(setup)
        self.opts = KerberosTokenOptions(setup.options)
        self.keytab = realm(setup).service_keys(Principal(k.PROVIDER_SERVICE))
        self.replay = setup.replay_cache(self.role, node_id)
        self.tokens = (
            shared
            if shared is not None
            else ContextCache(self.opts.capacity, self.opts.ticket_lifetime)
        )

    def handle(self, data, sender, now):
        envelope, addressing = self.read_request(data)
        security = wss.find_security_header(envelope)
        found: dict[str, object] = {}

        def secret_for(reference):
            if "key" in found:  # every key of a message derives from one token
                if found["reference"] != reference:
                    raise UnknownDerivationSource("keys must derive from one Kerberos token")
                return found["key"]
            if reference.value_type == ns.KERBEROS_AP_REQ and (reference.uri or "").startswith("#"):
                element, token, accepted = accept_token(
                    self, security, reference.uri[1:], addressing.message_id, self.keytab, now
                )
                found.update(
                    element=element, token=token, key=accepted.key.value, accepted=accepted
                )
            elif reference.value_type == ns.KERBEROS_AP_REQ_SHA1 and self.opts.token_reference:
                if not isinstance(reference.key_identifier, bytes):
                    raise InvalidSecurityToken("a Kerberos token SHA-1 is base64 binary")
                token, key = self.tokens.get(b64(reference.key_identifier), now, self.ledger)
                found.update(token=token, key=key)
            else:
                raise UnknownDerivationSource("keys must derive from a Kerberos token")
            found["reference"] = reference
            return found["key"]

        checked = self.open_symmetric(envelope, now, secret_for)
        if "element" in found:
            require_signed(checked.verified, found["element"], "the Kerberos token")
            k.remember(found["accepted"], self.replay, now, self.ledger)
        token, key = found["token"], found["key"]
        if self.opts.token_reference:
            identifier = b64(k.token_sha1(token))
            if "element" in found:
                self.tokens.put(identifier, (token, key), now)
            else:
                self.tokens.touch(identifier, now)
        response = soap.new_envelope()
        soap.add_addressing(response, action=APP_RESPONSE_ACTION, relates_to=addressing.message_id)
        p.put_payload(response, p.get_payload(envelope), "Response")
        reply = p.protect_symmetric(
            response,
            secret=key,
            source_reference=lambda: kt.sha1_reference(token),
            now=now,
            ledger=self.ledger,
            suite_=self.setup.suite,
            derive=self.opts.derived_keys,
            keylog=self.setup.log_key,
        )
        return app_response(sender, reply)
