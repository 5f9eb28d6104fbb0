"""SAML tokens from an STS (seeds 001, 003, 004): ``bearer`` (cached and renewed),
``bearer-per-message``, ``hok-symmetric`` (proof key as BinarySecret or computed from both
entropies, encrypted for the provider inside the assertion) and ``hok-public`` (an
ephemeral client key pair, an endorsing signature on every message).

The client talks to the STS over TLS, authenticating with a UsernameToken (WCF's
UserNameOverTransport); bearer and hok-public application messages also travel over TLS."""

from __future__ import annotations

import math

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
from sim.protocol.api import PROVIDER, STS, Send
from sim.protocol.base import (
    APP_ACTION,
    APP_RESPONSE_ACTION,
    PROVIDER_ADDRESS,
    STS_ADDRESS,
    Client,
    Server,
    Setup,
    option,
    record_tls,
)
from sim.wire import ns, saml, soap, trust, wss
from sim.wire.checks import ReplayCache
from sim.wire.ledger import Op
from sim.wire.ns import Action, Confirmation, KeyType, RequestType, ValueType
from sim.wire.saml import SamlVersion, SubjectKey
from sim.wire.xmlutil import fresh_bytes

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


def _plain_message(action: str, now: float, *, relates_to: str | None = None, to=None):
    """An envelope whose security header holds only a Timestamp (TLS protects it)."""
    envelope = soap.new_envelope()
    soap.add_addressing(envelope, action=action, to=to, relates_to=relates_to)
    security, _ = p.security_header(envelope, now)
    return envelope, security


def _fresh(envelope, now, replay: ReplayCache) -> tuple[soap.Addressing, etree._Element]:
    addressing = soap.read_addressing(envelope)
    security = wss.find_security_header(envelope)
    wss.check_freshness(wss.read_timestamp(security), now)
    replay.check_and_add(addressing.message_id or "", now)
    return addressing, security


class TokenClient(Client):
    """Gets a SAML token from the STS (over TLS, UsernameToken), caches it until its renewal
    point, and sends application messages with it."""

    key_type = KeyType.BEARER
    per_message = False

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
        envelope, security = _plain_message(Action.RST_ISSUE.value, now, to=STS_ADDRESS)
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
        self.awaiting = "issue"
        return [Send(STS, data, Action.RST_ISSUE.value, "rst-issue", tls=True, token_service=True)]

    def on_reply(self, envelope, sender, now):
        if self.awaiting == "issue":
            record_tls(self.ledger, envelope.to_bytes())
            wss.check_freshness(wss.read_timestamp(wss.find_security_header(envelope)), now)
            response = trust.read_rstr_collection(envelope.body[0])[0]
            if response.requested_token is None or response.lifetime is None:
                raise InvalidRequest("RSTR without a token or its lifetime")
            self.accept_proof(response)
            token = response.requested_token
            self.token = etree.tostring(token)
            self.token_id = saml.assertion_id(token)
            _, expires = response.lifetime
            self.renew_due = now + (expires - now) * self.opts.renew_at
            return self.send_app(now)
        return self.on_app_reply(envelope, now)

    def accept_proof(self, response) -> None:
        """Take the proof of possession from the RSTR (none for bearer tokens)."""

    def _token_element(self):
        return etree.fromstring(self.token)

    def send_app(self, now):
        envelope, security = _plain_message(APP_ACTION, now, to=PROVIDER_ADDRESS)
        security.append(self._token_element())
        p.put_payload(envelope, self.payload)
        data = envelope.to_bytes(self.ledger)
        record_tls(self.ledger, data)
        if self.per_message:
            self.token = None
        self.awaiting = "app"
        return [Send(PROVIDER, data, APP_ACTION, "app-request", tls=True)]

    def on_app_reply(self, envelope, now):
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

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup)
        self.opts = TokenOptions(setup.options)
        self.identity = setup.identity("sts")
        self.provider = setup.identity("provider")
        self.replay = ReplayCache()

    def handle(self, data, sender, now):
        record_tls(self.ledger, data)
        envelope = soap.read_envelope(data, ledger=self.ledger)
        addressing, security = _fresh(envelope, now, self.replay)
        if addressing.action != Action.RST_ISSUE.value:
            raise InvalidRequest(f"unsupported action {addressing.action}")
        token_el = security.find(wss.USERNAME_TOKEN)
        if token_el is None:
            raise FailedAuthentication("the STS needs a UsernameToken", check="authentication")
        token = wss.read_username_token(token_el)
        wss.authenticate_username_token(token, self.setup.passwords)
        request = trust.read_rst(envelope.body[0])
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
        response, _ = _plain_message(
            Action.RSTRC_ISSUE_FINAL.value, now, relates_to=addressing.message_id
        )
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
                sender,
                out,
                Action.RSTRC_ISSUE_FINAL.value,
                "rstr-issue",
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
    role = PROVIDER
    confirmations = frozenset({Confirmation.BEARER})

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup)
        self.identity = setup.identity("provider")
        self.sts_key = setup.identity("sts").public_key
        self.replay = ReplayCache()

    def validate(self, assertion, now):
        return saml.validate_assertion(
            assertion,
            sts_key=self.sts_key,
            audience=PROVIDER_ADDRESS,
            now=now,
            expected=self.confirmations,
            recipient=self.identity,
            ledger=self.ledger,
        )

    def handle(self, data, sender, now):
        record_tls(self.ledger, data)
        envelope = soap.read_envelope(data, ledger=self.ledger)
        addressing, security = _fresh(envelope, now, self.replay)
        assertions = [el for el in security if el.tag in (saml.ASSERTION1, saml.ASSERTION2)]
        if len(assertions) != 1:
            raise InvalidSecurityToken("expected one SAML assertion in the security header")
        self.validate(assertions[0], now)
        response, _ = _plain_message(APP_RESPONSE_ACTION, now, relates_to=addressing.message_id)
        p.put_payload(response, p.get_payload(envelope), "Response")
        out = response.to_bytes(self.ledger)
        record_tls(self.ledger, out)
        return [Send(sender, out, APP_RESPONSE_ACTION, "app-response", reply=True, tls=True)]


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
        soap.add_addressing(envelope, action=APP_ACTION, to=PROVIDER_ADDRESS)
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
        self.awaiting = "app"
        return [Send(PROVIDER, data, APP_ACTION, "app-request")]

    def on_app_reply(self, envelope, now):
        def secret_for(reference):
            if reference.key_identifier != self.token_id:
                raise FailedCheck("response keys derive from another token", check="key")
            return self.proof_key

        p.unprotect_symmetric(
            envelope,
            secret_for=secret_for,
            now=now,
            ledger=self.ledger,
            replay=self.replay,
            suite_=self.setup.suite,
        )
        return [self.done(p.get_payload(envelope))]


