"""``sct-tlsnego`` (seed 000): the security context negotiated by a real TLS handshake
tunneled in RST/RSTR BinaryExchange blobs (Python's ``ssl`` over memory BIOs). RST (#1,
ClientHello), RSTR (#2, server flight), RSTR (#3, client key exchange and Finished), then an
RSTR collection (#4) whose first RSTR carries the SCT and the TLS-protected key and whose
second carries the Authenticator (CombinedHash). Application messages then use derived keys
as in ``sct``, with the UsernameToken sent inside the protected (encrypted) traffic.

Option ``tlsnego = false`` is the seed's preset-certificate variant: the client already
knows the provider's certificate and establishes the context with an RST protected by an
ephemeral key wrapped for that certificate (WCF's UserNameForCertificate bootstrap)."""

from __future__ import annotations

import hmac
import ssl
from dataclasses import dataclass
from typing import ClassVar

from lxml import etree

from sim.errors import (
    FailedAuthentication,
    FailedCheck,
    InvalidRequest,
    UnknownDerivationSource,
)
from sim.protocol import protection as p
from sim.protocol.api import PROVIDER, MessageKind
from sim.protocol.binding import body_element, one_response
from sim.protocol.sending import send
from sim.protocol.setup import PROVIDER_ADDRESS, Setup, option
from sim.protocol.states import Input, Machine, State, Transition, starts
from sim.protocol.strategies.negotiation import (
    Pending,
    authenticator,
    check_negotiation_request,
    detached_copy,
    negotiation_rst,
    token_and_authenticator,
)
from sim.protocol.strategies.sct import (
    CONTEXT_TRANSITIONS,
    START_NOTE,
    ContextClient,
    ContextProvider,
    SctOptions,
    issued,
    issued_rstr,
)
from sim.protocol.strategies.sct import OPTIONS as SCT_OPTIONS
from sim.protocol.strategies.tlsnego_tunnel import Tunnel, tls_contexts
from sim.wire import ns, soap, trust, wss, xenc
from sim.wire.ledger import Op
from sim.wire.ns import Action, RequestType, ValueType
from sim.wire.xmlutil import fragment, fresh_bytes, new_id

OPTIONS = SCT_OPTIONS | {"tlsnego", "max_pending_negotiations", "negotiation_timeout_s"}
TLSNEGO = ns.TLSNEGO_VALUE_TYPE


class TlsNegoOptions(SctOptions):
    """A context's options, and how it is negotiated."""

    def __init__(self, options) -> None:
        super().__init__(options)
        self.tlsnego = option(options, "tlsnego", True, bool)
        #: pending negotiations a provider node keeps at most, and for how long
        self.max_negotiations = option(
            options, "max_pending_negotiations", 1000, int, low=1, high=1_000_000
        )
        self.negotiation_timeout = option(
            options, "negotiation_timeout_s", 60.0, float, low=0.001, high=86_400.0
        )


