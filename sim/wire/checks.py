"""Receiver checks shared by every engine: replay cache and the "what you consume is what
was signed" rules that defeat XML Signature Wrapping."""

from __future__ import annotations

from collections import OrderedDict

from lxml import etree

from sim.errors import FailedCheck, InvalidSecurity
from sim.wire.dsig import VerifiedSignature
from sim.wire.soap import Envelope
from sim.wire.wss import SECURITY


class ReplayCache:
    """Remembers message identifiers (MessageID, Timestamp+Nonce, signature values) until they
    expire; a second sighting within the window is a replay. Bounded: the oldest entries go
    first when ``capacity`` is reached (a message older than the freshness window is refused
    by the Timestamp check anyway, so an evicted entry cannot be replayed once it has aged)."""

    def __init__(self, capacity: int = 100_000, ttl: float = 600.0) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self._seen: OrderedDict[bytes | str, float] = OrderedDict()

    def check_and_add(self, key: bytes | str, now: float) -> None:
        """Refuse ``key`` if seen within ``ttl``; otherwise remember it."""
        self._expire(now)
        if key in self._seen:
            raise InvalidSecurity("message replayed", check="replay")
        self._seen[key] = now + self.ttl
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)

    def _expire(self, now: float) -> None:
        while self._seen:
            key, expiry = next(iter(self._seen.items()))
            if expiry > now:
                break
            del self._seen[key]

    def __len__(self) -> int:
        return len(self._seen)


def require_signed(verified: VerifiedSignature, element: etree._Element, what: str) -> None:
    """Refuse unless ``element`` itself is among the verified references (FailedCheck)."""
    if not verified.covers(element):
        raise FailedCheck(f"{what} is not covered by the signature", check="wrapping")


def require_body_signed(envelope: Envelope, verified: VerifiedSignature) -> None:
    """The SOAP Body the application will read must be the signed element, in its place."""
    body = envelope.body
    if body.getparent() is not envelope.root:
        raise FailedCheck("the SOAP Body is not a child of the Envelope", check="wrapping")
    require_signed(verified, body, "the SOAP Body")


def require_in_security_header(envelope: Envelope, element: etree._Element, what: str) -> None:
    """``element`` must be a direct child of the one wsse:Security header."""
    parent = element.getparent()
    if parent is None or parent.tag != SECURITY or parent.getparent() is not envelope.header:
        raise FailedCheck(f"{what} is not a child of the wsse:Security header", check="wrapping")