class HokSymmetricProvider(BearerProvider):
    confirmations = frozenset({Confirmation.HOLDER_OF_KEY})

    def handle(self, data, sender, now):
        envelope = soap.read_envelope(data, ledger=self.ledger)
        security = wss.find_security_header(envelope)
        keys: dict[str, bytes] = {}

        def secret_for(reference):
            key_id = reference.key_identifier
            if key_id not in keys:
                assertion = next(
                    (
                        a
                        for a in security
                        if a.tag in (saml.ASSERTION1, saml.ASSERTION2)
                        and a.get("ID", a.get("AssertionID")) == key_id
                    ),
                    None,
                )
                if assertion is None:
                    raise InvalidSecurityToken("the key names no assertion of this message")
                checked = self.validate(assertion, now)
                if checked.symmetric_key is None:
                    raise InvalidSecurityToken("the assertion holds no symmetric proof key")
                keys[key_id] = checked.symmetric_key
            return keys[key_id]

        checked = p.unprotect_symmetric(
            envelope,
            secret_for=secret_for,
            now=now,
            ledger=self.ledger,
            replay=self.replay,
            suite_=self.setup.suite,
        )
        ((key_id, key),) = keys.items()
        version = SamlVersion.V20 if security.find(saml.ASSERTION2) is not None else SamlVersion.V11
        response = soap.new_envelope()
        soap.add_addressing(
            response, action=APP_RESPONSE_ACTION, relates_to=checked.addressing.message_id
        )
        p.put_payload(response, p.get_payload(envelope), "Response")
        out = p.protect_symmetric(
            response,
            secret=key,
            source_reference=lambda: _assertion_reference(key_id, version),
            now=now,
            ledger=self.ledger,
            suite_=self.setup.suite,
            derive=TokenOptions(self.setup.options).derived_keys,
            keylog=self.setup.log_key,
        )
        return [Send(sender, out, APP_RESPONSE_ACTION, "app-response", reply=True)]


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
    modulus = value.findtext(f"{{{ns.DS}}}RSAKeyValue/{{{ns.DS}}}Modulus")
    exponent = value.findtext(f"{{{ns.DS}}}RSAKeyValue/{{{ns.DS}}}Exponent")
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
        soap.add_addressing(envelope, action=APP_ACTION, to=PROVIDER_ADDRESS)
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
        self.awaiting = "app"
        return [Send(PROVIDER, data, APP_ACTION, "app-request", tls=True)]


class HokPublicProvider(BearerProvider):
    confirmations = frozenset({Confirmation.HOLDER_OF_KEY})

    def handle(self, data, sender, now):
        record_tls(self.ledger, data)
        envelope = soap.read_envelope(data, ledger=self.ledger)
        security = wss.find_security_header(envelope)

        def key_resolver(reference):
            assertion = next(
                (
                    a
                    for a in security
                    if a.tag in (saml.ASSERTION1, saml.ASSERTION2)
                    and a.get("ID", a.get("AssertionID")) == reference.key_identifier
                ),
                None,
            )
            if assertion is None:
                raise InvalidSecurityToken("the signing key names no assertion of this message")
            checked = self.validate(assertion, now)
            if checked.public_key is None:
                raise InvalidSecurityToken("the assertion holds no public key")
            return checked.public_key

        checked = p.unprotect_asymmetric(
            envelope,
            receiver=None,
            trust=self.setup.keystore,
            now=now,
            ledger=self.ledger,
            replay=self.replay,
            suite_=self.setup.suite,
            key_resolver=key_resolver,
        )
        response, _ = _plain_message(
            APP_RESPONSE_ACTION, now, relates_to=checked.addressing.message_id
        )
        p.put_payload(response, p.get_payload(envelope), "Response")
        out = response.to_bytes(self.ledger)
        record_tls(self.ledger, out)
        return [Send(sender, out, APP_RESPONSE_ACTION, "app-response", reply=True, tls=True)]