class TlsNegoClient(ContextClient):
    machine: ClassVar[Machine] = Machine(
        [
            starts(
                State.TLS_SERVER_FLIGHT,
                State.ISSUE,
                State.RENEW,
                State.APP,
                note=START_NOTE + " (tls-server-flight: TLSNego; issue: option tlsnego = false)",
            ),
            Transition(
                state=State.TLS_SERVER_FLIGHT,
                on=Input.REPLY,
                handler="on_server_flight",
                to=(State.TLS_FINAL,),
            ),
            issued(State.TLS_FINAL, "on_negotiated"),
            issued(State.ISSUE, "on_preset_issued"),
            *CONTEXT_TRANSITIONS,
        ]
    )

    options_class = TlsNegoOptions

    def __init__(self, setup: Setup, client_id: str) -> None:
        super().__init__(setup, client_id)
        self.user, self.password = setup.username(client_id)
        self.provider = setup.identity("provider")
        self.tunnel: Tunnel | None = None
        self.negotiation: list[etree._Element] = []
        self.context_attr: str | None = None
        self.ephemeral: bytes | None = None
        self.ek_sha1: bytes | None = None
        self.entropy: bytes | None = None

    def app_headers(self, now):
        return [wss.build_username_token(self.user, password=self.password)]

    def establish(self, now):
        if not self.opts.tlsnego:
            return self._establish_preset(now)
        self.tunnel = Tunnel(tls_contexts(self.setup)[0], server_side=False)
        hello, _ = self.tunnel.step()
        self.context_attr = new_id("ctx-")
        rst = negotiation_rst((hello, TLSNEGO), self.context_attr)
        self.negotiation = [detached_copy(rst)]
        return self._leg(rst, Action.SCT_ISSUE, Action.RSTR_ISSUE, MessageKind.RST_TLSNEGO)

    def _leg(self, body, action: Action, reply: Action, kind: MessageKind):
        """A negotiation leg to the provider, plain SOAP: the tunneled handshake and the
        final Authenticator protect the negotiation (its reply comes unsigned)."""
        envelope = soap.new_envelope()
        self.address_request(envelope, action.value, reply.value, to=PROVIDER_ADDRESS, signed=False)
        envelope.add_body_element(body)
        return send(PROVIDER, envelope.to_bytes(self.ledger), action=action, kind=kind)

    def on_server_flight(self, envelope, sender, now):
        """Leg #2, the server's TLS flight: answer with ours (leg #3)."""
        response = one_response(envelope)
        blob = self._exchange(response)
        self.negotiation.append(detached_copy(response.element))
        flight, _ = self.tunnel.step(blob)
        rstr = trust.build_rstr(binary_exchange=(flight, TLSNEGO), context=self.context_attr)
        self.negotiation.append(detached_copy(rstr))
        return self._leg(
            rstr, Action.RSTR_ISSUE, Action.RSTRC_ISSUE_FINAL, MessageKind.RSTR_TLSNEGO
        )

    def on_negotiated(self, envelope, sender, now):
        """Leg #4: the SCT, the TLS-protected key and the Authenticator."""
        responses = token_and_authenticator(envelope, "TLSNego")
        _, complete = self.tunnel.step(self._exchange(responses[0]))
        if not complete:
            raise FailedCheck("TLS handshake did not complete", check="tls")
        self.ledger.record(Op.TLS_HANDSHAKE, self.setup.rsa_bits)
        try:
            secret = self.tunnel.tls.read(64)
        except ssl.SSLError:
            raise FailedCheck("the TLS-protected key does not decrypt", check="tls") from None
        if responses[1].context != self.context_attr:
            raise InvalidRequest("negotiation message for another context")
        if len(secret) != 32 or responses[1].authenticator is None:
            raise InvalidRequest("the negotiation gave no 256-bit key or no authenticator")
        expected = authenticator(secret, self.negotiation, self.ledger)
        if not hmac.compare_digest(expected, responses[1].authenticator):
            raise FailedCheck("the TLSNego authenticator does not match", check="authenticator")
        self.tunnel = None
        return self.established_by(responses[0], secret, now)

    def _exchange(self, response) -> bytes:
        if response.binary_exchange is None or response.binary_exchange[1] != TLSNEGO:
            raise InvalidRequest("expected a TLSNego BinaryExchange")
        if response.context != self.context_attr:
            raise InvalidRequest("negotiation message for another context")
        return response.binary_exchange[0]

    def _establish_preset(self, now):
        self.ephemeral, self.entropy = fresh_bytes(32), fresh_bytes(32)
        ek = fragment(
            xenc.encrypted_key_text(
                self.ephemeral,
                self.provider.public_key,
                key_info=wss.str_key_identifier_text(
                    self.provider.thumbprint_sha1, ValueType.THUMBPRINT_SHA1.value
                ),
                ledger=self.ledger,
            )[0]
        )
        self.ek_sha1 = wss.encrypted_key_sha1(
            p.unb64(ek.findtext(f".//{{{ns.XENC}}}CipherValue"), "CipherValue")
        )
        self.setup.log_key("session-key", ek.get("Id"), self.ephemeral)
        envelope = self.issue_request(self.entropy)
        ek_id = ek.get("Id")
        reference = wss.str_reference_text(f"#{ek_id}", ValueType.ENCRYPTED_KEY.value)
        data = self.seal_symmetric(
            envelope,
            now,
            self.ephemeral,
            lambda: reference,
            tokens=[ek],
            encrypt_tokens=self.app_headers(now),
        )
        return send(PROVIDER, data, action=Action.SCT_ISSUE, kind=MessageKind.RST_SCT)

    def on_preset_issued(self, envelope, sender, now):
        def secret_for(reference):
            if reference.key_identifier != self.ek_sha1:
                raise UnknownDerivationSource("reply keys derive from another key")
            return self.ephemeral

        self.open_symmetric(envelope, now, secret_for)
        response = one_response(envelope)
        if response.requested_token is None or response.entropy is None:
            raise InvalidRequest("RSTR lacks the token or the issuer entropy")
        return self.established_computed(response, self.entropy, now)


