"""SAML tokens from an STS (seeds 001, 003, 004): ``bearer`` (cached and renewed),
``bearer-per-message``, ``hok-symmetric`` (proof key as BinarySecret or computed from both
entropies, encrypted for the provider inside the assertion) and ``hok-public`` (an
ephemeral client key pair, an endorsing signature on every message).

The client talks to the STS over TLS, authenticating with a UsernameToken (WCF's
UserNameOverTransport); bearer and hok-public application messages also travel over TLS."""

from __future__ import annotations

import math
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

import sim.crypto as crypto
from sim.errors import (
    ExpiredData,
    FailedAuthentication,
    FailedCheck,
    InvalidRequest,
    InvalidSecurity,
    InvalidSecurityToken,
    SecurityFault,
)
from sim.protocol import protection as p
from sim.protocol.api import PROVIDER, STS, MessageKind, Send
from sim.protocol.base import (
    APP_ACTION,
    APP_RESPONSE_ACTION,
    PROVIDER_ADDRESS,
    STS_ADDRESS,
    Client,
    Server,
    Setup,
    app_response,
    body_element,
    option,
    record_tls,
)
from sim.protocol.states import Input, Machine, State, Transition
from sim.wire import ns, saml, sc, soap, trust, wss
from sim.wire.checks import ReplayCache
from sim.wire.ledger import Ledger, Op
from sim.wire.ns import Action, Confirmation, KeyType, RequestType, ValueType
from sim.wire.saml import SamlVersion, SubjectKey
from sim.wire.xmlutil import fresh_bytes, one_child, text_of

OPTIONS = {"token_lifetime_s", "renew_at", "saml_version", "proof", "derived_keys"}
_TOKEN_TYPES = {
    SamlVersion.V20: ns.TokenType.SAML20.value,
    SamlVersion.V11: ns.TokenType.SAML11.value,
}


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


def _assertion_reference(assertion_id: str, version: SamlVersion):
    value_type = (
        ValueType.SAML2_ID if version is SamlVersion.V20 else ValueType.SAML_ASSERTION_ID
    ).value
    return wss.str_key_identifier(assertion_id, value_type, token_type=_TOKEN_TYPES[version])


def _plain_message(now: float) -> tuple[soap.Envelope, etree._Element]:
    """An envelope whose security header holds only a Timestamp (TLS protects it); the
    caller adds its WS-Addressing headers."""
    envelope = soap.new_envelope()
    security, _ = p.security_header(envelope, now)
    return envelope, security


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
    replay.check_and_add(
        addressing.message_id,
        now,
        created=timestamp.created,
        expires=timestamp.expires,
        ledger=ledger,
    )
    return security


def one_response(envelope: soap.Envelope) -> trust.RequestSecurityTokenResponse:
    """The one RSTR of an issuing reply (alone or in a collection)."""
    responses = trust.read_rstr_collection(body_element(envelope, "RSTR collection"))
    if len(responses) != 1:
        raise InvalidRequest(f"expected one RSTR, found {len(responses)}")
    return responses[0]


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


def require_assertion_reference(reference: wss.TokenReference, assertion: etree._Element) -> None:
    """The message's key is named by the SAML KeyIdentifier of ``assertion``, and by nothing
    else (another token, a URI, an X.509 certificate)."""
    version = SamlVersion.V20 if assertion.tag == saml.ASSERTION2 else SamlVersion.V11
    expected = (
        ValueType.SAML2_ID if version is SamlVersion.V20 else ValueType.SAML_ASSERTION_ID
    ).value
    if (
        reference.uri is not None
        or reference.value_type != expected
        or reference.key_identifier != saml.assertion_id(assertion)
    ):
        raise InvalidSecurityToken(
            "the message key is not the proof key of its SAML assertion", check="token-policy"
        )


