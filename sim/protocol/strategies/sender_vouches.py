"""``sender-vouches`` (seed 003): the client authenticates to an intermediary with a
UsernameToken over TLS; the intermediary asks the STS for a sender-vouches assertion on the
user's behalf (OnBehalfOf), signs assertion and body with its own key and calls the
provider, which checks the intermediary's signature, its trust in that intermediary and the
STS signature; the response travels back through the intermediary."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from sim.errors import (
    FailedAuthentication,
    InvalidRequest,
    InvalidSecurity,
    InvalidSecurityToken,
    SecurityFault,
)
from sim.protocol import protection as p
from sim.protocol.api import INTERMEDIARY, PROVIDER, STS, Send, role_of
from sim.protocol.base import (
    APP_ACTION,
    APP_RESPONSE_ACTION,
    MALFORMED,
    PROVIDER_ADDRESS,
    STS_ADDRESS,
    Client,
    Server,
    Setup,
    record_tls,
)
from sim.protocol.strategies.saml_tokens import _TOKEN_TYPES, TokenOptions
from sim.wire import saml, soap, trust, wss
from sim.wire.checks import ReplayCache, require_signed
from sim.wire.ns import Action, Confirmation, KeyType, RequestType

OPTIONS = {"token_lifetime_s", "saml_version", "trusted_intermediaries"}
INTERMEDIARY_ADDRESS = "https://intermediary.example/service"


class SvClient(Client):
    def __init__(self, setup: Setup, client_id: str) -> None:
        super().__init__(setup, client_id)
        self.user, self.password = setup.username(client_id)

    def start(self, now):
        envelope = soap.new_envelope()
        soap.add_addressing(envelope, action=APP_ACTION, to=INTERMEDIARY_ADDRESS)
        security, _ = p.security_header(envelope, now)
        security.append(
            wss.build_username_token(self.user, password=self.password, digest=True, now=now)
        )
        p.put_payload(envelope, self.payload)
        data = envelope.to_bytes(self.ledger)
        record_tls(self.ledger, data)
        self.awaiting = "app"
        return [Send(INTERMEDIARY, data, APP_ACTION, "app-request", tls=True)]

    def on_reply(self, envelope, sender, now):
        record_tls(self.ledger, envelope.to_bytes())
        wss.check_freshness(wss.read_timestamp(wss.find_security_header(envelope)), now)
        return [self.done(p.get_payload(envelope))]


@dataclass
class Pending:
    client_node: str
    client_message_id: str
    username: str
    payload: bytes
    stage: str


class SvIntermediary(Server):
    role = INTERMEDIARY

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup)
        self.identity = setup.identity("intermediary")
        self.sts = setup.identity("sts")
        self.provider = setup.identity("provider")
        self.replay = ReplayCache()
        self.pending: dict[str, Pending] = {}

    def handle(self, data, sender, now):
        if sender.startswith("client"):
            return self._from_client(data, sender, now)
        envelope = soap.read_envelope(data, ledger=self.ledger)
        relates_to = soap.read_addressing(envelope).relates_to
        pending = self.pending.pop(relates_to or "", None) or self._by_connection(sender)
        if pending is None:
            if soap.read_fault(envelope) is not None:
                return []  # a fault about nothing pending: never answer a fault with a fault
            raise InvalidRequest("a reply to no request of this intermediary")
        peer_fault = soap.read_fault(envelope)
        if peer_fault is not None:  # the STS or provider refused: tell the client
            return [self._fault(peer_fault, pending.client_node)]  # relates to the client later
        try:
            if pending.stage == "sts":
                return self._from_sts(envelope, pending, now)
            return self._from_provider(envelope, pending, now)
        except SecurityFault as fault:  # a refusal goes back to the client
            return [self._fault(fault, pending.client_node)]
        except MALFORMED as exc:
            refusal = InvalidSecurity(f"malformed message: {exc!r}"[:200])
            return [self._fault(refusal, pending.client_node)]

    def _by_connection(self, sender: str) -> Pending | None:
        """A reply that names no request (a fault about an unreadable message) belongs, as on
        an HTTP connection, to the oldest exchange pending with that role."""
        stage = role_of(sender)
        for key, pending in self.pending.items():
            if pending.stage == stage:
                return self.pending.pop(key)
        return None

    def _from_client(self, data, sender, now):
        record_tls(self.ledger, data)
        envelope = soap.read_envelope(data, ledger=self.ledger)
        addressing = soap.read_addressing(envelope)
        security = wss.find_security_header(envelope)
        wss.check_freshness(wss.read_timestamp(security), now)
        self.replay.check_and_add(addressing.message_id or "", now)
        token_el = security.find(wss.USERNAME_TOKEN)
        if token_el is None:
            raise FailedAuthentication("the intermediary needs a UsernameToken")
        token = wss.read_username_token(token_el)
        wss.authenticate_username_token(token, self.setup.passwords)
        request = soap.new_envelope()
        sent = soap.add_addressing(request, action=Action.RST_ISSUE.value, to=STS_ADDRESS)
        opts = TokenOptions(self.setup.options)
        request.add_body_element(
            trust.build_rst(
                trust.RequestSecurityToken(
                    request_type=RequestType.ISSUE,
                    token_type=_TOKEN_TYPES[opts.version],
                    applies_to=PROVIDER_ADDRESS,
                    key_type=KeyType.BEARER,
                    on_behalf_of=wss.build_username_token(token.username),
                )
            )
        )
        out = self.seal_asymmetric(request, now, self.sts)
        self.pending[sent.message_id] = Pending(
            sender, addressing.message_id, token.username, p.get_payload(envelope), "sts"
        )
        return [Send(STS, out, Action.RST_ISSUE.value, "rst-issue", token_service=True)]

    def _from_sts(self, envelope, pending: Pending, now):
        self.open_asymmetric(envelope, now, signer="sts")
        response = trust.read_rstr_collection(envelope.body[0])[0]
        if response.requested_token is None:
            raise InvalidRequest("RSTR without a token")
        request = soap.new_envelope()
        sent = soap.add_addressing(request, action=APP_ACTION, to=PROVIDER_ADDRESS)
        p.put_payload(request, pending.payload)
        assertion = etree.fromstring(etree.tostring(response.requested_token))
        out = self.seal_asymmetric(
            request, now, self.provider, tokens=[assertion], extra_signed=[assertion]
        )
        pending.stage = "provider"
        self.pending[sent.message_id] = pending
        return [Send(PROVIDER, out, APP_ACTION, "app-request")]

    def _from_provider(self, envelope, pending: Pending, now):
        self.open_asymmetric(envelope, now, signer="provider")
        reply = soap.new_envelope()
        soap.add_addressing(reply, action=APP_RESPONSE_ACTION, relates_to=pending.client_message_id)
        p.security_header(reply, now)
        p.put_payload(reply, p.get_payload(envelope), "Response")
        out = reply.to_bytes(self.ledger)
        record_tls(self.ledger, out)
        return [
            Send(
                pending.client_node, out, APP_RESPONSE_ACTION, "app-response", reply=True, tls=True
            )
        ]


class SvSts(Server):
    """Issues sender-vouches assertions to trusted intermediaries only."""

    role = STS

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup)
        self.opts = TokenOptions(setup.options)
        self.identity = setup.identity("sts")
        self.replay = ReplayCache()
        self.trusted = set(setup.options.get("trusted_intermediaries", ["intermediary"]))

    def handle(self, data, sender, now):
        envelope = soap.read_envelope(data, ledger=self.ledger)
        checked = self.open_asymmetric(envelope, now)
        requester = p.CertificateRecipient(checked.certificate)
        if requester.common_name not in self.trusted:
            raise FailedAuthentication("the requester may not vouch for users", check="trust")
        request = trust.read_rst(envelope.body[0])
        if request.on_behalf_of is None or request.applies_to != PROVIDER_ADDRESS:
            raise InvalidRequest("sender-vouches needs OnBehalfOf and a known AppliesTo")
        user = wss.read_username_token(request.on_behalf_of).username
        assertion = saml.build_assertion(
            issuer=STS_ADDRESS,
            subject=user,
            audience=PROVIDER_ADDRESS,
            now=now,
            lifetime=self.opts.lifetime,
            confirmation=Confirmation.SENDER_VOUCHES,
            version=self.opts.version,
        )
        saml.sign_assertion(assertion, self.identity, ledger=self.ledger)
        response = soap.new_envelope()
        soap.add_addressing(
            response,
            action=Action.RSTRC_ISSUE_FINAL.value,
            relates_to=checked.addressing.message_id,
        )
        response.add_body_element(
            trust.build_rstr_collection(
                [
                    trust.build_rstr(
                        token_type=_TOKEN_TYPES[self.opts.version],
                        request_type=RequestType.ISSUE,
                        requested_token=assertion,
                        lifetime=(now, now + self.opts.lifetime),
                        applies_to=PROVIDER_ADDRESS,
                    )
                ]
            )
        )
        out = self.seal_asymmetric(response, now, p.CertificateRecipient(checked.certificate))
        return [
            Send(
                sender,
                out,
                Action.RSTRC_ISSUE_FINAL.value,
                "rstr-issue",
                reply=True,
                token_service=True,
            )
        ]


class SvProvider(Server):
    role = PROVIDER

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup)
        self.identity = setup.identity("provider")
        self.sts_key = setup.identity("sts").public_key
        self.replay = ReplayCache()
        self.trusted = set(setup.options.get("trusted_intermediaries", ["intermediary"]))

    def handle(self, data, sender, now):
        envelope = soap.read_envelope(data, ledger=self.ledger)
        checked = self.open_asymmetric(envelope, now)
        intermediary = p.CertificateRecipient(checked.certificate)
        if intermediary.common_name not in self.trusted:
            raise FailedAuthentication("no trust relation with this sender", check="trust")
        assertions = [el for el in checked.security if el.tag in (saml.ASSERTION1, saml.ASSERTION2)]
        if len(assertions) != 1:
            raise InvalidSecurityToken("expected one SAML assertion")
        require_signed(checked.verified, assertions[0], "the vouched-for assertion")
        saml.validate_assertion(
            assertions[0],
            sts_key=self.sts_key,
            audience=PROVIDER_ADDRESS,
            now=now,
            expected=frozenset({Confirmation.SENDER_VOUCHES}),
            ledger=self.ledger,
        )
        response = soap.new_envelope()
        soap.add_addressing(
            response, action=APP_RESPONSE_ACTION, relates_to=checked.addressing.message_id
        )
        p.put_payload(response, p.get_payload(envelope), "Response")
        out = self.seal_asymmetric(response, now, intermediary)
        return [Send(sender, out, APP_RESPONSE_ACTION, "app-response", reply=True)]
