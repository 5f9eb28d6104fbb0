"""``sct-spnego``: WCF's wsHttpBinding with Windows credentials and
``establishSecurityContext=true`` (its default). The client gets a ticket for the provider's
service principal from the ``kdc`` (AS and TGS exchanges, tickets kept until they expire),
then negotiates the security context with SPNEGO tunneled in WS-Trust BinaryExchange blobs
(ValueType ``.../trust/spnego``): leg #1, an RST whose NegTokenInit carries the Kerberos
AP-REQ (mutual authentication, a subkey, a GSS checksum binding the wst:Context); leg #2,
an RSTR collection whose first RSTR carries the SCT, the NegTokenResp with the AP-REP (the
acceptor's subkey) and the context's key wrapped under that subkey, and whose second
carries the Authenticator (CombinedHash over the legs). Application messages, Renew,
Cancel and wsc:BadContextToken recovery are ``sct``'s (derived keys from the context)."""

from __future__ import annotations

import hmac
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
from sim.protocol.api import PROVIDER, MessageKind
from sim.protocol.base import PROVIDER_ADDRESS, Setup, body_element, send
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
)
from sim.protocol.strategies.sct import OPTIONS as SCT_OPTIONS
from sim.wire import kerberos as k
from sim.wire import ns, sc, soap, spnego, trust, wss
from sim.wire.kerberos import Principal
from sim.wire.ledger import Op
from sim.wire.ns import Action, RequestType
from sim.wire.xmlutil import WSU_ID, b64, b64_of, fragment, fresh_bytes, new_id

OPTIONS = SCT_OPTIONS | KERBEROS_OPTIONS
SPNEGO = ns.SPNEGO_VALUE_TYPE
#: the mechanisms the client offers, Kerberos first (NTLM is WCF's fallback)
MECHANISMS = (spnego.KRB5_OID, spnego.NTLM_OID)


class SpnegoOptions(SctOptions):
    """A context's options and the realm's."""

    def __init__(self, options) -> None:
        super().__init__(options)
        self.kerberos = KerberosOptions(options)


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
                note=START_NOTE + " (kdc-as, kdc-tgs first when a ticket is missing)",
            ),
            *kdc_transitions((State.SPNEGO,)),
            Transition(
                state=State.SPNEGO,
                on=Input.REPLY,
                handler="on_negotiated",
                to=(State.APP, State.RENEW),
                note="renew at once when the issued lifetime is already due",
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

    def horizon(self) -> float:
        return self.renew_due if self.context is not None else self.ticket_horizon()

    def establish(self, now):
        credentials = self.credentials(self.service, now)
        if isinstance(credentials, list):
            return credentials
        self.context_attr = new_id("uuid-")
        subkey = krb5.random_key(
            self.realm.enctype, fresh_bytes(krb5.key_bytes(self.realm.enctype))
        )
        ap_req = k.build_ap_req(
            credentials.ticket,
            credentials.key,
            self.principal,
            now=now,
            ledger=self.ledger,
            checksum=k.gss_checksum(self.context_attr.encode(), mutual=True),
            subkey=subkey,
            seq_number=k.fresh_number(),
            mutual=True,
        )
        self.ap_req = (credentials.key, now)
        token = spnego.build_init(MECHANISMS, k.gss_frame(k.TOK_AP_REQ, ap_req))
        rst = negotiation.negotiation_rst((token, SPNEGO), self.context_attr)
        self.legs = [negotiation.detached_copy(rst)]
        envelope = soap.new_envelope()
        self.address_request(
            envelope,
            Action.SCT_ISSUE.value,
            Action.RSTRC_ISSUE_FINAL.value,
            to=PROVIDER_ADDRESS,
            signed=False,  # Kerberos mutual authentication and the Authenticator protect it
        )
        envelope.add_body_element(rst)
        data = envelope.to_bytes(self.ledger)
        return send(PROVIDER, data, action=Action.SCT_ISSUE.value, kind=MessageKind.RST_SPNEGO)

    def on_negotiated(self, envelope, sender, now):
        """Leg #2: the SCT, the AP-REP, the wrapped key and the Authenticator."""
        responses = negotiation.token_and_authenticator(envelope, "SPNEGO")
        first, second = responses
        if first.context != self.context_attr or second.context != self.context_attr:
            raise InvalidRequest("negotiation message for another context")
        if first.binary_exchange is None or first.binary_exchange[1] != SPNEGO:
            raise InvalidRequest("expected a SPNEGO BinaryExchange")
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
        if len(secret) != 32 or second.authenticator is None:
            raise InvalidRequest("the negotiation gave no 256-bit key or no authenticator")
        self.legs.append(negotiation.detached_copy(first.element))
        expected = negotiation.authenticator(secret, self.legs, self.ledger)
        if not hmac.compare_digest(expected, second.authenticator):
            raise FailedCheck("the SPNEGO authenticator does not match", check="authenticator")
        token = sc.read_sct(first.requested_token).identifier
        expires = first.lifetime[1] if first.lifetime else now + self.opts.lifetime
        self.ap_req = None
        return self.established(token, secret, expires, now)

    def forget(self, fault: SecurityFault) -> bool:
        if isinstance(fault, (BadContextToken, UnknownDerivationSource, RenewNeeded)):
            self.context = None
            return True
        return self.forget_tickets(fault)


class SpnegoProvider(ContextProvider):
    options_class = SpnegoOptions

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup, node_id, shared)
        self.keytab = realm(setup).service_keys(Principal(k.PROVIDER_SERVICE))

    def issue(self, envelope, addressing, sender, now):
        if addressing.action != Action.SCT_ISSUE.value:
            raise InvalidRequest(f"unsupported action {addressing.action[:100]}", check="action")
        request = trust.read_rst(body_element(envelope, "wst:RequestSecurityToken"))
        negotiation.check_negotiation_request(request, SPNEGO, "SPNEGO")
        offer = spnego.read_init(request.binary_exchange[0])
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
