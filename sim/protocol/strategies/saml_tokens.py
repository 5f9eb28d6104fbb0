"""SAML tokens from an STS (seed 001): ``bearer`` (cached and renewed) and
``bearer-per-message``, and what every SAML strategy shares: the token options, the STS
issuing over TLS, the provider validating the one assertion of a message, and the plain
messages TLS protects. The holder-of-key strategies are ``saml_hok.py``, sender-vouches
``sender_vouches.py``.

The client talks to the STS over TLS, authenticating with a UsernameToken (WCF's
UserNameOverTransport); bearer application messages also travel over TLS."""

from __future__ import annotations

import math
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

import sim.crypto as crypto
from sim.errors import (
    ExpiredData,
    FailedAuthentication,
    InvalidRequest,
    InvalidSecurity,
    InvalidSecurityToken,
    SecurityFault,
)
from sim.protocol import protection as p
from sim.protocol.api import PROVIDER, STS, Event, MessageKind
from sim.protocol.base import Client, Provider, Server, Setup, option
from sim.protocol.binding import body_element, one_response
from sim.protocol.sending import app_response, record_tls, send
from sim.protocol.setup import APP_ACTION, APP_RESPONSE_ACTION, PROVIDER_ADDRESS, STS_ADDRESS
from sim.protocol.states import Input, Machine, State, Transition, starts
from sim.wire import ns, saml, soap, trust, wss
from sim.wire.checks import ReplayCache
from sim.wire.keys import Identity
from sim.wire.ledger import Ledger, Op
from sim.wire.ns import Action, Confirmation, KeyType, RequestType
from sim.wire.saml import SamlVersion, SubjectKey
from sim.wire.xmlutil import fresh_bytes, one_child, text_of

OPTIONS = {"token_lifetime_s", "renew_at", "saml_version", "proof", "derived_keys"}


class TokenOptions:
    def __init__(self, options) -> None:
        self.lifetime = option(options, "token_lifetime_s", 3600.0, float, low=1.0, high=1e7)
        self.renew_at = option(options, "renew_at", 0.8, float, low=0.05, high=0.99)
        version = option(options, "saml_version", "2.0", str, choices=("1.1", "2.0"))
        self.version = SamlVersion(version)
        self.proof = option(
            options, "proof", "binary-secret", str, choices=("binary-secret", "computed-key")
        )
        self.derived_keys = option(options, "derived_keys", True, bool)


# --- plain messages over TLS ----------------------------------------------------------------


def sent_over_tls(envelope: soap.Envelope, ledger: Ledger) -> bytes:
    """The bytes of ``envelope``, its TLS record work recorded."""
    data = envelope.to_bytes(ledger)
    record_tls(ledger, data)
    return data


def read_over_tls(envelope: soap.Envelope, now: float, ledger: Ledger) -> None:
    """A message received over TLS: its record work recorded, its Timestamp fresh."""
    record_tls(ledger, envelope.to_bytes())
    wss.check_freshness(wss.read_timestamp(wss.find_security_header(envelope)), now)


def fresh_over_tls(
    envelope: soap.Envelope,
    addressing: soap.Addressing,
    now: float,
    replay: ReplayCache,
    ledger: Ledger,
) -> etree._Element:
    """The security header of a request protected by TLS alone, once its Timestamp is fresh
    and its MessageID new (remembered until the Timestamp expires)."""
    security = wss.find_security_header(envelope)
    timestamp = wss.read_timestamp(security)
    wss.check_freshness(timestamp, now)
    if not addressing.message_id:
        raise InvalidSecurity("a request without wsa:MessageID", check="replay")
    lifetime = {"created": timestamp.created, "expires": timestamp.expires}
    replay.check_and_add(addressing.message_id, now, ledger=ledger, **lifetime)
    return security


def user_over_tls(
    server: Server, data: bytes, now: float, missing: FailedAuthentication
) -> tuple[soap.Envelope, soap.Addressing, wss.UsernameToken]:
    """A request over TLS from a user (a fresh Timestamp, a new MessageID) authenticated by
    its UsernameToken: its envelope, addressing and token. ``missing`` refuses a request
    without one."""
    record_tls(server.ledger, data)
    envelope, addressing = server.read_request(data)
    security = fresh_over_tls(envelope, addressing, now, server.replay, server.ledger)
    token_el = one_child(security, wss.USERNAME_TOKEN, "wsse:UsernameToken", required=False)
    if token_el is None:
        raise missing
    token = wss.read_username_token(token_el)
    wss.authenticate_username_token(
        token, server.setup.passwords, now=now, replay=server.replay, ledger=server.ledger
    )
    return envelope, addressing, token


