"""``sct``: WS-SecureConversation (seed 002). An RST/RSTR under the asymmetric bootstrap
policy establishes a SecurityContextToken with entropy from both sides (CK/PSHA1); each
application message is then signed and encrypted with fresh DerivedKeyTokens. Renew before
expiry, Cancel at session end; the provider keeps contexts in a bounded cache and answers
wsc:BadContextToken for one it does not know, after which the client establishes anew."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import sim.crypto as crypto
from sim.errors import (
    BadContextToken,
    InvalidRequest,
    RenewNeeded,
    SecurityFault,
    UnknownDerivationSource,
)
from sim.protocol import protection as p
from sim.protocol.api import PROVIDER, MessageKind, Send, SessionClosed
from sim.protocol.base import (
    APP_ACTION,
    APP_RESPONSE_ACTION,
    PROVIDER_ADDRESS,
    Client,
    ContextCache,
    Server,
    Setup,
    body_element,
    option,
)
from sim.protocol.states import Input, Machine, State, Transition
from sim.wire import ns, sc, soap, trust, wss
from sim.wire.checks import ReplayCache
from sim.wire.ledger import Op
from sim.wire.ns import Action, RequestType, ValueType
from sim.wire.xmlutil import fresh_bytes

OPTIONS = {
    "sct_lifetime_s",
    "renew_at",
    "cache_capacity",
    "cache_idle_timeout_s",
    "cancel",
    "derived_keys",
}


@dataclass(slots=True, kw_only=True)
class Context:
    identifier: str
    secret: bytes
    expires: float


def context_reference(identifier: str):
    """The unattached reference to an SCT: its Identifier URI."""
    return wss.str_reference(identifier, ValueType.SCT.value)


def context_reference_text(identifier: str) -> str:
    """The text of :func:`context_reference` (what a DerivedKeyToken embeds)."""
    return wss.str_reference_text(identifier, ValueType.SCT.value)


class SctOptions:
    """The options of a security context, read and checked."""

    def __init__(self, options) -> None:
        self.lifetime = option(options, "sct_lifetime_s", 3600.0, float, low=1.0, high=1e7)
        self.renew_at = option(options, "renew_at", 0.8, float, low=0.05, high=0.99)
        self.capacity = option(options, "cache_capacity", 10_000, int, low=1, high=10**8)
        self.idle_timeout = option(options, "cache_idle_timeout_s", 900.0, float, low=1.0)
        self.cancel = option(options, "cancel", True, bool)
        self.derived_keys = option(options, "derived_keys", True, bool)


#: the request handler's note in a context client's table
START_NOTE = (
    "app: the context is set up; renew: its renewal is due; otherwise the context is established"
)
#: what a context client does once it has a context: messages, Renew, Cancel
CONTEXT_TRANSITIONS = (
    Transition(state=State.APP, on=Input.REPLY, handler="on_app_reply"),
    Transition(
        state=State.RENEW,
        on=Input.REPLY,
        handler="on_renewed",
        to=(State.APP, State.RENEW),
        note="renew again when the renewed lifetime is already due",
    ),
    Transition(
        state=State.IDLE,
        on=Input.CLOSE,
        handler="close_session",
        to=(State.CANCEL,),
        note="cancel: a context to cancel and option cancel; otherwise closed at once",
    ),
    Transition(state=State.CANCEL, on=Input.REPLY, handler="on_cancelled"),
)


class ContextClient(Client):
    """Client side of an established context: application messages, Renew, Cancel.

    Subclasses establish the context (``establish``, their ``machine`` naming the states
    that takes) and call ``established``."""

    options_class: ClassVar[type[SctOptions]] = SctOptions

    def __init__(self, setup: Setup, client_id: str) -> None:
        super().__init__(setup, client_id)
        self.opts = self.options_class(setup.options)
        self.context: Context | None = None
        self.renew_due = 0.0
        self.replay = ReplayCache()

    def horizon(self) -> float:
        return self.renew_due if self.context is not None else math.inf

    def establish(self, now: float):
        raise NotImplementedError

    def established(self, identifier: str, secret: bytes, expires: float, now: float):
        self.context = Context(identifier=identifier, secret=secret, expires=expires)
        self.renew_due = now + (expires - now) * self.opts.renew_at
        self.setup.log_key("sct-secret", identifier, secret)
        return self.start(now)

    def start(self, now):
        if self.context is None:
            return self.establish(now)
        if now >= self.renew_due:
            return self._renew(now)
        envelope = soap.new_envelope()
        self.address_request(envelope, APP_ACTION, APP_RESPONSE_ACTION, to=PROVIDER_ADDRESS)
        p.put_payload(envelope, self.payload)
        data = self._protect(envelope, now, headers=self.app_headers(now))
        return [Send(to=PROVIDER, data=data, action=APP_ACTION, kind=MessageKind.APP_REQUEST)]

    def app_headers(self, now: float) -> list:
        """Header blocks sent encrypted with each application request (none here)."""
        return []

    def _protect(self, envelope, now, headers=()):
        context = self.context
        return p.protect_symmetric(
            envelope,
            secret=context.secret,
            source_reference=lambda: context_reference_text(context.identifier),
            now=now,
            ledger=self.ledger,
            suite_=self.setup.suite,
            derive=self.opts.derived_keys,
            encrypt_tokens=list(headers),
            keylog=self.setup.log_key,
        )

    def _renew(self, now):
        envelope = soap.new_envelope()
        self.address_request(
            envelope, Action.SCT_RENEW.value, Action.SCTR_RENEW.value, to=PROVIDER_ADDRESS
        )
        request = trust.RequestSecurityToken(
            request_type=RequestType.RENEW, token_type=ns.TokenType.SCT.value
        )
        envelope.add_body_element(
            trust.build_rst(request, target=context_reference(self.context.identifier))
        )
        return [
            Send(
                to=PROVIDER,
                data=self._protect(envelope, now),
                action=Action.SCT_RENEW.value,
                kind=MessageKind.RST_RENEW,
                token_service=True,
            )
        ]

    def _unprotect(self, envelope, now):
        context = self.context

        def secret_for(reference):
            if reference.uri != context.identifier:
                raise UnknownDerivationSource("reply derived from another context")
            return context.secret

        return self.open_symmetric(envelope, now, secret_for)

    def on_app_reply(self, envelope, sender, now):
        self._unprotect(envelope, now)
        return [self.done(p.get_payload(envelope))]

    def on_renewed(self, envelope, sender, now):
        self._unprotect(envelope, now)
        response = _one_response(envelope)
        if response.lifetime is None:
            raise InvalidRequest("renewal response without a lifetime")
        self.context.expires = response.lifetime[1]
        self.renew_due = now + (response.lifetime[1] - now) * self.opts.renew_at
        return self.start(now)

    def on_cancelled(self, envelope, sender, now):
        self._unprotect(envelope, now)
        response = _one_response(envelope)
        if not response.cancelled:
            raise InvalidRequest("cancel response without RequestedTokenCancelled")
        self.context = None
        return [SessionClosed()]

    def forget(self, fault: SecurityFault) -> bool:
        if isinstance(fault, (BadContextToken, UnknownDerivationSource, RenewNeeded)):
            self.context = None
            return True
        return False

    def close_session(self, now):
        if self.context is None or not self.opts.cancel:
            return [SessionClosed()]
        envelope = soap.new_envelope()
        self.address_request(
            envelope, Action.SCT_CANCEL.value, Action.SCTR_CANCEL.value, to=PROVIDER_ADDRESS
        )
        envelope.add_body_element(
            trust.build_rst(
                trust.RequestSecurityToken(request_type=RequestType.CANCEL),
                target=context_reference(self.context.identifier),
            )
        )
        return [
            Send(
                to=PROVIDER,
                data=self._protect(envelope, now),
                action=Action.SCT_CANCEL.value,
                kind=MessageKind.RST_CANCEL,
                token_service=True,
            )
        ]


def _one_response(envelope) -> trust.RequestSecurityTokenResponse:
    """The one RSTR a renewal, cancellation or SCT issuance answers with."""
    responses = trust.read_rstr_collection(
        body_element(envelope, "wst:RequestSecurityTokenResponse")
    )
    if len(responses) != 1:
        raise InvalidRequest(f"expected one RSTR, got {len(responses)}")
    return responses[0]


class SctClient(ContextClient):
    """Establishes the context with an RST/RSTR signed and encrypted with X.509 (bootstrap)."""

    machine: ClassVar[Machine] = Machine(
        [
            Transition(
                state=State.IDLE,
                on=Input.REQUEST,
                handler="start",
                to=(State.ISSUE, State.RENEW, State.APP),
                note=START_NOTE,
            ),
            Transition(
                state=State.ISSUE,
                on=Input.REPLY,
                handler="on_issued",
                to=(State.APP, State.RENEW),
                note="renew at once when the issued lifetime is already due",
            ),
            *CONTEXT_TRANSITIONS,
        ]
    )

    def __init__(self, setup: Setup, client_id: str) -> None:
        super().__init__(setup, client_id)
        self.identity_name, self.identity = setup.client_identity(client_id)
        self.provider = setup.identity("provider")
        self.entropy: bytes | None = None

    def establish(self, now):
        self.entropy = fresh_bytes(32)
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
        data = self.seal_asymmetric(envelope, now, self.provider)
        return [
            Send(
                to=PROVIDER,
                data=data,
                action=Action.SCT_ISSUE.value,
                kind=MessageKind.RST_SCT,
                token_service=True,
            )
        ]

    def on_issued(self, envelope, sender, now):
        self.open_asymmetric(envelope, now, signer="provider")
        response = _one_response(envelope)
        if (
            response.requested_token is None
            or response.entropy is None
            or response.proof_computed_key != ns.ComputedKeyAlg.PSHA1.value
        ):
            raise InvalidRequest("RSTR lacks the token, the issuer entropy or the computed key")
        token = sc.read_sct(response.requested_token)
        self.ledger.record(Op.P_SHA1, 32)
        secret = crypto.computed_key(self.entropy, response.entropy, 256)
        expires = response.lifetime[1] if response.lifetime else now + self.opts.lifetime
        return self.established(token.identifier, secret, expires, now)


class ContextProvider(Server):
    """The provider side of a context: application messages, Renew and Cancel. Subclasses
    add how contexts are issued (``issue``)."""

    role = PROVIDER
    request_actions = frozenset(
        {
            APP_ACTION,
            Action.SCT_ISSUE.value,
            Action.SCT_RENEW.value,
            Action.SCT_CANCEL.value,
        }
    )
    #: the request Actions protected with the context itself, and the RequestType each has
    _UNDER_CONTEXT: ClassVar[dict[str, RequestType]] = {
        Action.SCT_RENEW.value: RequestType.RENEW,
        Action.SCT_CANCEL.value: RequestType.CANCEL,
    }

    options_class: ClassVar[type[SctOptions]] = SctOptions

    def __init__(self, setup: Setup, node_id: str, shared: ContextCache | None = None) -> None:
        super().__init__(setup)
        self.opts = self.options_class(setup.options)
        self.identity = setup.identity("provider")
        self.contexts = (
            shared
            if shared is not None
            else ContextCache(self.opts.capacity, self.opts.idle_timeout)
        )
        self.replay = setup.replay_cache(self.role, node_id)

    def _context(self, identifier: str, now: float) -> Context:
        context = self.contexts.get(identifier, now, self.ledger)
        if now > context.expires:
            raise RenewNeeded("the security context has expired", check="context")
        return context

    def _unprotect(self, envelope, now, *, app: bool = False) -> Context:
        """Verify a request protected with a context's keys; the context."""
        used: list[Context] = []

        def secret_for(reference):
            if reference.uri is None or reference.value_type not in (None, ValueType.SCT.value):
                raise UnknownDerivationSource("keys must derive from a security context")
            if used and used[0].identifier != reference.uri:
                raise UnknownDerivationSource("keys must derive from one security context")
            context = self._context(reference.uri, now)
            used.append(context)
            return context.secret

        checked = self.open_symmetric(envelope, now, secret_for)
        if app:
            self.check_app_headers(checked, now)
        return used[0]

    def check_app_headers(self, checked, now: float) -> None:
        """Check header blocks a subclass requires in protected requests (none here)."""

    def _reply(self, sender, envelope, context, now, action: str, kind: MessageKind):
        data = p.protect_symmetric(
            envelope,
            secret=context.secret,
            source_reference=lambda: context_reference_text(context.identifier),
            now=now,
            ledger=self.ledger,
            suite_=self.setup.suite,
            derive=self.opts.derived_keys,
            keylog=self.setup.log_key,
        )
        return [
            Send(
                to=sender,
                data=data,
                action=action,
                kind=kind,
                reply=True,
                token_service=kind is not MessageKind.APP_RESPONSE,
            )
        ]

    def handle(self, data, sender, now):
        envelope, addressing = self.read_request(data)
        action = addressing.action
        if action == APP_ACTION:
            context = self._unprotect(envelope, now, app=True)
            payload = p.get_payload(envelope)
            self.contexts.touch(context.identifier, now)
            response = soap.new_envelope()
            soap.add_addressing(
                response, action=APP_RESPONSE_ACTION, relates_to=addressing.message_id
            )
            p.put_payload(response, payload, "Response")
            return self._reply(
                sender, response, context, now, APP_RESPONSE_ACTION, MessageKind.APP_RESPONSE
            )
        if action in self._UNDER_CONTEXT:
            context = self._unprotect(envelope, now)
            request = trust.read_rst(body_element(envelope, "wst:RequestSecurityToken"))
            if request.request_type != self._UNDER_CONTEXT[action]:
                raise InvalidRequest("the RequestType does not match the Action")
            if request.target is None or request.target.uri != context.identifier:
                raise InvalidRequest("the target is not the context that protects the request")
            # Every check has passed: only now does the request change the context.
            response = soap.new_envelope()
            if action == Action.SCT_RENEW.value:
                context.expires = now + self.opts.lifetime
                self.contexts.touch(context.identifier, now)
                body = trust.build_rstr(
                    token_type=ns.TokenType.SCT.value,
                    request_type=RequestType.RENEW,
                    lifetime=(now, context.expires),
                )
                reply_action, kind = Action.SCTR_RENEW.value, MessageKind.RSTR_RENEW
            else:
                self.contexts.remove(context.identifier)
                body = trust.build_rstr(cancelled=True, request_type=RequestType.CANCEL)
                reply_action, kind = Action.SCTR_CANCEL.value, MessageKind.RSTR_CANCEL
            soap.add_addressing(response, action=reply_action, relates_to=addressing.message_id)
            response.add_body_element(body)
            return self._reply(sender, response, context, now, reply_action, kind)
        return self.issue(envelope, addressing, sender, now)

    def issue(self, envelope, addressing: soap.Addressing, sender, now):
        raise InvalidRequest(f"unsupported action {addressing.action[:100]}", check="action")

    def new_context(self, secret: bytes, now: float):
        token = sc.build_sct()
        identifier = sc.read_sct(token).identifier
        context = Context(identifier=identifier, secret=secret, expires=now + self.opts.lifetime)
        self.contexts.put(identifier, context, now)
        self.setup.log_key("sct-secret", identifier, secret)
        return token, context

    def issue_computed(self, request, relates_to: str, now: float) -> soap.Envelope:
        """A new context keyed CK/PSHA1 from the request's and our entropy, and the RSTR
        envelope (not yet protected) that hands it to the client."""
        if request.entropy is None or len(request.entropy) < 16:
            raise InvalidRequest("client entropy missing or too short")
        issuer_entropy = fresh_bytes(32)
        self.ledger.record(Op.P_SHA1, 32)
        secret = crypto.computed_key(request.entropy, issuer_entropy, 256)
        token, context = self.new_context(secret, now)
        response = soap.new_envelope()
        soap.add_addressing(response, action=Action.SCTR_ISSUE.value, relates_to=relates_to)
        response.add_body_element(
            trust.build_rstr_collection(
                [
                    trust.build_rstr(
                        token_type=ns.TokenType.SCT.value,
                        request_type=RequestType.ISSUE,
                        requested_token=token,
                        entropy=issuer_entropy,
                        proof_computed_key=ns.ComputedKeyAlg.PSHA1.value,
                        key_size=256,
                        lifetime=(now, context.expires),
                        attached_reference=wss.str_reference(
                            f"#{token.get(ns.qname(ns.WSU, 'Id'))}"
                        ),
                        unattached_reference=context_reference(context.identifier),
                    )
                ]
            )
        )
        return response


class SctProvider(ContextProvider):
    def issue(self, envelope, addressing, sender, now):
        checked = self.open_asymmetric(envelope, now)
        request = trust.read_rst(body_element(envelope, "wst:RequestSecurityToken"))
        if request.request_type != RequestType.ISSUE:
            raise InvalidRequest("the RequestType does not match the Action")
        if request.token_type != ns.TokenType.SCT.value:
            raise InvalidRequest("an SCT request needs the SCT token type")
        response = self.issue_computed(request, addressing.message_id, now)
        data = self.seal_asymmetric(response, now, p.CertificateRecipient(checked.certificate))
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
