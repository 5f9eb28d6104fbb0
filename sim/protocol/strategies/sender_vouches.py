"""``sender-vouches`` (seed 003): the client authenticates to an intermediary with a
UsernameToken over TLS; the intermediary asks the STS for a sender-vouches assertion on the
user's behalf (OnBehalfOf), signs assertion and body with its own key and calls the
provider, which checks the intermediary's signature, its trust in that intermediary and the
STS signature; the response travels back through the intermediary."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from sim.errors import FailedAuthentication, InvalidRequest, ScenarioError, SecurityFault
from sim.protocol import protection as p
from sim.protocol.api import CLIENT, INTERMEDIARY, PROVIDER, STS, MessageKind, role_of
from sim.protocol.base import Client, Server, Setup, option
from sim.protocol.binding import body_element, one_response, require_reply_signed
from sim.protocol.sending import app_response, send
from sim.protocol.setup import APP_ACTION, APP_RESPONSE_ACTION, PROVIDER_ADDRESS, STS_ADDRESS
from sim.protocol.strategies.saml_tokens import (
    SamlProvider,
    SamlSts,
    TokenOptions,
    app_request_over_tls,
    app_response_over_tls,
    issued_response,
    read_over_tls,
    signed_assertion,
    the_assertion,
    user_over_tls,
)
from sim.wire import saml, soap, trust, wss
from sim.wire.checks import require_signed
from sim.wire.ns import Action, Confirmation, KeyType, RequestType

OPTIONS = {"token_lifetime_s", "saml_version", "trusted_intermediaries"}
INTERMEDIARY_ADDRESS = "https://intermediary.example/service"


class SvOptions(TokenOptions):
    """The token options, and whom the STS and the provider let vouch for users."""

    def __init__(self, options) -> None:
        super().__init__(options)
        trusted = option(options, "trusted_intermediaries", ["intermediary"], list)
        if not all(isinstance(name, str) for name in trusted):
            raise ScenarioError(
                "strategy_options.trusted_intermediaries",
                f"must be a list of actor names, got {trusted!r}",
            )
        self.trusted = frozenset(trusted)


class SvClient(Client):
    def __init__(self, setup: Setup, client_id: str) -> None:
        super().__init__(setup, client_id)
        self.user, self.password = setup.username(client_id)

    def start(self, now):
        token = wss.build_username_token(self.user, password=self.password, digest=True, now=now)
        return app_request_over_tls(self, token, now, to=INTERMEDIARY, address=INTERMEDIARY_ADDRESS)

    def on_reply(self, envelope, sender, now):
        """A reply over TLS (its RelatesTo and Action already checked by ``check_reply``)."""
        read_over_tls(envelope, now, self.ledger)
        return [self.done(p.get_payload(envelope))]


@dataclass(slots=True, kw_only=True)
class Pending:
    client_node: str
    client_message_id: str
    username: str
    payload: bytes
    stage: str


#: the reply Action the intermediary expects at each stage of an exchange
_REPLY_ACTIONS = {STS: Action.RSTRC_ISSUE_FINAL.value, PROVIDER: APP_RESPONSE_ACTION}


class SvIntermediary(Server):
    """Serves clients' requests, and is itself the client of the STS and the provider: a
    reply it reads answers one of its pending requests (signed RelatesTo, reply Action)."""

    role = INTERMEDIARY
    request_actions = frozenset({APP_ACTION})

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup)
        self.identity = setup.identity("intermediary")
        self.sts = setup.identity("sts")
        self.provider = setup.identity("provider")
        self.replay = setup.replay_cache(self.role, node_id)
        self.opts = SvOptions(setup.options)
        self.pending: dict[str, Pending] = {}

    def handle(self, data, sender, now):
        if role_of(sender) == CLIENT:
            return self._from_client(data, sender, now)
        envelope = soap.read_envelope(data, ledger=self.ledger)
        peer_fault = soap.read_fault(envelope)
        relates_to = soap.read_addressing(envelope).relates_to
        if peer_fault is not None:  # the STS or provider refused: tell the client
            self.accept_reply(envelope, message_id=relates_to, action=Action.FAULT.value)
            pending = self.pending.pop(relates_to or "", None)
            if pending is None and relates_to is None:
                pending = self._by_connection(sender)
            if pending is None:
                return []  # a fault about nothing pending: never answer a fault with a fault
            return [self._fault(peer_fault, pending.client_node, pending.client_message_id)]
        pending = self.pending.get(relates_to or "")
        if pending is None or pending.stage != role_of(sender):
            raise InvalidRequest(
                "a reply to no request of this intermediary pending with that peer",
                check="relates-to",
            )
        # Not the reply it expects (its Action): refused, and the exchange still waits.
        self.accept_reply(envelope, message_id=relates_to, action=_REPLY_ACTIONS[pending.stage])
        del self.pending[relates_to]
        try:
            if pending.stage == STS:
                return self._from_sts(envelope, pending, now)
            return self._from_provider(envelope, pending, now)
        except SecurityFault as fault:  # a refusal goes back to the client
            self.last_refusal = fault.check
            return [self._fault(fault, pending.client_node, pending.client_message_id)]

    def _by_connection(self, sender: str) -> Pending | None:
        """A fault that names no request (about an unreadable message) belongs, as on an HTTP
        connection, to the oldest exchange pending with that role."""
        stage = role_of(sender)
        for key, pending in self.pending.items():
            if pending.stage == stage:
                return self.pending.pop(key)
        return None

    def _open_reply(self, envelope, now, signer: str):
        """Verify a reply signed by ``signer``, its RelatesTo and Action among what it signs."""
        checked = self.open_asymmetric(envelope, now, signer=signer)
        require_reply_signed(envelope, checked.verified)
        return checked

    def _from_client(self, data, sender, now):
        missing = FailedAuthentication("the intermediary needs a UsernameToken")
        envelope, addressing, token = user_over_tls(self, data, now, missing)
        request = soap.new_envelope()
        sent = soap.add_addressing(request, action=Action.RST_ISSUE.value, to=STS_ADDRESS)
        opts = self.opts
        request.add_body_element(
            trust.build_rst(
                trust.RequestSecurityToken(
                    request_type=RequestType.ISSUE,
                    token_type=saml.TOKEN_TYPES[opts.version],
                    applies_to=PROVIDER_ADDRESS,
                    key_type=KeyType.BEARER,
                    on_behalf_of=wss.build_username_token(token.username),
                )
            )
        )
        out = self.seal_asymmetric(request, now, self.sts)
        self.pending[sent.message_id] = Pending(
            client_node=sender,
            client_message_id=addressing.message_id,
            username=token.username,
            payload=p.get_payload(envelope),
            stage=STS,
        )
        return send(STS, out, action=Action.RST_ISSUE, kind=MessageKind.RST_ISSUE)

    def _from_sts(self, envelope, pending: Pending, now):
        self._open_reply(envelope, now, "sts")
        response = one_response(envelope)
        if response.requested_token is None:
            raise InvalidRequest("RSTR without a token")
        request = soap.new_envelope()
        sent = soap.add_addressing(request, action=APP_ACTION, to=PROVIDER_ADDRESS)
        p.put_payload(request, pending.payload)
        assertion = etree.fromstring(etree.tostring(response.requested_token))
        out = self.seal_asymmetric(
            request, now, self.provider, tokens=[assertion], extra_signed=[assertion]
        )
        pending.stage = PROVIDER
        self.pending[sent.message_id] = pending
        return send(PROVIDER, out, action=APP_ACTION, kind=MessageKind.APP_REQUEST)

    def _from_provider(self, envelope, pending: Pending, now):
        self._open_reply(envelope, now, "provider")
        return app_response_over_tls(
            self.ledger,
            pending.client_node,
            pending.client_message_id,
            p.get_payload(envelope),
            now,
        )


def trusted_signer(checked, trusted: frozenset[str], refusal: str) -> p.CertificateRecipient:
    """The signer of a verified message, one of the ``trusted`` intermediaries (else a
    FailedAuthentication saying ``refusal``)."""
    signer = p.CertificateRecipient(checked.certificate)
    if signer.common_name not in trusted:
        raise FailedAuthentication(refusal, check="trust")
    return signer


class SvSts(SamlSts):
    """Issues sender-vouches assertions to trusted intermediaries only."""

    options_class = SvOptions

    def handle(self, data, sender, now):
        envelope, addressing = self.read_request(data)
        checked = self.open_asymmetric(envelope, now)
        requester = trusted_signer(
            checked, self.opts.trusted, "the requester may not vouch for users"
        )
        request = trust.read_rst(body_element(envelope, "wst:RequestSecurityToken"))
        if request.on_behalf_of is None or request.applies_to != PROVIDER_ADDRESS:
            raise InvalidRequest("sender-vouches needs OnBehalfOf and a known AppliesTo")
        user = wss.read_username_token(request.on_behalf_of).username
        assertion = signed_assertion(
            self.identity,
            self.opts,
            subject=user,
            confirmation=Confirmation.SENDER_VOUCHES,
            now=now,
            ledger=self.ledger,
        )
        response = issued_response(assertion, self.opts, relates_to=addressing.message_id, now=now)
        out = self.seal_asymmetric(response, now, requester)
        return send(
            sender, out, action=Action.RSTRC_ISSUE_FINAL, kind=MessageKind.RSTR_ISSUE, reply=True
        )


class SvProvider(SamlProvider):
    """Accepts a request signed by a trusted intermediary whose signature covers the one
    sender-vouches assertion it carries (and Body, Timestamp, Action): the intermediary
    vouches for the subject, the STS signed the assertion."""

    confirmations = frozenset({Confirmation.SENDER_VOUCHES})

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup, node_id, shared)
        self.trusted = SvOptions(setup.options).trusted

    def handle(self, data, sender, now):
        envelope, addressing = self.read_request(data)
        checked = self.open_asymmetric(envelope, now)
        intermediary = trusted_signer(checked, self.trusted, "no trust relation with this sender")
        assertion = the_assertion(checked.security)
        require_signed(checked.verified, assertion, "the vouched-for assertion")
        self.validate(assertion, now)
        response = soap.new_envelope()
        soap.add_addressing(response, action=APP_RESPONSE_ACTION, relates_to=addressing.message_id)
        p.put_payload(response, p.get_payload(envelope), "Response")
        out = self.seal_asymmetric(response, now, intermediary)
        return app_response(sender, out)
