"""SPNEGO (RFC 4178) tokens: the initiator's NegTokenInit inside the GSS InitialContextToken
(mechanism OID 1.3.6.1.5.5.2), and the NegTokenResp of every later leg, in DER."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from asn1crypto import core, parser

from sim.errors import InvalidSecurityToken

SPNEGO_OID = "1.3.6.1.5.5.2"
KRB5_OID = "1.2.840.113554.1.2.2"
#: the OID Windows offers first for Kerberos (a historical misencoding of the one above)
MS_KRB5_OID = "1.2.840.48018.1.2.2"
NTLM_OID = "1.3.6.1.4.1.311.2.2.10"
ACCEPT_COMPLETED, ACCEPT_INCOMPLETE, REJECT = 0, 1, 2

_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)


class _MechTypes(core.SequenceOf):
    _child_spec = core.ObjectIdentifier


class _NegState(core.Enumerated):
    _map: ClassVar[dict[int, str]] = {
        0: "accept-completed",
        1: "accept-incomplete",
        2: "reject",
        3: "request-mic",
    }


_STATES = {name: number for number, name in _NegState._map.items()}


class _NegTokenInit(core.Sequence):
    _fields: ClassVar[list] = [
        ("mechTypes", _MechTypes, {"explicit": 0}),
        ("reqFlags", core.BitString, {"explicit": 1, "optional": True}),
        ("mechToken", core.OctetString, {"explicit": 2, "optional": True}),
        ("mechListMIC", core.OctetString, {"explicit": 3, "optional": True}),
    ]


class _NegTokenResp(core.Sequence):
    _fields: ClassVar[list] = [
        ("negState", _NegState, {"explicit": 0, "optional": True}),
        ("supportedMech", core.ObjectIdentifier, {"explicit": 1, "optional": True}),
        ("responseToken", core.OctetString, {"explicit": 2, "optional": True}),
        ("mechListMIC", core.OctetString, {"explicit": 3, "optional": True}),
    ]


@dataclass(frozen=True, slots=True)
class NegTokenInit:
    mech_types: tuple[str, ...]
    mech_token: bytes | None


@dataclass(frozen=True, slots=True)
class NegTokenResp:
    state: int | None
    mech: str | None
    response_token: bytes | None


def _header(class_: int, method: int, tag: int, contents: bytes) -> bytes:
    length = len(contents)
    if length < 0x80:
        encoded = bytes([length])
    else:
        body = length.to_bytes((length.bit_length() + 7) // 8, "big")
        encoded = bytes([0x80 | len(body)]) + body
    return bytes([(class_ << 6) | (method << 5) | tag]) + encoded + contents


def build_init(mech_types: tuple[str, ...], mech_token: bytes | None) -> bytes:
    """The initiator's first token: [APPLICATION 0] { SPNEGO OID, [0] NegTokenInit }."""
    fields: dict = {"mechTypes": list(mech_types)}
    if mech_token is not None:
        fields["mechToken"] = mech_token
    inner = _header(2, 1, 0, _NegTokenInit(fields).dump())
    return _header(1, 1, 0, core.ObjectIdentifier(SPNEGO_OID).dump() + inner)


def build_resp(state: int | None, mech: str | None, response_token: bytes | None) -> bytes:
    """A later leg: [1] NegTokenResp."""
    fields: dict = {}
    if state is not None:
        fields["negState"] = state
    if mech is not None:
        fields["supportedMech"] = mech
    if response_token is not None:
        fields["responseToken"] = response_token
    return _header(2, 1, 1, _NegTokenResp(fields).dump())


def read_init(token: bytes) -> NegTokenInit:
    """The NegTokenInit of an initiator's first token, or a typed fault."""
    try:
        class_, method, tag, _, body, _ = parser.parse(bytes(token), strict=True)
        if (class_, method, tag) != (1, 1, 0):
            raise ValueError("not a GSS InitialContextToken")
        oid = core.ObjectIdentifier.load(body[: 2 + body[1]], strict=True)
        if oid.dotted != SPNEGO_OID:
            raise ValueError("not the SPNEGO mechanism")
        class_, method, tag, _, inner, _ = parser.parse(body[2 + body[1] :], strict=True)
        if (class_, method, tag) != (2, 1, 0):
            raise ValueError("not a NegTokenInit")
        value = _NegTokenInit.load(inner, strict=True)
        mechs = tuple(oid.dotted for oid in value["mechTypes"])
        mech_token = value["mechToken"].native
    except _PARSE_ERRORS as exc:
        raise InvalidSecurityToken(
            f"malformed SPNEGO token: {str(exc)[:80]}", check="spnego"
        ) from None
    return NegTokenInit(mechs, mech_token)


def read_resp(token: bytes) -> NegTokenResp:
    """A NegTokenResp, or a typed fault."""
    try:
        class_, method, tag, _, inner, _ = parser.parse(bytes(token), strict=True)
        if (class_, method, tag) != (2, 1, 1):
            raise ValueError("not a NegTokenResp")
        value = _NegTokenResp.load(inner, strict=True)
        state = value["negState"]
        mech = value["supportedMech"]
        result = NegTokenResp(
            None if state.native is None else _STATES[state.native],
            None if mech.native is None else mech.dotted,
            value["responseToken"].native,
        )
    except _PARSE_ERRORS as exc:
        raise InvalidSecurityToken(
            f"malformed SPNEGO token: {str(exc)[:80]}", check="spnego"
        ) from None
    return result