def app_request_over_tls(
    client: Client, token: etree._Element, now: float, *, to: str, address: str
) -> list[Event]:
    """An application request of ``client`` over TLS, carrying ``token`` in its security
    header; the response comes back over TLS, unsigned."""
    envelope = soap.new_envelope()
    client.address_request(envelope, APP_ACTION, APP_RESPONSE_ACTION, to=address, signed=False)
    security, _ = p.security_header(envelope, now)
    security.append(token)
    p.put_payload(envelope, client.payload)
    data = sent_over_tls(envelope, client.ledger)
    return send(to, data, action=APP_ACTION, kind=MessageKind.APP_REQUEST, tls=True)


def app_response_over_tls(
    ledger: Ledger, to: str, relates_to: str, payload: bytes, now: float
) -> list[Event]:
    """The application response answering ``relates_to``, over TLS: a Timestamp and the
    payload."""
    response = soap.new_envelope()
    soap.add_addressing(response, action=APP_RESPONSE_ACTION, relates_to=relates_to)
    p.security_header(response, now)
    p.put_payload(response, payload, "Response")
    return app_response(to, sent_over_tls(response, ledger), tls=True)


# --- the assertion: issued, found, validated ------------------------------------------------


def signed_assertion(
    sts: Identity,
    opts: TokenOptions,
    *,
    subject: str,
    confirmation: Confirmation,
    now: float,
    ledger: Ledger,
    subject_key: SubjectKey | None = None,
) -> etree._Element:
    """An assertion for ``subject`` issued now by the STS for the provider, signed."""
    assertion = saml.build_assertion(
        issuer=STS_ADDRESS,
        subject=subject,
        audience=PROVIDER_ADDRESS,
        now=now,
        lifetime=opts.lifetime,
        confirmation=confirmation,
        version=opts.version,
        subject_key=subject_key,
        ledger=ledger,
    )
    return saml.sign_assertion(assertion, sts, ledger=ledger)


def issued_response(
    assertion: etree._Element,
    opts: TokenOptions,
    *,
    relates_to: str,
    now: float,
    timestamp: bool = False,
    **rstr,
) -> soap.Envelope:
    """The STS's final RSTR collection handing over ``assertion`` (not yet protected; with
    ``timestamp``, a security header holding a Timestamp, as over TLS)."""
    response = soap.new_envelope()
    soap.add_addressing(response, action=Action.RSTRC_ISSUE_FINAL.value, relates_to=relates_to)
    if timestamp:
        p.security_header(response, now)
    response.add_body_element(
        trust.build_rstr_collection(
            [
                trust.build_rstr(
                    token_type=saml.TOKEN_TYPES[opts.version],
                    request_type=RequestType.ISSUE,
                    requested_token=assertion,
                    lifetime=(now, now + opts.lifetime),
                    applies_to=PROVIDER_ADDRESS,
                    **rstr,
                )
            ]
        )
    )
    return response


def the_assertion(security: etree._Element) -> etree._Element:
    """The one SAML assertion of a security header (a direct child), which the policy of
    every SAML strategy requires; none or several is a fault."""
    found = [el for el in security if el.tag in (saml.ASSERTION1, saml.ASSERTION2)]
    if len(found) != 1:
        raise InvalidSecurityToken(
            f"expected one SAML assertion in the security header, found {len(found)}",
            check="token-policy",
        )
    return found[0]


class SamlProvider(Provider):
    """A provider accepting requests on the strength of one STS-signed assertion whose
    confirmation is one of ``confirmations``."""

    confirmations: ClassVar[frozenset[Confirmation]] = frozenset({Confirmation.BEARER})

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup, node_id, shared)
        self.sts_key = setup.identity("sts").public_key

    def validate(self, assertion, now) -> saml.ValidatedAssertion:
        return saml.validate_assertion(
            assertion,
            sts_key=self.sts_key,
            audience=PROVIDER_ADDRESS,
            issuer=STS_ADDRESS,
            now=now,
            expected=self.confirmations,
            recipient=self.identity,
            ledger=self.ledger,
        )


# --- bearer ----------------------------------------------------------------------------------


