"""``sct-spnego``: WCF's wsHttpBinding with Windows credentials and
``establishSecurityContext=true`` (its default). The client gets a ticket for the provider's
service principal from the ``kdc`` (AS and TGS exchanges, tickets kept until they expire),
then negotiates the security context with SPNEGO tunneled in WS-Trust BinaryExchange blobs
(ValueType ``.../trust/spnego``): leg #1, an RST whose NegTokenInit carries the Kerberos
AP-REQ (mutual authentication, a subkey, a GSS checksum binding the wst:Context); leg #2,
an RSTR collection whose first RSTR carries the SCT, the NegTokenResp with the AP-REP (the
acceptor's subkey) and the context's key wrapped under that subkey, and whose second
carries the Authenticator (CombinedHash over the legs). Application messages, Renew,
Cancel and wsc:BadContextToken recovery are ``sct``'s (derived keys from the context).

Option ``mechanism = "ntlm"`` is WCF's fallback when there is no domain controller (a
scenario without a ``kdc`` role gets it, ``sim/engine/scenario.py``): no KDC exchange;
SPNEGO offers NTLM alone and the negotiation takes four legs: the RST with the NEGOTIATE,
an RSTR with the provider's CHALLENGE (the provider keeps the negotiation pending,
``negotiation.Pending``), an RSTR with the client's NTLMv2 AUTHENTICATE (its MIC over the
three messages), then the RSTR collection with the SCT, the context key sealed under the
NTLM session key (GSS_WrapEx) and the Authenticator over the legs."""

from __future__ import annotations

import dataclasses
import hmac
from dataclasses import dataclass
from typing import ClassVar

from lxml import etree

from sim.crypto import krb5
from sim.crypto.krb5 import KeyUsage
from sim.errors import (
    BadContextToken,
    FailedCheck,
    InvalidRequest,
    RenewNeeded,
    SecurityFault,
    UnknownDerivationSource,
)
from sim.protocol.api import KDC, PROVIDER, MessageKind
from sim.protocol.base import PROVIDER_ADDRESS, Setup, body_element, option, send
from sim.protocol.binding import one_response
from sim.protocol.states import Input, Machine, State, Transition
from sim.protocol.strategies import negotiation
from sim.protocol.strategies.kdc import (
    KERBEROS_OPTIONS,
    KerberosClient,
    KerberosOptions,
    kdc_transitions,
    realm,
)
from sim.protocol.strategies.sct import (
    CONTEXT_TRANSITIONS,
    START_NOTE,
    ContextClient,
    ContextProvider,
    SctOptions,
    context_reference_text,
    issued,
)
from sim.protocol.strategies.sct import OPTIONS as SCT_OPTIONS
from sim.wire import kerberos as k
from sim.wire import ns, ntlm, sc, soap, spnego, trust, wss
from sim.wire.kerberos import Principal
from sim.wire.ledger import Op
from sim.wire.ns import Action, RequestType
from sim.wire.xmlutil import WSU_ID, b64, b64_of, fragment, fresh_bytes, new_id

OPTIONS = (
    SCT_OPTIONS
    | KERBEROS_OPTIONS
    | {"mechanism", "max_pending_negotiations", "negotiation_timeout_s"}
)
SPNEGO = ns.SPNEGO_VALUE_TYPE
#: the mechanisms the client offers, Kerberos first (NTLM is WCF's fallback)
MECHANISMS = (spnego.KRB5_OID, spnego.NTLM_OID)


class SpnegoOptions(SctOptions):
    """A context's options, the realm's and the mechanism's."""

    def __init__(self, options) -> None:
        super().__init__(options)
        self.kerberos = KerberosOptions(options)
        self.mechanism = option(options, "mechanism", "kerberos", str, choices=("kerberos", "ntlm"))
        #: NTLM: pending negotiations a provider node keeps at most, and for how long
        self.max_negotiations = option(
            options, "max_pending_negotiations", 1000, int, low=1, high=1_000_000
        )
        self.negotiation_timeout = option(
            options, "negotiation_timeout_s", 60.0, float, low=0.001, high=86_400.0
        )


def resolve(entry, options):
    """The registry entry as the options make it: no ``kdc`` role with NTLM."""
    if SpnegoOptions(options).mechanism == "ntlm":
        servers = {role: server for role, server in entry.servers.items() if role != KDC}
        return dataclasses.replace(entry, servers=servers)
    return entry


