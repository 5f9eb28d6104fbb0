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
import os
import ssl
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cryptography.hazmat.primitives import serialization
from lxml import etree

import sim.crypto as crypto
from sim.errors import (
    FailedAuthentication,
    FailedCheck,
    InvalidRequest,
    RequestFailed,
    UnknownDerivationSource,
)
from sim.protocol import protection as p
from sim.protocol.api import PROVIDER, MessageKind, Send
from sim.protocol.base import PROVIDER_ADDRESS, Setup, body_element, option
from sim.protocol.states import Input, Machine, State, Transition
from sim.protocol.strategies.sct import (
    CONTEXT_TRANSITIONS,
    START_NOTE,
    ContextClient,
    ContextProvider,
    SctOptions,
    _one_response,
    context_reference,
)
from sim.wire import dsig, ns, sc, soap, trust, wss, xenc
from sim.wire.ledger import Op
from sim.wire.ns import Action, RequestType, ValueType
from sim.wire.xmlutil import WSU_ID, fresh_bytes, new_id

OPTIONS = {
    "sct_lifetime_s",
    "renew_at",
    "cache_capacity",
    "cache_idle_timeout_s",
    "cancel",
    "derived_keys",
    "tlsnego",
    "max_pending_negotiations",
    "negotiation_timeout_s",
}
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


def _load_identity(context: ssl.SSLContext, certificate: bytes, private_key: bytes) -> None:
    """Give ``context`` a certificate and its private key (PEM). Python's ``ssl`` loads them
    from a file only: a file only this user can read, in a folder removed once loaded."""
    with tempfile.TemporaryDirectory(prefix="wssim-tls-") as directory:
        path = Path(directory) / "identity.pem"
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "wb") as out:
            out.write(private_key + certificate)
        context.load_cert_chain(path)


def _contexts(setup: Setup) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(client, server) TLS 1.2 contexts with the provider's certificate, built once."""
    if "tls" not in setup.shared:
        provider, ca = setup.identity("provider"), setup.keystore.ca
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if setup.rsa_bits < 2048:
            server.set_ciphers("DEFAULT:@SECLEVEL=0")  # the scenario asked for 1024-bit keys
        _load_identity(
            server,
            provider.pem,
            provider.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.check_hostname = False
        client.load_verify_locations(cadata=ca.pem.decode())
        for context in (server, client):
            context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
        setup.shared["tls"] = (client, server)
    return setup.shared["tls"]


class _Tunnel:
    """One end of a TLS connection over memory BIOs."""

    def __init__(self, context: ssl.SSLContext, server_side: bool) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=server_side)

    def step(self, data: bytes = b"") -> tuple[bytes, bool]:
        """Feed ``data``; return what to send and whether the handshake is complete."""
        if data:
            self.incoming.write(data)
        try:
            self.tls.do_handshake()
            complete = True
        except ssl.SSLWantReadError:
            complete = False
        except ssl.SSLError as exc:
            raise FailedCheck(f"TLS negotiation failed: {exc.reason}", check="tls") from None
        return self.outgoing.read(), complete


def _combined(key: bytes, elements: list[etree._Element], ledger) -> bytes:
    for el in elements:
        ledger.record(Op.C14N, len(dsig.canonical(el)))  # a typed fault if none exists
    ledger.record(Op.P_SHA1, 32)
    return trust.combined_hash(key, elements)


def _copy(el: etree._Element) -> etree._Element:
    """A detached copy of ``el`` (its tail, text after it in the parent, left behind)."""
    return etree.fromstring(etree.tostring(el, with_tail=False))


