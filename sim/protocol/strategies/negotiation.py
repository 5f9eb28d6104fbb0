"""What the negotiated security contexts share (``sct-tlsnego``, ``sct-spnego``): the RST
that opens a negotiation and its checks, the final RSTR collection, and the Authenticator
(CombinedHash) over the negotiation's messages, kept as detached copies, and the provider's
table of the negotiations in progress (``Pending``)."""

from __future__ import annotations

from collections import OrderedDict

from lxml import etree

from sim.errors import InvalidRequest, RequestFailed
from sim.protocol.binding import body_element
from sim.wire import dsig, ns, soap, trust
from sim.wire.ledger import Ledger, Op
from sim.wire.ns import RequestType


def negotiation_rst(exchange: tuple[bytes, str], context: str) -> etree._Element:
    """The RST opening a negotiated security context (TLSNego, SPNEGO): the first
    BinaryExchange blob (its bytes and ValueType), under the negotiation's wst:Context."""
    return trust.build_rst(
        trust.RequestSecurityToken(
            request_type=RequestType.ISSUE,
            token_type=ns.TokenType.SCT.value,
            binary_exchange=exchange,
            context=context,
        )
    )


def check_negotiation_request(request, value_type: str, what: str) -> None:
    """The RST opening a negotiation named ``what`` is an Issue request carrying a
    BinaryExchange of ``value_type`` and a wst:Context, or wst:InvalidRequest."""
    if (
        request.request_type != RequestType.ISSUE
        or request.binary_exchange is None
        or request.binary_exchange[1] != value_type
        or not request.context
    ):
        raise InvalidRequest(f"{what} needs an Issue request, a BinaryExchange and a Context")


def token_and_authenticator(envelope: soap.Envelope, what: str) -> tuple:
    """The final RSTR collection of a negotiation named ``what`` (TLSNego, SPNEGO): the
    RSTR carrying the SCT, then the one carrying the Authenticator."""
    responses = trust.read_rstr_collection(
        body_element(envelope, "wst:RequestSecurityTokenResponse")
    )
    if len(responses) != 2 or responses[0].requested_token is None:
        raise InvalidRequest(
            f"the final {what} response is a collection of token and authenticator"
        )
    return tuple(responses)


def authenticator(key: bytes, elements: list[etree._Element], ledger: Ledger) -> bytes:
    """The Authenticator: the CombinedHash of the negotiation's messages, keyed with the
    negotiated ``key`` (the C14N of each charged)."""
    for el in elements:
        ledger.record(Op.C14N, len(dsig.canonical(el)))  # a typed fault if none exists
    ledger.record(Op.P_SHA1, 32)
    return trust.combined_hash(key, elements)


def detached_copy(el: etree._Element) -> etree._Element:
    """A detached copy of ``el`` (its tail, text after it in the parent, left behind)."""
    return etree.fromstring(etree.tostring(el, with_tail=False))


class Pending:
    """The negotiations a provider node has answered a leg of and waits to finish, by (the
    node that started one, its wst:Context): bounded in number and in age, and one
    client's legs never reach another's."""

    def __init__(self, capacity: int, timeout: float) -> None:
        self.capacity = capacity
        self.timeout = timeout
        self.entries: OrderedDict[tuple[str, str], tuple[float, object]] = OrderedDict()

    def _expire(self, now: float) -> None:
        """Forget the negotiations older than the timeout (the oldest come first)."""
        while self.entries:
            started, _ = next(iter(self.entries.values()))
            if now - started <= self.timeout:
                break
            self.entries.popitem(last=False)

    def admit(self, key: tuple[str, str], now: float) -> None:
        """Refuse a new negotiation ``key`` when one with that Context is in progress
        (wst:InvalidRequest) or too many are (wst:RequestFailed)."""
        self._expire(now)
        if key in self.entries:
            raise InvalidRequest(
                "a negotiation with this Context is in progress", check="negotiation"
            )
        if len(self.entries) >= self.capacity:
            # Refuse the newcomer rather than evict a negotiation in progress: a flood then
            # costs its senders their own attempts, not the clients already negotiating.
            raise RequestFailed("too many negotiations in progress", check="negotiations")

    def add(self, key: tuple[str, str], state: object, now: float) -> None:
        """Keep ``state`` for a new negotiation ``key``, or refuse it (:meth:`admit`)."""
        self.admit(key, now)
        self.entries[key] = (now, state)

    def peek(self, key: tuple[str, str], now: float) -> object:
        """The state of negotiation ``key``, left in place, or wst:InvalidRequest."""
        self._expire(now)
        found = self.entries.get(key)
        if found is None:
            raise InvalidRequest("no negotiation in progress for this context", check="negotiation")
        return found[1]

    def take(self, key: tuple[str, str]) -> None:
        """Forget negotiation ``key``: its next leg is answered once, whatever the outcome."""
        self.entries.pop(key, None)