@dataclass(slots=True, kw_only=True)
class _Negotiation:
    """A TLSNego handshake a provider has answered leg #1 of and waits to finish."""

    tunnel: Tunnel
    #: the negotiation's RST and RSTRs so far, for the Authenticator
    elements: list[etree._Element]
    #: the handshake flight this provider sent (leg #2)
    flight: bytes


class TlsNegoProvider(ContextProvider):
    request_actions = ContextProvider.request_actions | {Action.RSTR_ISSUE.value}

    options_class = TlsNegoOptions

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup, node_id, shared)
        self.negotiations = Pending(self.opts.max_negotiations, self.opts.negotiation_timeout)

    def check_app_headers(self, checked, now):
        tokens = [t for t in checked.security if t.tag == wss.USERNAME_TOKEN]
        if len(tokens) != 1:
            raise FailedAuthentication("a UsernameToken must travel in the protected request")
        token = tokens[0]
        if token.getparent() is not checked.security:
            raise FailedAuthentication("the UsernameToken is not in the security header")
        from sim.wire.checks import require_signed

        require_signed(checked.verified, token, "the UsernameToken")
        wss.authenticate_username_token(wss.read_username_token(token), self.setup.passwords)

    def issue(self, envelope, addressing, sender, now):
        if addressing.action == Action.SCT_ISSUE.value:
            if envelope.body.find(xenc.ENCRYPTED_DATA) is not None:
                return self._issue_preset(envelope, addressing, sender, now)
            request = trust.read_rst(body_element(envelope, "wst:RequestSecurityToken"))
            return self._server_flight(request, addressing, sender, now)
        return self._finish(envelope, addressing, sender, now)

    def _server_flight(self, request, addressing, sender, now):
        check_negotiation_request(request, TLSNEGO, "TLSNego")
        key = (sender, request.context)
        # Admitted before the handshake step: a refused newcomer costs no TLS work.
        self.negotiations.admit(key, now)
        tunnel = Tunnel(tls_contexts(self.setup)[1], server_side=True)
        flight, _ = tunnel.step(request.binary_exchange[0])
        rstr = trust.build_rstr(binary_exchange=(flight, TLSNEGO), context=request.context)
        elements = [detached_copy(request.element), detached_copy(rstr)]
        self.negotiations.add(
            key, _Negotiation(tunnel=tunnel, elements=elements, flight=flight), now
        )
        return self._negotiation_reply(
            addressing, sender, rstr, Action.RSTR_ISSUE, MessageKind.RSTR_TLSNEGO
        )

    def _finish(self, envelope, addressing, sender, now):
        response = one_response(envelope)
        key = (sender, response.context or "")
        negotiation = self.negotiations.peek(key, now)
        # Checked before the negotiation is touched: a leg that is not the client's next
        # TLS flight (our own flight reflected, no TLSNego blob) leaves it as it was.
        exchange = response.binary_exchange
        if exchange is None or exchange[1] != TLSNEGO or exchange[0] == negotiation.flight:
            raise InvalidRequest(
                "expected the client's TLSNego BinaryExchange", check="negotiation"
            )
        self.negotiations.take(key)
        tunnel, elements = negotiation.tunnel, negotiation.elements
        flight, complete = tunnel.step(exchange[0])
        if not complete:
            raise FailedCheck("TLS handshake did not complete", check="tls")
        self.ledger.record(Op.TLS_HANDSHAKE, self.setup.rsa_bits)
        elements.append(detached_copy(response.element))
        secret = fresh_bytes(32)
        tunnel.tls.write(secret)
        flight += tunnel.outgoing.read()
        token, context = self.new_context(secret, now)
        collection = trust.build_rstr_collection(
            [
                issued_rstr(
                    token, context, now, binary_exchange=(flight, TLSNEGO), context=response.context
                ),
                trust.build_rstr(
                    authenticator=authenticator(secret, elements, self.ledger),
                    context=response.context,
                ),
            ]
        )
        return self._negotiation_reply(
            addressing, sender, collection, Action.RSTRC_ISSUE_FINAL, MessageKind.RSTRC_TLSNEGO
        )

    def _negotiation_reply(
        self, request: soap.Addressing, sender, body, action: Action, kind: MessageKind
    ):
        """A negotiation leg: plain SOAP (the tunneled TLS handshake is its protection)."""
        reply = soap.new_envelope()
        soap.add_addressing(reply, action=action.value, relates_to=request.message_id)
        reply.add_body_element(body)
        return send(sender, reply.to_bytes(self.ledger), action=action, kind=kind, reply=True)

    def _issue_preset(self, envelope, addressing, sender, now):
        security = wss.find_security_header(envelope)
        found: dict[str, tuple[str, bytes, bytes]] = {}

        def secret_for(reference):
            if "ek" in found:  # one RSA decryption a message: every key from one EncryptedKey
                if found["ek"][0] != reference.uri:
                    raise UnknownDerivationSource("keys must derive from one EncryptedKey")
                return found["ek"][1]
            ek = next(
                (
                    e
                    for e in security
                    if e.tag == xenc.ENCRYPTED_KEY and reference.uri == f"#{e.get('Id')}"
                ),
                None,
            )
            if ek is None:
                raise UnknownDerivationSource("keys must derive from this request's EncryptedKey")
            info = xenc.read_encrypted_key(ek, xenc.EncryptionPolicy())
            key = xenc.decrypt_key(
                info, self.identity.private_key, expected_bytes=32, ledger=self.ledger
            )
            found["ek"] = (reference.uri, key, wss.encrypted_key_sha1(info.cipher))
            return key

        checked = self.open_symmetric(envelope, now, secret_for)
        self.check_app_headers(checked, now)
        request = trust.read_rst(body_element(envelope, "wst:RequestSecurityToken"))
        if request.request_type != RequestType.ISSUE:
            raise InvalidRequest("the RequestType does not match the Action")
        _, ephemeral, ek_sha1 = found["ek"]
        reply = self.issue_computed(request, addressing.message_id, now)
        data = p.protect_symmetric(
            reply,
            secret=ephemeral,
            source_reference=lambda: wss.str_key_identifier_text(
                ek_sha1, ValueType.ENCRYPTED_KEY_SHA1.value
            ),
            now=now,
            ledger=self.ledger,
            suite_=self.setup.suite,
        )
        return send(sender, data, action=Action.SCTR_ISSUE, kind=MessageKind.RSTR_SCT, reply=True)
