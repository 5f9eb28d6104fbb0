"""Request/reply binding, checked before any crypto (and the one element a WS-Trust Body
holds): a server serves only its request
Actions and never a reply; a client takes only the reply to the one request it has pending,
with the reply Action, and (once verified) signed over wsa:RelatesTo and wsa:Action.
``sim/protocol/base.py`` applies these in ``Server`` and ``Client``."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from lxml import etree

from sim.errors import FailedCheck, InvalidRequest
from sim.wire import ns, soap, trust
from sim.wire.checks import require_signed
from sim.wire.dsig import VerifiedSignature
from sim.wire.xmlutil import children_by_tag

_ACTION = ns.qname(ns.WSA, "Action")
_RELATES_TO = ns.qname(ns.WSA, "RelatesTo")
_BOUND_HEADERS = {_ACTION: "wsa:Action", _RELATES_TO: "wsa:RelatesTo"}
#: the longest request MessageID a fault repeats as its RelatesTo
MAX_ECHOED_ID = 256


def body_element(envelope: soap.Envelope, what: str) -> etree._Element:
    """The one element the Body of a WS-Trust message holds (``what`` names it), or
    wst:InvalidRequest."""
    children = [child for child in envelope.body if isinstance(child.tag, str)]
    if len(children) != 1:
        raise InvalidRequest(f"the Body must hold one {what}, found {len(children)} elements")
    return children[0]


def one_response(envelope: soap.Envelope) -> trust.RequestSecurityTokenResponse:
    """The one RSTR of a WS-Trust reply's Body (alone or in a collection), or
    wst:InvalidRequest."""
    responses = trust.read_rstr_collection(body_element(envelope, "RSTR or RSTR collection"))
    if len(responses) != 1:
        raise InvalidRequest(f"expected one RSTR, found {len(responses)}")
    return responses[0]


class UncheckedMessage(RuntimeError):
    """A strategy acted on a message without the binding checks of this module (a bug in
    the strategy, never a refusal: it must fail the tests, not become a SOAP fault)."""


def check_request_action(addressing: soap.Addressing, actions: Collection[str]) -> None:
    """Refuse, before any crypto, a message that is not a request this server serves: its
    wsa:Action is not one of ``actions``, or it carries wsa:RelatesTo (it is a reply, e.g. a
    response reflected back to its sender)."""
    if addressing.relates_to is not None:
        raise InvalidRequest("a reply (it carries wsa:RelatesTo) sent as a request", check="action")
    if addressing.action not in actions:
        raise InvalidRequest(f"unsupported action {addressing.action[:100]}", check="action")


def check_reply_to(addressing: soap.Addressing, *, message_id: str, action: str) -> None:
    """Refuse, before any crypto, a reply whose wsa:RelatesTo is not ``message_id`` (the
    request it answers) or whose wsa:Action is not ``action`` (the reply Action expected)."""
    if addressing.relates_to != message_id:
        raise FailedCheck("the reply relates to no request pending here", check="relates-to")
    if addressing.action != action:
        raise FailedCheck(f"unexpected reply action {addressing.action[:100]}", check="action")


def require_reply_signed(envelope: soap.Envelope, verified: VerifiedSignature) -> None:
    """The reply's wsa:RelatesTo and wsa:Action (the headers :func:`check_reply_to` read)
    are themselves covered by its verified signature."""
    found = children_by_tag(envelope.header, _BOUND_HEADERS)
    for tag, what in _BOUND_HEADERS.items():
        element = found.get(tag)
        if element is None:
            raise FailedCheck(f"the reply has no {what}", check="relates-to")
        require_signed(verified, element, what)


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingReply:
    """The one request a client waits on: its MessageID, the reply Action it expects, and
    whether that reply must be signed over wsa:RelatesTo and wsa:Action."""

    message_id: str
    action: str
    signed: bool = True
