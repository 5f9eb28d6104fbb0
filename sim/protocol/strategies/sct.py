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
from sim.protocol.api import PROVIDER, MessageKind, SessionClosed
from sim.protocol.base import Client, Provider
from sim.protocol.binding import body_element, one_response
from sim.protocol.caches import ContextCache
from sim.protocol.sending import send
from sim.protocol.setup import APP_ACTION, APP_RESPONSE_ACTION, PROVIDER_ADDRESS, Setup, option
from sim.protocol.states import Input, Machine, State, Transition, starts
from sim.wire import ns, sc, soap, trust, wss
from sim.wire.checks import ReplayCache
from sim.wire.ledger import Op
from sim.wire.ns import Action, RequestType, ValueType
from sim.wire.xmlutil import WSU_ID, fragment, fresh_bytes

OPTIONS = {
    "sct_lifetime_s",
    "renew_at",
    "cache_capacity",
    "cache_idle_timeout_s",
    "cancel",
    "derived_keys",
}


#: read once (an Enum member's ``.value`` is a Python-level property; messages use it)
_SCT_VALUE_TYPE = ValueType.SCT.value


@dataclass(slots=True, kw_only=True)
class Context:
    identifier: str
    secret: bytes
    expires: float


def context_reference_text(identifier: str) -> str:
    """The unattached reference to an SCT (its Identifier URI), as text: what a
    DerivedKeyToken embeds; an RST or RSTR parses it."""
    return wss.str_reference_text(identifier, _SCT_VALUE_TYPE)


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


def issued(
    state: State, handler: str, note: str = "renew at once when the issued lifetime is already due"
) -> Transition:
    """The row of a context client given its new context in ``state``: it sends the
    application request, or renews at once when the issued lifetime is already due."""
    return Transition(
        state=state, on=Input.REPLY, handler=handler, to=(State.APP, State.RENEW), note=note
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
        return send(PROVIDER, data, action=APP_ACTION, kind=MessageKind.APP_REQUEST)

    def app_headers(self, now: float) -> list:
        """Header blocks sent encrypted with each application request (none here)."""
        return []

    def _protect(self, envelope, now, headers=()):
        return protect_with(self, self.context, envelope, now, encrypt_tokens=list(headers))

    def _context_request(self, now, request, action: Action, reply: Action, kind: MessageKind):
        """An RST about the context itself (Renew, Cancel), protected with its keys."""
        envelope = soap.new_envelope()
        self.address_request(envelope, action.value, reply.value, to=PROVIDER_ADDRESS)
        target = fragment(context_reference_text(self.context.identifier))
        envelope.add_body_element(trust.build_rst(request, target=target))
        return send(PROVIDER, self._protect(envelope, now), action=action, kind=kind)

    def _renew(self, now):
        request = trust.RequestSecurityToken(
            request_type=RequestType.RENEW, token_type=ns.TokenType.SCT.value
        )
        return self._context_request(
            now, request, Action.SCT_RENEW, Action.SCTR_RENEW, MessageKind.RST_RENEW
        )

    def issue_request(self, entropy: bytes) -> soap.Envelope:
        """An RST for a new context keyed CK/PSHA1 from ``entropy`` and the issuer's (not
        yet protected)."""
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
                    entropy=entropy,
                    computed_key_algorithm=ns.ComputedKeyAlg.PSHA1.value,
                )
            )
        )
        return envelope

    def established_by(self, response, secret: bytes, now: float):
        """The context the RSTR ``response`` hands over, keyed ``secret``: it lives as long as
        the RSTR says (by default, as long as our options say)."""
        token = sc.read_sct(response.requested_token)
        expires = response.lifetime[1] if response.lifetime else now + self.opts.lifetime
        return self.established(token.identifier, secret, expires, now)

    def established_computed(self, response, entropy: bytes, now: float):
        """:meth:`established_by` with the key computed from ``entropy`` and the issuer's."""
        self.ledger.record(Op.P_SHA1, 32)
        secret = crypto.computed_key(entropy, response.entropy, 256)
        return self.established_by(response, secret, now)

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
        response = one_response(envelope)
        if response.lifetime is None:
            raise InvalidRequest("renewal response without a lifetime")
        self.context.expires = response.lifetime[1]
        self.renew_due = now + (response.lifetime[1] - now) * self.opts.renew_at
        return self.start(now)

    def on_cancelled(self, envelope, sender, now):
        self._unprotect(envelope, now)
        response = one_response(envelope)
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
        request = trust.RequestSecurityToken(request_type=RequestType.CANCEL)
        return self._context_request(
            now, request, Action.SCT_CANCEL, Action.SCTR_CANCEL, MessageKind.RST_CANCEL
        )


