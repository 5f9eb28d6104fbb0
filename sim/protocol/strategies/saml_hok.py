"""Holder-of-key SAML tokens from an STS (seeds 001, 004): ``hok-symmetric`` (the proof key
as a BinarySecret or computed from both entropies, encrypted for the provider inside the
assertion; application messages protected with keys from it) and ``hok-public`` (an
ephemeral client key pair named in the assertion, an endorsing signature on every message,
over TLS). The STS and what the SAML strategies share are ``saml_tokens.py``."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa

import sim.crypto as crypto
from sim.errors import FailedCheck, InvalidRequest, InvalidSecurityToken
from sim.protocol import protection as p
from sim.protocol.api import PROVIDER, MessageKind
from sim.protocol.sending import app_response, record_tls, send
from sim.protocol.setup import (
    APP_ACTION,
    APP_RESPONSE_ACTION,
    PROVIDER_ADDRESS,
    STS_ADDRESS,
    Setup,
)
from sim.protocol.strategies.saml_tokens import (
    SamlProvider,
    TokenClient,
    TokenOptions,
    app_response_over_tls,
    the_assertion,
)
from sim.wire import ns, saml, sc, soap, wss
from sim.wire.ledger import Op
from sim.wire.ns import Confirmation, KeyType
from sim.wire.xmlutil import fresh_bytes


def require_assertion_reference(reference: wss.TokenReference, assertion) -> None:
    """The message's key is named by a Reference to ``assertion``, which the message
    carries (:func:`saml.assertion_reference`, BSP 1.1 R6610), and by nothing else (a SAML
    KeyIdentifier, another token, an X.509 certificate)."""
    expected = saml.assertion_reference(
        saml.assertion_id(assertion), saml.assertion_version(assertion)
    )
    if not saml.is_reference(reference, expected):
        raise InvalidSecurityToken(
            "the message key is not the proof key of its SAML assertion", check="token-policy"
        )


class HokProvider(SamlProvider):
    """A provider of holder-of-key assertions: the message proves possession of the key of
    its one assertion, validated once however many keys the message names it by."""

    confirmations = frozenset({Confirmation.HOLDER_OF_KEY})

    def proof_of(self, assertion, now, found: list[saml.ValidatedAssertion], key: str):
        """The proof key ``key`` (``symmetric_key``, ``public_key``) of ``assertion``,
        validated into ``found`` the first time."""
        if not found:
            found.append(self.validate(assertion, now))
        value = getattr(found[0], key)
        if value is None:
            raise InvalidSecurityToken(
                f"the assertion holds no {key.replace('_', ' ')}", check="token-policy"
            )
        return value


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
        data = self.seal_symmetric(
            envelope,
            now,
            self.proof_key,
            self.token_reference,
            tokens=[self._token_element()],
            derive=self.opts.derived_keys,
        )
        return send(PROVIDER, data, action=APP_ACTION, kind=MessageKind.APP_REQUEST)

    def on_app_reply(self, envelope, sender, now):
        # the response does not carry the assertion: it names it as one sent before
        expected = saml.external_assertion_reference(self.token_id, self.opts.version, STS_ADDRESS)

        def secret_for(reference):
            if not saml.is_reference(reference, expected):
                raise FailedCheck("response keys derive from another token", check="key")
            return self.proof_key

        self.open_symmetric(envelope, now, secret_for)
        return [self.done(p.get_payload(envelope))]


class HokSymmetricProvider(HokProvider):
    """The message's keys derive from the proof key of its one assertion (the STS encrypted
    it for this provider): no other token or key stands in for it."""

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup, node_id, shared)
        self.derived_keys = TokenOptions(setup.options).derived_keys

    def handle(self, data, sender, now):
        envelope, addressing = self.read_request(data)
        assertion = the_assertion(wss.find_security_header(envelope))
        proof: list[saml.ValidatedAssertion] = []

        def secret_for(reference):
            require_assertion_reference(reference, assertion)
            return self.proof_of(assertion, now, proof, "symmetric_key")

        self.open_symmetric(envelope, now, secret_for)
        if not proof:  # nothing the signature checked came from the assertion
            raise InvalidSecurityToken(
                "the message is not signed with the assertion's proof key", check="token-policy"
            )
        found = proof[0]
        response = soap.new_envelope()
        soap.add_addressing(response, action=APP_RESPONSE_ACTION, relates_to=addressing.message_id)
        p.put_payload(response, p.get_payload(envelope), "Response")
        out = self.seal_symmetric(
            response,
            now,
            found.symmetric_key,
            # a new element at each use; the response does not carry the assertion
            lambda: saml.external_assertion_reference(found.id, found.version, found.issuer),
            derive=self.derived_keys,
            direction=sc.Direction.REPLY,
        )
        return app_response(sender, out)


# --- holder-of-key, public key (seed 004) ------------------------------------------------


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
        return {"use_key": saml.key_value(self.ephemeral.public_key())}

    def send_app(self, now):
        envelope = soap.new_envelope()
        # the response comes back over TLS, unsigned
        self.address_request(
            envelope, APP_ACTION, APP_RESPONSE_ACTION, to=PROVIDER_ADDRESS, signed=False
        )
        p.put_payload(envelope, self.payload)
        data = self.seal_asymmetric(
            envelope,
            now,
            None,
            tokens=[self._token_element()],
            signing_key=self.ephemeral,
            key_info=self.token_reference(),
        )
        record_tls(self.ledger, data)
        return send(PROVIDER, data, action=APP_ACTION, kind=MessageKind.APP_REQUEST, tls=True)


class HokPublicProvider(HokProvider):
    """The message signature is made with the subject key of its one assertion: a
    certificate (a BinarySecurityToken any CA-certified party can send) never stands in."""

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
            return self.proof_of(assertion, now, proof, "public_key")

        checked = self.open_asymmetric(envelope, now, receiver=None, key_resolver=key_resolver)
        if not proof or checked.certificate is not None:
            raise InvalidSecurityToken(
                "the message is not signed with the assertion's subject key",
                check="token-policy",
            )
        payload = p.get_payload(envelope)
        return app_response_over_tls(self.ledger, sender, addressing.message_id, payload, now)