def _wrapped_key(cipher: bytes) -> etree._Element:
    """The context key wrapped under the negotiated key, as WCF writes it."""
    return etree.fromstring(
        f'<e:EncryptedKey xmlns:e="{ns.XENC}"><e:EncryptionMethod Algorithm="{ns.SPNEGO_GSS_WRAP}"/>'
        f"<e:CipherData><e:CipherValue>{b64(cipher)}</e:CipherValue></e:CipherData></e:EncryptedKey>"
    )


def _read_wrapped_key(element: etree._Element | None) -> bytes:
    if element is None or element.tag != ns.qname(ns.XENC, "EncryptedKey"):
        raise InvalidRequest("the SPNEGO response carries no wrapped proof key")
    method = element.find(ns.qname(ns.XENC, "EncryptionMethod"))
    if method is None or method.get("Algorithm") != ns.SPNEGO_GSS_WRAP:
        raise InvalidRequest("the proof key is not wrapped with the negotiated key")
    value = element.find(f"{ns.qname(ns.XENC, 'CipherData')}/{ns.qname(ns.XENC, 'CipherValue')}")
    if value is None:
        raise InvalidRequest("the wrapped proof key has no CipherValue")
    return b64_of(value, "xenc:CipherValue")


class SpnegoClient(KerberosClient, ContextClient):
    machine: ClassVar[Machine] = Machine(
        [
            Transition(
                state=State.IDLE,
                on=Input.REQUEST,
                handler="start",
                to=(State.KDC_AS, State.KDC_TGS, State.SPNEGO, State.RENEW, State.APP),
                note=START_NOTE
                + " (kdc-as, kdc-tgs first when a ticket is missing; NTLM: no KDC exchange)",
            ),
            *kdc_transitions((State.SPNEGO,)),
            Transition(
                state=State.SPNEGO,
                on=Input.REPLY,
                handler="on_spnego",
                to=(State.APP, State.RENEW, State.SPNEGO_FINAL),
                note="Kerberos: the context (renew at once when its lifetime is already "
                "due); NTLM: the CHALLENGE, answered by the AUTHENTICATE",
            ),
            issued(
                State.SPNEGO_FINAL,
                "on_ntlm_negotiated",
                note="NTLM: the context; renew at once when its lifetime is already due",
            ),
            *CONTEXT_TRANSITIONS,
        ]
    )
    options_class = SpnegoOptions

    def __init__(self, setup: Setup, client_id: str) -> None:
        super().__init__(setup, client_id)
        self.service = Principal(k.PROVIDER_SERVICE)
        self.legs: list[etree._Element] = []
        self.context_attr: str | None = None
        self.ap_req: tuple[krb5.SessionKey, float] | None = None
        self.ntlm = self.opts.mechanism == "ntlm"
        _, self.password = setup.username(client_id)
        #: NTLM: our NEGOTIATE, then the exported session key
        self.negotiate: bytes | None = None
        self.ntlm_key: bytes | None = None

    def horizon(self) -> float:
        if self.context is not None:
            return self.renew_due
        return float("inf") if self.ntlm else self.ticket_horizon()

    def establish(self, now):
        if self.ntlm:
            self.context_attr = new_id("uuid-")
            self.negotiate = ntlm.build_negotiate()
            token = spnego.build_init((spnego.NTLM_OID,), self.negotiate)
            return self._first_leg(token)
        credentials = self.credentials(self.service, now)
        if isinstance(credentials, list):
            return credentials
        self.context_attr = new_id("uuid-")
        checksum = k.gss_checksum(self.context_attr.encode(), mutual=True)
        _, ap_req = self.new_ap_req(credentials, checksum, now, mutual=True)
        self.ap_req = (credentials.key, now)
        return self._first_leg(spnego.build_init(MECHANISMS, k.gss_frame(k.TOK_AP_REQ, ap_req)))

    def _first_leg(self, token: bytes):
        rst = negotiation.negotiation_rst((token, SPNEGO), self.context_attr)
        self.legs = [negotiation.detached_copy(rst)]
        envelope = soap.new_envelope()
        self.address_request(
            envelope,
            Action.SCT_ISSUE.value,
            (Action.RSTR_ISSUE if self.ntlm else Action.RSTRC_ISSUE_FINAL).value,
            to=PROVIDER_ADDRESS,
            signed=False,  # the mechanism and the Authenticator protect the negotiation
        )
        envelope.add_body_element(rst)
        data = envelope.to_bytes(self.ledger)
        return send(PROVIDER, data, action=Action.SCT_ISSUE.value, kind=MessageKind.RST_SPNEGO)

    def on_spnego(self, envelope, sender, now):
        """Leg #2: Kerberos' last, NTLM's CHALLENGE."""
        if self.ntlm:
            return self.on_challenge(envelope, sender, now)
        return self.on_negotiated(envelope, sender, now)

    def on_challenge(self, envelope, sender, now):
        """NTLM leg #2, the CHALLENGE: answer with the AUTHENTICATE (leg #3)."""
        response = one_response(envelope)
        if response.context != self.context_attr:
            raise InvalidRequest("negotiation message for another context")
        if response.binary_exchange is None or response.binary_exchange[1] != SPNEGO:
            raise InvalidRequest("expected a SPNEGO BinaryExchange")
        answer = spnego.read_resp(response.binary_exchange[0])
        if answer.state != spnego.ACCEPT_INCOMPLETE or answer.mech != spnego.NTLM_OID:
            raise FailedCheck("the SPNEGO negotiation did not continue with NTLM", check="spnego")
        authenticate, self.ntlm_key = ntlm.build_authenticate(
            self.negotiate,
            answer.response_token or b"",
            self.user,
            self.password,
            ledger=self.ledger,
        )
        self.setup.log_key("ntlm-session-key", self.context_attr, self.ntlm_key)
        self.legs.append(negotiation.detached_copy(response.element))
        rstr = trust.build_rstr(
            binary_exchange=(spnego.build_resp(None, None, authenticate), SPNEGO),
            context=self.context_attr,
        )
        self.legs.append(negotiation.detached_copy(rstr))
        envelope = soap.new_envelope()
        self.address_request(
            envelope,
            Action.RSTR_ISSUE.value,
            Action.RSTRC_ISSUE_FINAL.value,
            to=PROVIDER_ADDRESS,
            signed=False,  # the MIC and the Authenticator protect it
        )
        envelope.add_body_element(rstr)
        data = envelope.to_bytes(self.ledger)
        return send(PROVIDER, data, action=Action.RSTR_ISSUE.value, kind=MessageKind.RSTR_SPNEGO)

    def on_ntlm_negotiated(self, envelope, sender, now):
        """NTLM leg #4: the SCT, the sealed key and the Authenticator."""
        first, second = self._final(envelope)
        answer = spnego.read_resp(first.binary_exchange[0])
        if answer.state != spnego.ACCEPT_COMPLETED or answer.mech not in (None, spnego.NTLM_OID):
            raise FailedCheck("the SPNEGO negotiation did not complete with NTLM", check="spnego")
        secret = ntlm.unwrap(
            self.ntlm_key, _read_wrapped_key(first.proof_encrypted_key), self.ledger
        )
        return self._authenticated(first, second, secret, now)

    def _final(self, envelope):
        first, second = negotiation.token_and_authenticator(envelope, "SPNEGO")
        if first.context != self.context_attr or second.context != self.context_attr:
            raise InvalidRequest("negotiation message for another context")
        if first.binary_exchange is None or first.binary_exchange[1] != SPNEGO:
            raise InvalidRequest("expected a SPNEGO BinaryExchange")
        return first, second

    def _authenticated(self, first, second, secret: bytes, now):
        """The context, once the Authenticator over the legs verifies under ``secret``."""
        if len(secret) != 32 or second.authenticator is None:
            raise InvalidRequest("the negotiation gave no 256-bit key or no authenticator")
        self.legs.append(negotiation.detached_copy(first.element))
        expected = negotiation.authenticator(secret, self.legs, self.ledger)
        if not hmac.compare_digest(expected, second.authenticator):
            raise FailedCheck("the SPNEGO authenticator does not match", check="authenticator")
        token = sc.read_sct(first.requested_token).identifier
        expires = first.lifetime[1] if first.lifetime else now + self.opts.lifetime
        self.ap_req = self.ntlm_key = None
        return self.established(token, secret, expires, now)

    def on_negotiated(self, envelope, sender, now):
        """Leg #2: the SCT, the AP-REP, the wrapped key and the Authenticator."""
        first, second = self._final(envelope)
        answer = spnego.read_resp(first.binary_exchange[0])
        if answer.state != spnego.ACCEPT_COMPLETED or answer.mech != spnego.KRB5_OID:
            raise FailedCheck(
                "the SPNEGO negotiation did not complete with Kerberos", check="spnego"
            )
        session_key, sent_at = self.ap_req
        acceptor = k.read_ap_rep(
            k.gss_unframe(answer.response_token or b"", k.TOK_AP_REP),
            session_key,
            sent_at,
            self.ledger,
        )
        if acceptor is None:
            raise FailedCheck("the AP-REP carries no acceptor subkey", check="spnego")
        cipher = _read_wrapped_key(first.proof_encrypted_key)
        self.ledger.record(Op.KRB_DECRYPT, len(cipher))
        try:
            secret = krb5.decrypt(acceptor, KeyUsage.ACCEPTOR_SEAL, cipher)
        except krb5.IntegrityError:
            raise FailedCheck("the wrapped proof key does not decrypt", check="spnego") from None
        return self._authenticated(first, second, secret, now)

    def forget(self, fault: SecurityFault) -> bool:
        if isinstance(fault, (BadContextToken, UnknownDerivationSource, RenewNeeded)):
            self.context = None
            return True
        return self.forget_tickets(fault)