class TlsNegoClient(ContextClient):
    machine: ClassVar[Machine] = Machine(
        [
            Transition(
                state=State.IDLE,
                on=Input.REQUEST,
                handler="start",
                to=(State.TLS_SERVER_FLIGHT, State.ISSUE, State.RENEW, State.APP),
                note=START_NOTE + " (tls-server-flight: TLSNego; issue: option tlsnego = false)",
            ),
            Transition(
                state=State.TLS_SERVER_FLIGHT,
                on=Input.REPLY,
                handler="on_server_flight",
                to=(State.TLS_FINAL,),
            ),
            Transition(
                state=State.TLS_FINAL,
                on=Input.REPLY,
                handler="on_negotiated",
                to=(State.APP, State.RENEW),
                note="renew at once when the issued lifetime is already due",
            ),
            Transition(
                state=State.ISSUE,
                on=Input.REPLY,
                handler="on_preset_issued",
                to=(State.APP, State.RENEW),
                note="renew at once when the issued lifetime is already due",
            ),
            *CONTEXT_TRANSITIONS,
        ]
    )

    options_class = TlsNegoOptions

    def __init__(self, setup: Setup, client_id: str) -> None:
        super().__init__(setup, client_id)
        self.user, self.password = setup.username(client_id)
        self.provider = setup.identity("provider")
        self.tunnel: _Tunnel | None = None
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
        self.tunnel = _Tunnel(_contexts(self.setup)[0], server_side=False)
        hello, _ = self.tunnel.step()
        self.context_attr = new_id("ctx-")
        rst = trust.build_rst(
            trust.RequestSecurityToken(
                request_type=RequestType.ISSUE,
                token_type=ns.TokenType.SCT.value,
                binary_exchange=(hello, TLSNEGO),
                context=self.context_attr,
            )
        )
        self.negotiation = [_copy(rst)]
        envelope = soap.new_envelope()
        self.address_request(
            envelope,
            Action.SCT_ISSUE.value,
            Action.RSTR_ISSUE.value,
            to=PROVIDER_ADDRESS,
            signed=False,  # the tunneled handshake and the final Authenticator protect it
        )
        envelope.add_body_element(rst)
        return [
            Send(
                to=PROVIDER,
                data=envelope.to_bytes(self.ledger),
                action=Action.SCT_ISSUE.value,
                kind=MessageKind.RST_TLSNEGO,
                token_service=True,
            )
        ]

    def on_server_flight(self, envelope, sender, now):
        """Leg #2, the server's TLS flight: answer with ours (leg #3)."""
        responses = trust.read_rstr_collection(
            body_element(envelope, "wst:RequestSecurityTokenResponse")
        )
        if len(responses) != 1:
            raise InvalidRequest("the server's TLSNego flight is one RSTR")
        blob = self._exchange(responses[0])
        self.negotiation.append(_copy(responses[0].element))
        flight, _ = self.tunnel.step(blob)
        rstr = trust.build_rstr(binary_exchange=(flight, TLSNEGO), context=self.context_attr)
        self.negotiation.append(_copy(rstr))
        out = soap.new_envelope()
        self.address_request(
            out,
            Action.RSTR_ISSUE.value,
            Action.RSTRC_ISSUE_FINAL.value,
            to=PROVIDER_ADDRESS,
            signed=False,
        )
        out.add_body_element(rstr)
        return [
            Send(
                to=PROVIDER,
                data=out.to_bytes(self.ledger),
                action=Action.RSTR_ISSUE.value,
                kind=MessageKind.RSTR_TLSNEGO,
                token_service=True,
            )
        ]

    def on_negotiated(self, envelope, sender, now):
        """Leg #4: the SCT, the TLS-protected key and the Authenticator."""
        responses = trust.read_rstr_collection(
            body_element(envelope, "wst:RequestSecurityTokenResponse")
        )
        if len(responses) != 2 or responses[0].requested_token is None:
            raise InvalidRequest(
                "the final TLSNego response is a collection of token and authenticator"
            )
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
        expected = _combined(secret, self.negotiation, self.ledger)
        if not hmac.compare_digest(expected, responses[1].authenticator):
            raise FailedCheck("the TLSNego authenticator does not match", check="authenticator")
        token = sc.read_sct(responses[0].requested_token)
        expires = responses[0].lifetime[1] if responses[0].lifetime else now + self.opts.lifetime
        self.tunnel = None
        return self.established(token.identifier, secret, expires, now)

    def _exchange(self, response) -> bytes:
        if response.binary_exchange is None or response.binary_exchange[1] != TLSNEGO:
            raise InvalidRequest("expected a TLSNego BinaryExchange")
        if response.context != self.context_attr:
            raise InvalidRequest("negotiation message for another context")
        return response.binary_exchange[0]

    def _establish_preset(self, now):
        self.ephemeral, self.entropy = fresh_bytes(32), fresh_bytes(32)
        ek = xenc.build_encrypted_key(
            self.ephemeral,
            self.provider.public_key,
            key_info=wss.str_key_identifier(
                self.provider.thumbprint_sha1, ValueType.THUMBPRINT_SHA1.value
            ),
            ledger=self.ledger,
        )
        self.ek_sha1 = wss.encrypted_key_sha1(
            p.unb64(ek.findtext(f".//{{{ns.XENC}}}CipherValue"), "CipherValue")
        )
        self.setup.log_key("session-key", ek.get("Id"), self.ephemeral)
        envelope = soap.new_envelope()
        self.address_request(
            envelope, Action.SCT_ISSUE.value, Action.SCTR_ISSUE.value, to=PROVIDER_ADDRESS
        )
        envelope.add_body_element(
            trust.build_rst(
                trust.RequestSecurityToken(
                    request_type=RequestType.ISSUE,
                    token_type=ns.TokenType.SCT.value,
                    key_size=256,
                    entropy=self.entropy,
                    computed_key_algorithm=ns.ComputedKeyAlg.PSHA1.value,
                )
            )
        )
        ek_id = ek.get("Id")
        data = p.protect_symmetric(
            envelope,
            secret=self.ephemeral,
            source_reference=lambda: wss.str_reference(f"#{ek_id}", ValueType.ENCRYPTED_KEY.value),
            now=now,
            ledger=self.ledger,
            suite_=self.setup.suite,
            tokens=[ek],
            encrypt_tokens=self.app_headers(now),
            keylog=self.setup.log_key,
        )
        return [
            Send(
                to=PROVIDER,
                data=data,
                action=Action.SCT_ISSUE.value,
                kind=MessageKind.RST_SCT,
                token_service=True,
            )
        ]

    def on_preset_issued(self, envelope, sender, now):
        def secret_for(reference):
            if reference.key_identifier != self.ek_sha1:
                raise UnknownDerivationSource("reply keys derive from another key")
            return self.ephemeral

        self.open_symmetric(envelope, now, secret_for)
        response = _one_response(envelope)
        if response.requested_token is None or response.entropy is None:
            raise InvalidRequest("RSTR lacks the token or the issuer entropy")
        self.ledger.record(Op.P_SHA1, 32)
        secret = crypto.computed_key(self.entropy, response.entropy, 256)
        token = sc.read_sct(response.requested_token)
        expires = response.lifetime[1] if response.lifetime else now + self.opts.lifetime
        return self.established(token.identifier, secret, expires, now)