class TokenClient(Client):
    """Gets a SAML token from the STS (over TLS, UsernameToken), caches it until its renewal
    point, and sends application messages with it."""

    key_type = KeyType.BEARER
    per_message = False
    machine: ClassVar[Machine] = Machine(
        [
            Transition(
                state=State.IDLE,
                on=Input.REQUEST,
                handler="start",
                to=(State.ISSUE, State.APP),
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
        self.address_request(
            envelope,
            Action.RST_ISSUE.value,
            Action.RSTRC_ISSUE_FINAL.value,
            to=STS_ADDRESS,
            signed=False,
        )
        security, _ = p.security_header(envelope, now)
        security.append(wss.build_username_token(self.user, password=self.password))
        request = trust.RequestSecurityToken(
            request_type=RequestType.ISSUE,
            token_type=_TOKEN_TYPES[self.opts.version],
            applies_to=PROVIDER_ADDRESS,
            key_type=self.key_type,
            lifetime=(now, now + self.opts.lifetime),
            **self.rst_extras(),
        )
        envelope.add_body_element(trust.build_rst(request))
        data = envelope.to_bytes(self.ledger)
        record_tls(self.ledger, data)
        return [
            Send(
                to=STS,
                data=data,
                action=Action.RST_ISSUE.value,
                kind=MessageKind.RST_ISSUE,
                tls=True,
                token_service=True,
            )
        ]

    def on_issued(self, envelope, sender, now):
        """The STS's RSTR (over TLS): keep the token, then send the application request."""
        record_tls(self.ledger, envelope.to_bytes())
        wss.check_freshness(wss.read_timestamp(wss.find_security_header(envelope)), now)
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

    def send_app(self, now):
        envelope = soap.new_envelope()
        self.address_request(
            envelope, APP_ACTION, APP_RESPONSE_ACTION, to=PROVIDER_ADDRESS, signed=False
        )
        security, _ = p.security_header(envelope, now)
        security.append(self._token_element())
        p.put_payload(envelope, self.payload)
        data = envelope.to_bytes(self.ledger)
        record_tls(self.ledger, data)
        if self.per_message:
            self.token = None
        return [
            Send(to=PROVIDER, data=data, action=APP_ACTION, kind=MessageKind.APP_REQUEST, tls=True)
        ]

    def on_app_reply(self, envelope, sender, now):
        """A reply over TLS (its RelatesTo and Action already checked by ``check_reply``)."""
        record_tls(self.ledger, envelope.to_bytes())
        wss.check_freshness(wss.read_timestamp(wss.find_security_header(envelope)), now)
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


class TokenSts(Server):
    """The STS: authenticates the UsernameToken and issues a signed SAML assertion whose
    confirmation follows the requested KeyType."""

    role = STS
    request_actions = frozenset({Action.RST_ISSUE.value})

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup)
        self.opts = TokenOptions(setup.options)
        self.identity = setup.identity("sts")
        self.provider = setup.identity("provider")
        self.replay = setup.replay_cache(self.role, node_id)

    def handle(self, data, sender, now):
        record_tls(self.ledger, data)
        envelope, addressing = self.read_request(data)
        security = fresh_over_tls(envelope, addressing, now, self.replay, self.ledger)
        token_el = one_child(security, wss.USERNAME_TOKEN, "wsse:UsernameToken", required=False)
        if token_el is None:
            raise FailedAuthentication("the STS needs a UsernameToken", check="authentication")
        token = wss.read_username_token(token_el)
        wss.authenticate_username_token(
            token, self.setup.passwords, now=now, replay=self.replay, ledger=self.ledger
        )
        request = trust.read_rst(body_element(envelope, "wst:RequestSecurityToken"))
        if request.applies_to != PROVIDER_ADDRESS:
            raise InvalidRequest("no token for that AppliesTo")
        lifetime = self.opts.lifetime
        subject_key, extras = self._proof(request)
        confirmation = (
            Confirmation.BEARER
            if request.key_type in (None, KeyType.BEARER)
            else Confirmation.HOLDER_OF_KEY
        )
        assertion = saml.build_assertion(
            issuer=STS_ADDRESS,
            subject=token.username,
            audience=PROVIDER_ADDRESS,
            now=now,
            lifetime=lifetime,
            confirmation=confirmation,
            version=self.opts.version,
            subject_key=subject_key,
            ledger=self.ledger,
        )
        saml.sign_assertion(assertion, self.identity, ledger=self.ledger)
        assertion_id = saml.assertion_id(assertion)
        if subject_key is not None and subject_key.symmetric_key is not None:
            self.setup.log_key("proof-key", assertion_id, subject_key.symmetric_key)
        response = soap.new_envelope()
        soap.add_addressing(
            response, action=Action.RSTRC_ISSUE_FINAL.value, relates_to=addressing.message_id
        )
        p.security_header(response, now)
        response.add_body_element(
            trust.build_rstr_collection(
                [
                    trust.build_rstr(
                        token_type=_TOKEN_TYPES[self.opts.version],
                        request_type=RequestType.ISSUE,
                        key_type=request.key_type or KeyType.BEARER,
                        requested_token=assertion,
                        lifetime=(now, now + lifetime),
                        applies_to=PROVIDER_ADDRESS,
                        attached_reference=_assertion_reference(assertion_id, self.opts.version),
                        unattached_reference=_assertion_reference(assertion_id, self.opts.version),
                        **extras,
                    )
                ]
            )
        )
        out = response.to_bytes(self.ledger)
        record_tls(self.ledger, out)
        return [
            Send(
                to=sender,
                data=out,
                action=Action.RSTRC_ISSUE_FINAL.value,
                kind=MessageKind.RSTR_ISSUE,
                reply=True,
                tls=True,
                token_service=True,
            )
        ]

    def _proof(self, request) -> tuple[SubjectKey | None, dict]:
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


class BearerProvider(Server):
    """Accepts a request carrying one STS-signed bearer assertion for this service (over
    TLS, which the simulation does not model as a check: the engine charges its cost)."""

    role = PROVIDER
    request_actions = frozenset({APP_ACTION})
    confirmations = frozenset({Confirmation.BEARER})

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup)
        self.identity = setup.identity("provider")
        self.sts_key = setup.identity("sts").public_key
        self.replay = setup.replay_cache(self.role, node_id)
        self.derived_keys = TokenOptions(setup.options).derived_keys

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

    def handle(self, data, sender, now):
        record_tls(self.ledger, data)
        envelope, addressing = self.read_request(data)
        security = fresh_over_tls(envelope, addressing, now, self.replay, self.ledger)
        self.validate(the_assertion(security), now)
        response = soap.new_envelope()
        soap.add_addressing(response, action=APP_RESPONSE_ACTION, relates_to=addressing.message_id)
        p.security_header(response, now)
        p.put_payload(response, p.get_payload(envelope), "Response")
        out = response.to_bytes(self.ledger)
        record_tls(self.ledger, out)
        return app_response(sender, out, tls=True)


# --- holder-of-key, symmetric proof key ---------------------------------------------------


class HokSymmetricClient(TokenClient):
    key_type = KeyType.SYMMETRIC

    def rst_extras(self) -> dict:
        if self.opts.proof == "computed-key":
            self.entropy = fresh_bytes(32)
            return {
                "entropy": self.entropy,
                "key_size": 256,
                "computed_key_algorithm": ns.ComputedKeyAlg.PSHA1.value,
            }
        return {"key_size": 256}

    def accept_proof(self, response) -> None:
        if self.opts.proof == "computed-key":
            if response.entropy is None or response.proof_computed_key is None:
                raise InvalidRequest("the STS did not return entropy for the computed key")
            self.ledger.record(Op.P_SHA1, 32)
            self.proof_key = crypto.computed_key(self.entropy, response.entropy, 256)
        elif response.proof_secret is None or len(response.proof_secret) != 32:
            raise InvalidRequest("the STS did not return a 256-bit BinarySecret proof key")
        else:
            self.proof_key = response.proof_secret

    def send_app(self, now):
        envelope = soap.new_envelope()
        self.address_request(envelope, APP_ACTION, APP_RESPONSE_ACTION, to=PROVIDER_ADDRESS)
        p.put_payload(envelope, self.payload)
        assertion = self._token_element()
        token_id, version = self.token_id, self.opts.version
        data = p.protect_symmetric(
            envelope,
            secret=self.proof_key,
            source_reference=lambda: _assertion_reference(token_id, version),
            now=now,
            ledger=self.ledger,
            suite_=self.setup.suite,
            tokens=[assertion],
            derive=self.opts.derived_keys,
            keylog=self.setup.log_key,
        )
        return [Send(to=PROVIDER, data=data, action=APP_ACTION, kind=MessageKind.APP_REQUEST)]

    def on_app_reply(self, envelope, sender, now):
        def secret_for(reference):
            if reference.key_identifier != self.token_id:
                raise FailedCheck("response keys derive from another token", check="key")
            return self.proof_key

        checked = p.unprotect_symmetric(
            envelope,
            secret_for=secret_for,
            now=now,
            ledger=self.ledger,
            replay=self.replay,
            suite_=self.setup.suite,
            direction=sc.Direction.REPLY,
        )
        self.bind_reply(envelope, checked.verified)
        return [self.done(p.get_payload(envelope))]


class HokSymmetricProvider(BearerProvider):
    """The message's keys derive from the proof key of its one assertion (the STS encrypted
    it for this provider): no other token or key stands in for it."""

    confirmations = frozenset({Confirmation.HOLDER_OF_KEY})

    def handle(self, data, sender, now):
        envelope, addressing = self.read_request(data)
        assertion = the_assertion(wss.find_security_header(envelope))
        proof: list[saml.ValidatedAssertion] = []

        def secret_for(reference):
            require_assertion_reference(reference, assertion)
            if not proof:  # validated once, however many keys derive from it
                proof.append(self.validate(assertion, now))
            if proof[0].symmetric_key is None:
                raise InvalidSecurityToken(
                    "the assertion holds no symmetric proof key", check="token-policy"
                )
            return proof[0].symmetric_key

        self.open_symmetric(envelope, now, secret_for)
        if not proof:  # nothing the signature checked came from the assertion
            raise InvalidSecurityToken(
                "the message is not signed with the assertion's proof key", check="token-policy"
            )
        key_id, key = proof[0].id, proof[0].symmetric_key
        version = proof[0].version
        response = soap.new_envelope()
        soap.add_addressing(response, action=APP_RESPONSE_ACTION, relates_to=addressing.message_id)
        p.put_payload(response, p.get_payload(envelope), "Response")
        out = p.protect_symmetric(
            response,
            secret=key,
            source_reference=lambda: _assertion_reference(key_id, version),
            now=now,
            ledger=self.ledger,
            suite_=self.setup.suite,
            derive=self.derived_keys,
            keylog=self.setup.log_key,
            direction=sc.Direction.REPLY,
        )
        return app_response(sender, out)


# --- holder-of-key, public key (seed 004) ------------------------------------------------


def _key_value(public_key: rsa.RSAPublicKey) -> etree._Element:
    numbers = public_key.public_numbers()
    value = etree.Element(ns.qname(ns.DS, "KeyValue"), nsmap={"ds": ns.DS})
    rsa_el = etree.SubElement(value, ns.qname(ns.DS, "RSAKeyValue"))
    etree.SubElement(rsa_el, ns.qname(ns.DS, "Modulus")).text = p.b64(
        numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    )
    etree.SubElement(rsa_el, ns.qname(ns.DS, "Exponent")).text = p.b64(
        numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    )
    return value


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


class HokPublicClient(TokenClient):
    key_type = KeyType.PUBLIC

    def __init__(self, setup: Setup, client_id: str) -> None:
        super().__init__(setup, client_id)
        self.ephemeral: rsa.RSAPrivateKey | None = None
        self.identity_name, self.identity = setup.client_identity(client_id)

    def rst_extras(self) -> dict:
        if self.ephemeral is None:
            # A fresh, non-persistent key pair per client (seed 004, step 1).
            self.ledger.record(Op.RSA_KEYGEN, self.setup.rsa_bits)
            self.ephemeral = rsa.generate_private_key(
                public_exponent=65537, key_size=self.setup.rsa_bits
            )
        return {"use_key": _key_value(self.ephemeral.public_key())}

    def send_app(self, now):
        envelope = soap.new_envelope()
        # the response comes back over TLS, unsigned
        self.address_request(
            envelope, APP_ACTION, APP_RESPONSE_ACTION, to=PROVIDER_ADDRESS, signed=False
        )
        p.put_payload(envelope, self.payload)
        data = p.protect_asymmetric(
            envelope,
            sender=self.identity,
            recipient=None,
            now=now,
            ledger=self.ledger,
            suite_=self.setup.suite,
            tokens=[self._token_element()],
            signing_key=self.ephemeral,
            key_info=_assertion_reference(self.token_id, self.opts.version),
            keylog=self.setup.log_key,
        )
        record_tls(self.ledger, data)
        return [
            Send(to=PROVIDER, data=data, action=APP_ACTION, kind=MessageKind.APP_REQUEST, tls=True)
        ]


class HokPublicProvider(BearerProvider):
    """The message signature is made with the subject key of its one assertion: a
    certificate (a BinarySecurityToken any CA-certified party can send) never stands in."""

    confirmations = frozenset({Confirmation.HOLDER_OF_KEY})

    def handle(self, data, sender, now):
        record_tls(self.ledger, data)
        envelope, addressing = self.read_request(data)
        security = wss.find_security_header(envelope)
        if any(el.tag == wss.BINARY_SECURITY_TOKEN for el in security):
            raise InvalidSecurityToken(
                "a holder-of-key message is signed with its assertion's key, not a certificate",
                check="token-policy",
            )
        assertion = the_assertion(security)
        proof: list[saml.ValidatedAssertion] = []

        def key_resolver(reference):
            require_assertion_reference(reference, assertion)
            proof.append(self.validate(assertion, now))
            if proof[0].public_key is None:
                raise InvalidSecurityToken(
                    "the assertion holds no public key", check="token-policy"
                )
            return proof[0].public_key

        checked = self.open_asymmetric(envelope, now, receiver=None, key_resolver=key_resolver)
        if not proof or checked.certificate is not None:
            raise InvalidSecurityToken(
                "the message is not signed with the assertion's subject key",
                check="token-policy",
            )
        response = soap.new_envelope()
        soap.add_addressing(response, action=APP_RESPONSE_ACTION, relates_to=addressing.message_id)
        p.security_header(response, now)
        p.put_payload(response, p.get_payload(envelope), "Response")
        out = response.to_bytes(self.ledger)
        record_tls(self.ledger, out)
        return app_response(sender, out, tls=True)
