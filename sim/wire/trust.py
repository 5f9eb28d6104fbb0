"""WS-Trust 1.3: RequestSecurityToken, RequestSecurityTokenResponse and their collection."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

import sim.crypto as crypto
from sim.errors import InvalidRequest
from sim.wire import ns
from sim.wire.ns import BinarySecretType, EncodingType, KeyType, RequestType
from sim.wire.wss import STR, TokenReference, read_str
from sim.wire.xmlutil import (
    b64,
    b64_of,
    faults_as,
    format_time,
    one_child,
    parse_int,
    parse_time,
    sub,
    text_of,
    whole_text,
)

WST = ns.WST
RST = ns.qname(WST, "RequestSecurityToken")
RSTR = ns.qname(WST, "RequestSecurityTokenResponse")
RSTRC = ns.qname(WST, "RequestSecurityTokenResponseCollection")


def _q(local: str) -> str:
    return ns.qname(WST, local)


def _applies_to(parent: etree._Element, address: str) -> None:
    applies = sub(parent, ns.qname(ns.WSP, "AppliesTo"), nsmap={"wsp": ns.WSP})
    epr = sub(applies, ns.qname(ns.WSA, "EndpointReference"), nsmap={"a": ns.WSA})
    sub(epr, ns.qname(ns.WSA, "Address"), text=address)


def _read_applies_to(parent: etree._Element) -> str | None:
    applies = one_child(parent, ns.qname(ns.WSP, "AppliesTo"), "wsp:AppliesTo", required=False)
    if applies is None:
        return None
    epr = one_child(
        applies, ns.qname(ns.WSA, "EndpointReference"), "wsp:AppliesTo/wsa:EndpointReference"
    )
    address = one_child(epr, ns.qname(ns.WSA, "Address"), "wsp:AppliesTo//wsa:Address")
    text = whole_text(address, "wsp:AppliesTo//wsa:Address")
    if not text:
        raise InvalidRequest("wsp:AppliesTo has no endpoint address")
    return text


def _binary_secret(parent, secret: bytes, kind: BinarySecretType) -> None:
    sub(parent, _q("BinarySecret"), {"Type": kind.value}, text=b64(secret))


def _read_binary_secret(parent, what: str) -> bytes | None:
    el = one_child(parent, _q("BinarySecret"), f"{what}/wst:BinarySecret", required=False)
    return None if el is None else b64_of(el, f"{what}/wst:BinarySecret")


def _lifetime(parent, created: float, expires: float) -> None:
    life = sub(parent, _q("Lifetime"))
    sub(life, ns.qname(ns.WSU, "Created"), text=format_time(created), nsmap={"u": ns.WSU})
    sub(life, ns.qname(ns.WSU, "Expires"), text=format_time(expires), nsmap={"u": ns.WSU})


def _read_lifetime(parent) -> tuple[float, float] | None:
    life = one_child(parent, _q("Lifetime"), "wst:Lifetime", required=False)
    if life is None:
        return None
    created = parse_time(
        text_of(life, ns.qname(ns.WSU, "Created"), "wst:Lifetime/wsu:Created"),
        "wst:Lifetime/wsu:Created",
    )
    expires = parse_time(
        text_of(life, ns.qname(ns.WSU, "Expires"), "wst:Lifetime/wsu:Expires"),
        "wst:Lifetime/wsu:Expires",
    )
    if expires < created:
        raise InvalidRequest("wst:Lifetime expires before it starts")
    return created, expires


def _binary_exchange(parent, blob: bytes, value_type: str) -> None:
    sub(
        parent,
        _q("BinaryExchange"),
        {"ValueType": value_type, "EncodingType": EncodingType.BASE64.value},
        text=b64(blob),
    )


def _read_binary_exchange(parent) -> tuple[bytes, str] | None:
    el = one_child(parent, _q("BinaryExchange"), "wst:BinaryExchange", required=False)
    if el is None:
        return None
    return b64_of(el, "wst:BinaryExchange"), el.get("ValueType") or ""


def _one_element(holder: etree._Element, what: str) -> etree._Element:
    """The one element ``holder`` wraps (a token, a key, a party): another element, a
    comment or text beside it is refused, never skipped."""
    if (
        len(holder) != 1
        or not isinstance(holder[0].tag, str)
        or (holder.text or "").strip()
        or (holder[0].tail or "").strip()
    ):
        raise InvalidRequest(f"{what} must hold exactly one element and nothing else")
    return holder[0]


#: The largest wst:KeySize read (bits): bigger than any key a suite uses.
MAX_KEY_SIZE = 4096


# --- RequestSecurityToken --------------------------------------------------------------


@dataclass(frozen=True)
class RequestSecurityToken:
    request_type: RequestType
    token_type: str | None = None
    applies_to: str | None = None
    key_type: KeyType | None = None
    key_size: int | None = None
    entropy: bytes | None = None
    computed_key_algorithm: str | None = None
    use_key: etree._Element | None = None
    lifetime: tuple[float, float] | None = None
    on_behalf_of: etree._Element | None = None
    act_as: etree._Element | None = None
    target: TokenReference | None = None
    binary_exchange: tuple[bytes, str] | None = None
    context: str | None = None
    element: etree._Element | None = None


_TARGETS = {
    RequestType.RENEW: "RenewTarget",
    RequestType.CANCEL: "CancelTarget",
    RequestType.VALIDATE: "ValidateTarget",
}


def build_rst(
    request: RequestSecurityToken, *, target: etree._Element | None = None
) -> etree._Element:
    """The wst:RequestSecurityToken element for ``request``.

    ``target`` is the STR element for RenewTarget / CancelTarget / ValidateTarget (the
    parsed ``request.target`` and ``request.element`` are ignored).
    """
    rst = etree.Element(RST, nsmap={"trust": WST})
    if request.context:
        rst.set("Context", request.context)
    if request.token_type:
        sub(rst, _q("TokenType"), text=request.token_type)
    sub(rst, _q("RequestType"), text=RequestType(request.request_type).value)
    if request.applies_to:
        _applies_to(rst, request.applies_to)
    if request.lifetime:
        _lifetime(rst, *request.lifetime)
    if request.key_type:
        sub(rst, _q("KeyType"), text=KeyType(request.key_type).value)
    if request.key_size:
        sub(rst, _q("KeySize"), text=str(request.key_size))
    if request.entropy is not None:
        _binary_secret(sub(rst, _q("Entropy")), request.entropy, BinarySecretType.NONCE)
    if request.computed_key_algorithm:
        sub(rst, _q("ComputedKeyAlgorithm"), text=request.computed_key_algorithm)
    for local, value in (
        ("UseKey", request.use_key),
        ("OnBehalfOf", request.on_behalf_of),
        ("ActAs", request.act_as),
    ):
        if value is not None:
            sub(rst, _q(local)).append(value)
    if target is not None:
        sub(rst, _q(_TARGETS[RequestType(request.request_type)])).append(target)
    if request.binary_exchange is not None:
        _binary_exchange(rst, *request.binary_exchange)
    return rst


@faults_as(InvalidRequest)
def read_rst(rst: etree._Element) -> RequestSecurityToken:
    """Parse a wst:RequestSecurityToken; anything malformed is wst:InvalidRequest."""
    if rst.tag != RST:
        raise InvalidRequest(f"expected wst:RequestSecurityToken, got {rst.tag}")
    try:
        request_type = RequestType(text_of(rst, _q("RequestType"), "wst:RequestType"))
    except ValueError:
        raise InvalidRequest("unknown wst:RequestType") from None
    key_type_text = text_of(rst, _q("KeyType"), "wst:KeyType", required=False)
    try:
        key_type = KeyType(key_type_text) if key_type_text else None
    except ValueError:
        raise InvalidRequest(f"unknown wst:KeyType {key_type_text!r}") from None
    key_size_text = text_of(rst, _q("KeySize"), "wst:KeySize", required=False)
    key_size = (
        None
        if key_size_text is None
        else parse_int(key_size_text, "wst:KeySize", low=1, high=MAX_KEY_SIZE)
    )
    entropy_el = one_child(rst, _q("Entropy"), "wst:Entropy", required=False)
    target = None
    if request_type in _TARGETS:
        holder = one_child(rst, _q(_TARGETS[request_type]), f"wst:{_TARGETS[request_type]}")
        target = read_str(one_child(holder, STR, "wsse:SecurityTokenReference"))

    def held(local: str):
        el = one_child(rst, _q(local), f"wst:{local}", required=False)
        if el is None:
            return None
        return _one_element(el, f"wst:{local}")

    return RequestSecurityToken(
        request_type=request_type,
        token_type=text_of(rst, _q("TokenType"), "wst:TokenType", required=False),
        applies_to=_read_applies_to(rst),
        key_type=key_type,
        key_size=key_size,
        entropy=_read_binary_secret(entropy_el, "wst:Entropy") if entropy_el is not None else None,
        computed_key_algorithm=text_of(
            rst, _q("ComputedKeyAlgorithm"), "wst:ComputedKeyAlgorithm", required=False
        ),
        use_key=held("UseKey"),
        lifetime=_read_lifetime(rst),
        on_behalf_of=held("OnBehalfOf"),
        act_as=held("ActAs"),
        target=target,
        binary_exchange=_read_binary_exchange(rst),
        context=rst.get("Context"),
        element=rst,
    )


# --- RequestSecurityTokenResponse ------------------------------------------------------


@dataclass(frozen=True)
class RequestSecurityTokenResponse:
    token_type: str | None = None
    request_type: RequestType | None = None
    key_type: KeyType | None = None
    key_size: int | None = None
    requested_token: etree._Element | None = None
    proof_secret: bytes | None = None
    proof_encrypted_key: etree._Element | None = None
    proof_computed_key: str | None = None
    entropy: bytes | None = None
    lifetime: tuple[float, float] | None = None
    applies_to: str | None = None
    attached_reference: TokenReference | None = None
    unattached_reference: TokenReference | None = None
    authenticator: bytes | None = None
    binary_exchange: tuple[bytes, str] | None = None
    cancelled: bool = False
    context: str | None = None
    element: etree._Element | None = None


def build_rstr(
    *,
    token_type: str | None = None,
    request_type: RequestType | None = None,
    key_type: KeyType | None = None,
    key_size: int | None = None,
    requested_token: etree._Element | None = None,
    proof_secret: bytes | None = None,
    proof_encrypted_key: etree._Element | None = None,
    proof_computed_key: str | None = None,
    entropy: bytes | None = None,
    lifetime: tuple[float, float] | None = None,
    applies_to: str | None = None,
    attached_reference: etree._Element | None = None,
    unattached_reference: etree._Element | None = None,
    authenticator: bytes | None = None,
    binary_exchange: tuple[bytes, str] | None = None,
    cancelled: bool = False,
    context: str | None = None,
) -> etree._Element:
    """A wst:RequestSecurityTokenResponse; references are STR elements."""
    rstr = etree.Element(RSTR, nsmap={"trust": WST})
    if context:
        rstr.set("Context", context)
    if lifetime:
        _lifetime(rstr, *lifetime)
    if applies_to:
        _applies_to(rstr, applies_to)
    if requested_token is not None:
        sub(rstr, _q("RequestedSecurityToken")).append(requested_token)
    if proof_secret is not None or proof_encrypted_key is not None or proof_computed_key:
        proof = sub(rstr, _q("RequestedProofToken"))
        if proof_secret is not None:
            _binary_secret(proof, proof_secret, BinarySecretType.SYMMETRIC_KEY)
        elif proof_encrypted_key is not None:
            proof.append(proof_encrypted_key)
        else:
            sub(proof, _q("ComputedKey"), text=proof_computed_key)
    if entropy is not None:
        _binary_secret(sub(rstr, _q("Entropy")), entropy, BinarySecretType.NONCE)
    if attached_reference is not None:
        sub(rstr, _q("RequestedAttachedReference")).append(attached_reference)
    if unattached_reference is not None:
        sub(rstr, _q("RequestedUnattachedReference")).append(unattached_reference)
    if authenticator is not None:
        sub(sub(rstr, _q("Authenticator")), _q("CombinedHash"), text=b64(authenticator))
    if binary_exchange is not None:
        _binary_exchange(rstr, *binary_exchange)
    if cancelled:
        sub(rstr, _q("RequestedTokenCancelled"))
    if token_type:
        sub(rstr, _q("TokenType"), text=token_type)
    if request_type:
        sub(rstr, _q("RequestType"), text=RequestType(request_type).value)
    if key_type:
        sub(rstr, _q("KeyType"), text=KeyType(key_type).value)
    if key_size:
        sub(rstr, _q("KeySize"), text=str(key_size))
    return rstr


def build_rstr_collection(responses: Sequence[etree._Element]) -> etree._Element:
    collection = etree.Element(RSTRC, nsmap={"trust": WST})
    for response in responses:
        collection.append(response)
    return collection


@faults_as(InvalidRequest)
def read_rstr(rstr: etree._Element) -> RequestSecurityTokenResponse:
    """Parse a wst:RequestSecurityTokenResponse (the issued token kept as an opaque element)."""
    if rstr.tag != RSTR:
        raise InvalidRequest(f"expected wst:RequestSecurityTokenResponse, got {rstr.tag}")
    token_holder = one_child(
        rstr, _q("RequestedSecurityToken"), "wst:RequestedSecurityToken", required=False
    )
    token = None
    if token_holder is not None:
        token = _one_element(token_holder, "wst:RequestedSecurityToken")
    proof = one_child(rstr, _q("RequestedProofToken"), "wst:RequestedProofToken", required=False)
    proof_secret = proof_ek = proof_ck = None
    if proof is not None:
        proof_secret = _read_binary_secret(proof, "wst:RequestedProofToken")
        proof_ek = one_child(
            proof, ns.qname(ns.XENC, "EncryptedKey"), "xenc:EncryptedKey", required=False
        )
        proof_ck = text_of(proof, _q("ComputedKey"), "wst:ComputedKey", required=False)
        if (proof_secret is not None) + (proof_ek is not None) + (proof_ck is not None) != 1:
            raise InvalidRequest("wst:RequestedProofToken must hold exactly one proof")
    entropy_el = one_child(rstr, _q("Entropy"), "wst:Entropy", required=False)

    def reference(local: str) -> TokenReference | None:
        holder = one_child(rstr, _q(local), f"wst:{local}", required=False)
        if holder is None:
            return None
        return read_str(one_child(holder, STR, f"wst:{local}/wsse:SecurityTokenReference"))

    authenticator = one_child(rstr, _q("Authenticator"), "wst:Authenticator", required=False)
    combined = None
    if authenticator is not None:
        combined = b64_of(
            one_child(authenticator, _q("CombinedHash"), "wst:CombinedHash"), "wst:CombinedHash"
        )
    request_type_text = text_of(rstr, _q("RequestType"), "wst:RequestType", required=False)
    key_type_text = text_of(rstr, _q("KeyType"), "wst:KeyType", required=False)
    key_size_text = text_of(rstr, _q("KeySize"), "wst:KeySize", required=False)
    key_size = (
        None
        if key_size_text is None
        else parse_int(key_size_text, "wst:KeySize", low=1, high=MAX_KEY_SIZE)
    )
    try:
        request_type = RequestType(request_type_text) if request_type_text else None
        key_type = KeyType(key_type_text) if key_type_text else None
    except ValueError:
        raise InvalidRequest("unknown wst:RequestType or wst:KeyType in the RSTR") from None
    return RequestSecurityTokenResponse(
        token_type=text_of(rstr, _q("TokenType"), "wst:TokenType", required=False),
        request_type=request_type,
        key_type=key_type,
        key_size=key_size,
        requested_token=token,
        proof_secret=proof_secret,
        proof_encrypted_key=proof_ek,
        proof_computed_key=proof_ck,
        entropy=_read_binary_secret(entropy_el, "wst:Entropy") if entropy_el is not None else None,
        lifetime=_read_lifetime(rstr),
        applies_to=_read_applies_to(rstr),
        attached_reference=reference("RequestedAttachedReference"),
        unattached_reference=reference("RequestedUnattachedReference"),
        authenticator=combined,
        binary_exchange=_read_binary_exchange(rstr),
        cancelled=one_child(
            rstr, _q("RequestedTokenCancelled"), "wst:RequestedTokenCancelled", required=False
        )
        is not None,
        context=rstr.get("Context"),
        element=rstr,
    )


@faults_as(InvalidRequest)
def read_rstr_collection(el: etree._Element) -> list[RequestSecurityTokenResponse]:
    """The responses of an RSTR collection, or the single RSTR given directly."""
    if el.tag == RSTR:
        return [read_rstr(el)]
    if el.tag != RSTRC:
        raise InvalidRequest(f"expected an RSTR or RSTR collection, got {el.tag}")
    responses = [read_rstr(child) for child in el if isinstance(child.tag, str)]
    if not responses:
        raise InvalidRequest("empty RSTR collection")
    return responses


def combined_hash(key: bytes, negotiation: Sequence[etree._Element]) -> bytes:
    """TLSNego Authenticator: P_SHA1(key, "AUTH-HASH" || SHA1(exc-C14N of the messages))."""
    digest = hashlib.sha1(b"".join(crypto.exc_c14n(el) for el in negotiation)).digest()
    return crypto.p_sha1(key, ns.AUTH_HASH_LABEL + digest, 32)