@dataclass(slots=True, kw_only=True)
class _Negotiation:
    """A TLSNego handshake a provider has answered leg #1 of and waits to finish."""

    tunnel: _Tunnel
    #: the negotiation's RST and RSTRs so far, for the Authenticator
    elements: list[etree._Element]
    started: float
    #: the handshake flight this provider sent (leg #2)
    flight: bytes


class TlsNegoProvider(ContextProvider):
    request_actions = ContextProvider.request_actions | {Action.RSTR_ISSUE.value}

    options_class = TlsNegoOptions

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup, node_id, shared)
        self.max_negotiations = self.opts.max_negotiations
        self.negotiation_timeout = self.opts.negotiation_timeout
        #: pending negotiations by (the node that started one, its wst:Context): a node's
        #: memory for them is bounded, and one client's legs never reach another's
        self.negotiations: OrderedDict[tuple[str, str], _Negotiation] = OrderedDict()

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

    def _expire_negotiations(self, now: float) -> None:
        """Forget the negotiations older than the timeout (the oldest come first)."""
        negotiations = self.negotiations
        while negotiations:
            oldest = next(iter(negotiations.values()))
            if now - oldest.started <= self.negotiation_timeout:
                break
            negotiations.popitem(last=False)

    def _server_flight(self, request, addressing, sender, now):
        if (
            request.request_type != RequestType.ISSUE
            or request.binary_exchange is None
            or request.binary_exchange[1] != TLSNEGO
            or not request.context
        ):
            raise InvalidRequest("TLSNego needs an Issue request, a BinaryExchange and a Context")
        key = (sender, request.context)
        self._expire_negotiations(now)
        if key in self.negotiations:
            raise InvalidRequest(
                "a negotiation with this Context is in progress", check="negotiation"
            )
        if len(self.negotiations) >= self.max_negotiations:
            # Refuse the newcomer rather than evict a handshake in progress: a flood then
            # costs its senders their own attempts, not the clients already negotiating.
            raise RequestFailed("too many negotiations in progress", check="negotiations")
        tunnel = _Tunnel(_contexts(self.setup)[1], server_side=True)
        flight, _ = tunnel.step(request.binary_exchange[0])
        rstr = trust.build_rstr(binary_exchange=(flight, TLSNEGO), context=request.context)
        self.negotiations[key] = _Negotiation(
            tunnel=tunnel,
            elements=[_copy(request.element), _copy(rstr)],
            started=now,
            flight=flight,
        )
        return self._negotiation_reply(
            addressing, sender, rstr, Action.RSTR_ISSUE, MessageKind.RSTR_TLSNEGO
        )

    def _finish(self, envelope, addressing, sender, now):
        responses = trust.read_rstr_collection(
            body_element(envelope, "wst:RequestSecurityTokenResponse")
        )
        if len(responses) != 1:
            raise InvalidRequest("the client's TLSNego leg is one RSTR")
        response = responses[0]
        key = (sender, response.context or "")
        self._expire_negotiations(now)
        negotiation = self.negotiations.get(key)
        if negotiation is None:
            raise InvalidRequest("no negotiation in progress for this context", check="negotiation")
        # Checked before the negotiation is touched: a leg that is not the client's next
        # TLS flight (our own flight reflected, no TLSNego blob) leaves it as it was.
        exchange = response.binary_exchange
        if exchange is None or exchange[1] != TLSNEGO or exchange[0] == negotiation.flight:
            raise InvalidRequest(
                "expected the client's TLSNego BinaryExchange", check="negotiation"
            )
        del self.negotiations[key]
        tunnel, elements = negotiation.tunnel, negotiation.elements
        flight, complete = tunnel.step(exchange[0])
        if not complete:
            raise FailedCheck("TLS handshake did not complete", check="tls")
        self.ledger.record(Op.TLS_HANDSHAKE, self.setup.rsa_bits)
        elements.append(_copy(response.element))
        secret = fresh_bytes(32)
        tunnel.tls.write(secret)
        flight += tunnel.outgoing.read()
        token, context = self.new_context(secret, now)
        collection = trust.build_rstr_collection(
            [
                trust.build_rstr(
                    token_type=ns.TokenType.SCT.value,
                    request_type=RequestType.ISSUE,
                    requested_token=token,
                    binary_exchange=(flight, TLSNEGO),
                    lifetime=(now, context.expires),
                    context=response.context,
                    attached_reference=wss.str_reference(f"#{token.get(WSU_ID)}"),
                    unattached_reference=context_reference(context.identifier),
                ),
                trust.build_rstr(
                    authenticator=_combined(secret, elements, self.ledger), context=response.context
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
        data = reply.to_bytes(self.ledger)
        return [
            Send(
                to=sender,
                data=data,
                action=action.value,
                kind=kind,
                reply=True,
                token_service=True,
            )
        ]

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
            source_reference=lambda: wss.str_key_identifier(
                ek_sha1, ValueType.ENCRYPTED_KEY_SHA1.value
            ),
            now=now,
            ledger=self.ledger,
            suite_=self.setup.suite,
        )
        return [
            Send(
                to=sender,
                data=data,
                action=Action.SCTR_ISSUE.value,
                kind=MessageKind.RSTR_SCT,
                reply=True,
                token_service=True,
            )
        ]