class TokenClient(Client):
    """Gets a SAML token from the STS (over TLS, UsernameToken), caches it until its renewal
    point, and sends application messages with it."""

    key_type = KeyType.BEARER
    per_message = False
    machine: ClassVar[Machine] = Machine(
        [
            starts(
                State.ISSUE,
                State.APP,
                note="issue: no token, or its renewal is due; app: the cached token",
            ),
            Transition(state=State.ISSUE, on=Input.REPLY, handler="on_issued", to=(State.APP,)),
            Transition(state=State.APP, on=Input.REPLY, handler="on_app_reply"),
            Transition(state=State.IDLE, on=Input.CLOSE, handler="close_session"),
        ]
    )

    def __init__(self, setup: Setup, client_id: str) -> None:
        super().__init__(setup, client_id)
        self.opts = TokenOptions(setup.options)
        self.user, self.password = setup.username(client_id)
        self.replay = ReplayCache()
        self.token: bytes | None = None  # the assertion, as received
        self.token_id: str | None = None
        self.renew_due = 0.0
        self.proof_key: bytes | None = None

    def horizon(self) -> float:
        if self.token is None or self.per_message:
            return math.inf
        return self.renew_due

    def start(self, now):
        if self.token is None or now >= self.renew_due:
            return self._request_token(now)
        return self.send_app(now)

    def rst_extras(self) -> dict:
        return {}

    def _request_token(self, now):
        envelope = soap.new_envelope()
        # over TLS: the RSTR is not signed, the channel binds it
        reply = Action.RSTRC_ISSUE_FINAL.value
        sent = self.address_request(
            envelope, Action.RST_ISSUE.value, reply, to=STS_ADDRESS, signed=False
        )
        security, _ = p.security_header(envelope, now)
        security.append(self.sts_token(sent.message_id, now))
        request = trust.RequestSecurityToken(
            request_type=RequestType.ISSUE,
            token_type=saml.TOKEN_TYPES[self.opts.version],
            applies_to=PROVIDER_ADDRESS,
            key_type=self.key_type,
            lifetime=(now, now + self.opts.lifetime),
            **self.rst_extras(),
        )
        envelope.add_body_element(trust.build_rst(request))
        data = sent_over_tls(envelope, self.ledger)
        return send(STS, data, action=Action.RST_ISSUE, kind=MessageKind.RST_ISSUE, tls=True)

    def sts_token(self, message_id: str, now: float) -> etree._Element:
        """The token authenticating the RST to the STS: the user's UsernameToken."""
        return wss.build_username_token(self.user, password=self.password)

    def on_issued(self, envelope, sender, now):
        """The STS's RSTR (over TLS): keep the token, then send the application request."""
        read_over_tls(envelope, now, self.ledger)
        response = one_response(envelope)
        if response.requested_token is None or response.lifetime is None:
            raise InvalidRequest("RSTR without a token or its lifetime")
        self.accept_proof(response)
        token = response.requested_token
        self.token = etree.tostring(token)
        self.token_id = saml.assertion_id(token)
        _, expires = response.lifetime
        self.renew_due = now + (expires - now) * self.opts.renew_at
        return self.send_app(now)

    def accept_proof(self, response) -> None:
        """Take the proof of possession from the RSTR (none for bearer tokens)."""

    def _token_element(self):
        return etree.fromstring(self.token)

    def token_reference(self) -> etree._Element:
        """The STR by which a message's key names the cached assertion."""
        return saml.assertion_reference(self.token_id, self.opts.version)

    def send_app(self, now):
        token = self._token_element()
        if self.per_message:
            self.token = None
        return app_request_over_tls(self, token, now, to=PROVIDER, address=PROVIDER_ADDRESS)

    def on_app_reply(self, envelope, sender, now):
        """A reply over TLS (its RelatesTo and Action already checked by ``check_reply``)."""
        read_over_tls(envelope, now, self.ledger)
        return [self.done(p.get_payload(envelope))]

    def forget(self, fault: SecurityFault) -> bool:
        if isinstance(fault, ExpiredData):
            self.token = None
            return True
        return False


class BearerClient(TokenClient):
    pass


class BearerPerMessageClient(TokenClient):
    per_message = True


class SamlSts(Server):
    """An STS issuing SAML assertions (its options: ``options_class``)."""

    role = STS
    request_actions = frozenset({Action.RST_ISSUE.value})
    options_class: ClassVar[type[TokenOptions]] = TokenOptions

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup)
        self.opts = self.options_class(setup.options)
        self.identity = setup.identity("sts")
        self.replay = setup.replay_cache(self.role, node_id)