@dataclass(slots=True, kw_only=True)
class _NtlmNegotiation:
    """An NTLM negotiation a provider has sent the CHALLENGE of."""

    negotiate: bytes
    challenge: bytes
    #: the negotiation's RST and RSTR so far, for the Authenticator
    elements: list[etree._Element]


class SpnegoProvider(ContextProvider):
    request_actions = ContextProvider.request_actions | {Action.RSTR_ISSUE.value}
    options_class = SpnegoOptions

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup, node_id, shared)
        self.ntlm = self.opts.mechanism == "ntlm"
        self.keytab = {} if self.ntlm else realm(setup).service_keys(Principal(k.PROVIDER_SERVICE))
        self.pending = negotiation.Pending(
            self.opts.max_negotiations, self.opts.negotiation_timeout
        )

    def issue(self, envelope, addressing, sender, now):
        if addressing.action == Action.RSTR_ISSUE.value and self.ntlm:
            return self._ntlm_finish(envelope, addressing, sender, now)
        if addressing.action != Action.SCT_ISSUE.value:
            raise InvalidRequest(f"unsupported action {addressing.action[:100]}", check="action")
        request = trust.read_rst(body_element(envelope, "wst:RequestSecurityToken"))
        negotiation.check_negotiation_request(request, SPNEGO, "SPNEGO")
        offer = spnego.read_init(request.binary_exchange[0])
        if self.ntlm:
            return self._ntlm_challenge(request, offer, addressing, sender, now)
        if spnego.KRB5_OID not in offer.mech_types or offer.mech_token is None:
            raise FailedCheck("the SPNEGO offer has no Kerberos token", check="spnego")
        accepted = k.accept_ap_req(
            k.gss_unframe(offer.mech_token, k.TOK_AP_REQ),
            self.keytab,
            now=now,
            ledger=self.ledger,
            replay=self.replay,
        )
        k.check_gss_binding(accepted, request.context.encode(), self.ledger)
        enctype = accepted.key.enctype
        acceptor = krb5.random_key(enctype, fresh_bytes(krb5.key_bytes(enctype)))
        ap_rep = k.gss_frame(
            k.TOK_AP_REP, k.build_ap_rep(accepted, acceptor, k.fresh_number(), self.ledger)
        )
        secret = fresh_bytes(32)
        self.ledger.record(Op.KRB_ENCRYPT, len(secret))
        wrapped = krb5.encrypt(
            acceptor, KeyUsage.ACCEPTOR_SEAL, secret, fresh_bytes(krb5.CONFOUNDER_BYTES[enctype])
        )
        token, context = self.new_context(secret, now)
        first = trust.build_rstr(
            token_type=ns.TokenType.SCT.value,
            request_type=RequestType.ISSUE,
            requested_token=token,
            binary_exchange=(
                spnego.build_resp(spnego.ACCEPT_COMPLETED, spnego.KRB5_OID, ap_rep),
                SPNEGO,
            ),
            proof_encrypted_key=_wrapped_key(wrapped),
            lifetime=(now, context.expires),
            context=request.context,
            attached_reference=fragment(wss.str_reference_text(f"#{token.get(WSU_ID)}")),
            unattached_reference=fragment(context_reference_text(context.identifier)),
        )
        elements = [negotiation.detached_copy(request.element), negotiation.detached_copy(first)]
        collection = trust.build_rstr_collection(
            [
                first,
                trust.build_rstr(
                    authenticator=negotiation.authenticator(secret, elements, self.ledger),
                    context=request.context,
                ),
            ]
        )
        reply = soap.new_envelope()
        soap.add_addressing(
            reply, action=Action.RSTRC_ISSUE_FINAL.value, relates_to=addressing.message_id
        )
        reply.add_body_element(collection)
        data = reply.to_bytes(self.ledger)
        return send(
            sender,
            data,
            action=Action.RSTRC_ISSUE_FINAL.value,
            kind=MessageKind.RSTRC_SPNEGO,
            reply=True,
        )

    def _ntlm_challenge(self, request, offer, addressing, sender, now):
        """NTLM leg #2: the CHALLENGE to the client's NEGOTIATE, the negotiation kept."""
        if offer.mech_types[:1] != (spnego.NTLM_OID,) or offer.mech_token is None:
            raise FailedCheck("the SPNEGO offer has no NTLM token", check="spnego")
        ntlm.read_negotiate(offer.mech_token)
        challenge = ntlm.build_challenge(fresh_bytes(8), now)
        rstr = trust.build_rstr(
            binary_exchange=(
                spnego.build_resp(spnego.ACCEPT_INCOMPLETE, spnego.NTLM_OID, challenge),
                SPNEGO,
            ),
            context=request.context,
        )
        state = _NtlmNegotiation(
            negotiate=offer.mech_token,
            challenge=challenge,
            elements=[negotiation.detached_copy(request.element), negotiation.detached_copy(rstr)],
        )
        self.pending.add((sender, request.context), state, now)
        return self._leg_reply(addressing, sender, rstr, Action.RSTR_ISSUE, MessageKind.RSTR_SPNEGO)

    def _ntlm_finish(self, envelope, addressing, sender, now):
        """NTLM leg #4: the AUTHENTICATE accepted (once: the negotiation is forgotten
        whatever the outcome), the SCT, the key sealed under the NTLM session key, the
        Authenticator."""
        response = one_response(envelope)
        key = (sender, response.context or "")
        state = self.pending.peek(key, now)
        # Checked before the negotiation is touched: a leg that is no SPNEGO response (our
        # own CHALLENGE reflected, another blob) leaves it as it was.
        exchange = response.binary_exchange
        if exchange is None or exchange[1] != SPNEGO:
            raise InvalidRequest("expected the client's SPNEGO BinaryExchange", check="negotiation")
        answer = spnego.read_resp(exchange[0])
        token = answer.response_token or b""
        if token[:8] != ntlm.SIGNATURE or token[8:12] != b"\x03\0\0\0":
            raise InvalidRequest("expected the client's NTLM AUTHENTICATE", check="negotiation")
        self.pending.take(key)
        accepted = ntlm.accept_authenticate(
            state.negotiate,
            state.challenge,
            token,
            self.setup.passwords,
            now=now,
            ledger=self.ledger,
        )
        secret = fresh_bytes(32)
        wrapped = ntlm.wrap(accepted.session_key, secret, self.ledger)
        sct, context = self.new_context(secret, now)
        first = trust.build_rstr(
            token_type=ns.TokenType.SCT.value,
            request_type=RequestType.ISSUE,
            requested_token=sct,
            binary_exchange=(spnego.build_resp(spnego.ACCEPT_COMPLETED, None, None), SPNEGO),
            proof_encrypted_key=_wrapped_key(wrapped),
            lifetime=(now, context.expires),
            context=response.context,
            attached_reference=fragment(wss.str_reference_text(f"#{sct.get(WSU_ID)}")),
            unattached_reference=fragment(context_reference_text(context.identifier)),
        )
        elements = [
            *state.elements,
            negotiation.detached_copy(response.element),
            negotiation.detached_copy(first),
        ]
        collection = trust.build_rstr_collection(
            [
                first,
                trust.build_rstr(
                    authenticator=negotiation.authenticator(secret, elements, self.ledger),
                    context=response.context,
                ),
            ]
        )
        return self._leg_reply(
            addressing, sender, collection, Action.RSTRC_ISSUE_FINAL, MessageKind.RSTRC_SPNEGO
        )

    def _leg_reply(self, addressing, sender, body, action: Action, kind: MessageKind):
        """A negotiation leg: plain SOAP (the mechanism and the Authenticator protect it)."""
        reply = soap.new_envelope()
        soap.add_addressing(reply, action=action.value, relates_to=addressing.message_id)
        reply.add_body_element(body)
        return send(sender, reply.to_bytes(self.ledger), action=action.value, kind=kind, reply=True)