def issued_rstr(token, issued: Context, now: float, **rstr):
    """The RSTR handing over the new security context ``issued`` (its SCT ``token``),
    referenced by its wsu:Id and by its Identifier."""
    return trust.build_rstr(
        token_type=ns.TokenType.SCT.value,
        request_type=RequestType.ISSUE,
        requested_token=token,
        lifetime=(now, issued.expires),
        attached_reference=fragment(wss.str_reference_text(f"#{token.get(WSU_ID)}")),
        unattached_reference=fragment(context_reference_text(issued.identifier)),
        **rstr,
    )


def protect_with(actor, context: Context, envelope: soap.Envelope, now: float, **extra) -> bytes:
    """``envelope`` protected by ``actor`` (a context client or provider) with keys derived
    from the security context ``context``, named by its Identifier."""
    reference = context_reference_text(context.identifier)
    return actor.seal_symmetric(
        envelope, now, context.secret, lambda: reference, derive=actor.opts.derived_keys, **extra
    )


class SctClient(ContextClient):
    """Establishes the context with an RST/RSTR signed and encrypted with X.509 (bootstrap)."""

    machine: ClassVar[Machine] = Machine(
        [
            starts(State.ISSUE, State.RENEW, State.APP, note=START_NOTE),
            issued(State.ISSUE, "on_issued"),
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
        data = self.seal_asymmetric(self.issue_request(self.entropy), now, self.provider)
        return send(PROVIDER, data, action=Action.SCT_ISSUE, kind=MessageKind.RST_SCT)

    def on_issued(self, envelope, sender, now):
        self.open_asymmetric(envelope, now, signer="provider")
        response = one_response(envelope)
        if (
            response.requested_token is None
            or response.entropy is None
            or response.proof_computed_key != ns.ComputedKeyAlg.PSHA1.value
        ):
            raise InvalidRequest("RSTR lacks the token, the issuer entropy or the computed key")
        return self.established_computed(response, self.entropy, now)


class ContextProvider(Provider):
    """The provider side of a context: application messages, Renew and Cancel. Subclasses
    add how contexts are issued (``issue``)."""

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
        super().__init__(setup, node_id, shared)
        self.opts = self.options_class(setup.options)
        self.contexts = (
            shared
            if shared is not None
            else ContextCache(self.opts.capacity, self.opts.idle_timeout)
        )

    def _context(self, identifier: str, now: float) -> Context:
        context = self.contexts.get(identifier, now, self.ledger)
        if now > context.expires:
            raise RenewNeeded("the security context has expired", check="context")
        return context

    def _unprotect(self, envelope, now, *, app: bool = False) -> Context:
        """Verify a request protected with a context's keys; the context."""
        used: list[Context] = []

        def secret_for(reference):
            if reference.uri is None or reference.value_type not in (None, _SCT_VALUE_TYPE):
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
        data = protect_with(self, context, envelope, now)
        return send(sender, data, action=action, kind=kind, reply=True)

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
                    issued_rstr(
                        token,
                        context,
                        now,
                        entropy=issuer_entropy,
                        proof_computed_key=ns.ComputedKeyAlg.PSHA1.value,
                        key_size=256,
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
        return send(sender, data, action=Action.SCTR_ISSUE, kind=MessageKind.RSTR_SCT, reply=True)