class TokenSts(SamlSts):
    """The STS: authenticates the UsernameToken and issues a signed SAML assertion whose
    confirmation follows the requested KeyType (its proof key: ``proof``)."""

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup, node_id, shared)
        self.provider = setup.identity("provider")

    def authenticate(self, data: bytes, now: float) -> tuple[soap.Envelope, soap.Addressing, str]:
        """A request over TLS, its addressing and the subject its UsernameToken proves."""
        missing = FailedAuthentication("the STS needs a UsernameToken", check="authentication")
        envelope, addressing, token = user_over_tls(self, data, now, missing)
        return envelope, addressing, token.username

    def handle(self, data, sender, now):
        envelope, addressing, subject = self.authenticate(data, now)
        request = trust.read_rst(body_element(envelope, "wst:RequestSecurityToken"))
        if request.applies_to != PROVIDER_ADDRESS:
            raise InvalidRequest("no token for that AppliesTo")
        subject_key, extras = self.proof(request)
        bearer = request.key_type in (None, KeyType.BEARER)
        assertion = signed_assertion(
            self.identity,
            self.opts,
            subject=subject,
            confirmation=Confirmation.BEARER if bearer else Confirmation.HOLDER_OF_KEY,
            now=now,
            ledger=self.ledger,
            subject_key=subject_key,
        )
        assertion_id = saml.assertion_id(assertion)
        if subject_key is not None and subject_key.symmetric_key is not None:
            self.setup.log_key("proof-key", assertion_id, subject_key.symmetric_key)
        response = issued_response(
            assertion,
            self.opts,
            relates_to=addressing.message_id,
            now=now,
            timestamp=True,
            key_type=request.key_type or KeyType.BEARER,
            attached_reference=saml.assertion_reference(assertion_id, self.opts.version),
            unattached_reference=saml.external_assertion_reference(
                assertion_id, self.opts.version, STS_ADDRESS
            ),
            **extras,
        )
        out = sent_over_tls(response, self.ledger)
        return send(
            sender,
            out,
            action=Action.RSTRC_ISSUE_FINAL,
            kind=MessageKind.RSTR_ISSUE,
            reply=True,
            tls=True,
        )

    def proof(self, request) -> tuple[SubjectKey | None, dict]:
        """The subject's proof key the request asks for, and what the RSTR says of it."""
        if request.key_type == KeyType.SYMMETRIC:
            if request.entropy is not None:
                issuer_entropy = fresh_bytes(32)
                self.ledger.record(Op.P_SHA1, 32)
                key = crypto.computed_key(request.entropy, issuer_entropy, 256)
                extras = {
                    "entropy": issuer_entropy,
                    "proof_computed_key": ns.ComputedKeyAlg.PSHA1.value,
                    "key_size": 256,
                }
            else:
                key = fresh_bytes(32)
                extras = {"proof_secret": key, "key_size": 256}
            return SubjectKey(symmetric_key=key, recipient=self.provider), extras
        if request.key_type == KeyType.PUBLIC:
            if request.use_key is None:
                raise InvalidRequest("a PublicKey request needs UseKey")
            return SubjectKey(public_key=_read_key_value(request.use_key)), {}
        return None, {}


def _read_key_value(value: etree._Element) -> rsa.RSAPublicKey:
    rsa_el = one_child(value, ns.qname(ns.DS, "RSAKeyValue"), "ds:RSAKeyValue")
    modulus = text_of(rsa_el, ns.qname(ns.DS, "Modulus"), "ds:Modulus")
    exponent = text_of(rsa_el, ns.qname(ns.DS, "Exponent"), "ds:Exponent")
    try:
        key = rsa.RSAPublicNumbers(
            int.from_bytes(p.unb64(exponent, "Exponent"), "big"),
            int.from_bytes(p.unb64(modulus, "Modulus"), "big"),
        ).public_key()
    except (ValueError, InvalidSecurity):
        raise InvalidRequest("UseKey does not hold a valid RSA key") from None
    if not 1024 <= key.key_size <= 4096:
        raise InvalidRequest("UseKey RSA key size outside 1024-4096")
    return key


class BearerProvider(SamlProvider):
    """Accepts a request carrying one STS-signed bearer assertion for this service (over
    TLS, which the simulation does not model as a check: the engine charges its cost)."""

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup, node_id, shared)
        self.derived_keys = TokenOptions(setup.options).derived_keys

    def handle(self, data, sender, now):
        record_tls(self.ledger, data)
        envelope, addressing = self.read_request(data)
        security = fresh_over_tls(envelope, addressing, now, self.replay, self.ledger)
        self.validate(the_assertion(security), now)
        payload = p.get_payload(envelope)
        return app_response_over_tls(self.ledger, sender, addressing.message_id, payload, now)
