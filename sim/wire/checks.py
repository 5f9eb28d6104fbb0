"""Receiver checks shared by every engine: replay cache and the "what you consume is what
was signed" rules that defeat XML Signature Wrapping."""

from __future__ import annotations

import hashlib
import heapq
import math

from lxml import etree

from sim.errors import FailedCheck, InvalidSecurity, MessageExpired
from sim.wire.dsig import VerifiedSignature
from sim.wire.ledger import Ledger, Op
from sim.wire.soap import Envelope
from sim.wire.wss import SECURITY


class ReplayCache:
    """A replay store: remembers message identifiers (signature values, MessageIDs, nonces)
    as long as the message they identify could be accepted again; a second sighting in that
    time is a replay (``InvalidSecurity``, check ``replay``).

    One object may serve a whole farm (the engine hands every node of a role the same store,
    as deployments share a distributed cache; ``remote=True``): it holds no per-node state.
    Each lookup is recorded as ``replay_lookup`` in the caller's ledger, its size the
    lookup's network round trips (1 for a remote store, 0 for a node's own).

    Time: ``skew`` is the clock skew tolerated, ``ttl`` the store's horizon, the oldest
    message it answers for (``now - Created``; by default the freshness check's maximum age,
    300 s, plus the skew). :meth:`check_and_add` given the message's Created and Expires
    refuses (``wsse:MessageExpired``) a Created further in the future than the skew or older
    than the horizon, and keeps the entry until the last instant the message could pass
    the freshness check, ``min(Expires + skew, Created + ttl)``, inclusive. Given neither,
    it keeps the entry until ``now + ttl + skew`` (a message fresh now may carry a Created up
    to ``skew`` ahead). Entries are dropped ``skew`` later still, so that a node of the farm
    whose clock runs behind the others' never finds the entry gone while it would accept
    the message.

    Memory: entries go by time only, never by count; at most ``capacity`` at once (about
    200 bytes each: a key longer than 32 bytes, an RSA signature value, is kept as its
    16-byte BLAKE2b digest). A store that is full refuses new
    messages with a typed fault (check ``replay_store_full``) rather than forget an entry:
    a flood can deny service until its entries expire, it cannot open a replay window.
    """

    def __init__(
        self,
        capacity: int = 1_000_000,
        ttl: float | None = None,
        *,
        skew: float = 300.0,
        remote: bool = False,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        #: the ledger size of a lookup: its network round trips (a farm-wide store is a
        #: distributed cache, one round trip away; a node's own store is in its memory)
        self.round_trips = 1 if remote else 0
        self.skew = skew
        self.ttl = 300.0 + skew if ttl is None else ttl
        #: key (or its digest) -> the instant the entry may be dropped (expiry plus skew)
        self._until: dict[bytes, float] = {}
        #: (drop instant, key), a heap: the next entry to go first
        self._queue: list[tuple[float, bytes]] = []

    def check_and_add(
        self,
        key: bytes | str,
        now: float,
        *,
        created: float | None = None,
        expires: float | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        """Refuse ``key`` if it was seen while its message could still be accepted, or the
        message's ``created`` falls outside the store's window; otherwise remember it."""
        raw = key.encode() if isinstance(key, str) else bytes(key)
        if ledger is not None:
            ledger.record(Op.REPLAY_LOOKUP, self.round_trips)
        if created is not None:
            if not math.isfinite(created) or created > now + self.skew:
                raise MessageExpired(
                    "wsu:Created lies further in the future than the clock skew",
                    check="replay",
                )
            if now - created > self.ttl:
                raise MessageExpired(
                    "the message is older than the replay store's horizon", check="replay"
                )
            last = created + self.ttl
        else:
            last = now + self.ttl + self.skew
        if expires is not None and math.isfinite(expires):
            last = min(last, expires + self.skew)
        digest = raw if len(raw) <= 32 else hashlib.blake2b(raw, digest_size=16).digest()
        self._expire(now)
        if digest in self._until:
            raise InvalidSecurity("message replayed", check="replay")
        if len(self._until) >= self.capacity:
            raise InvalidSecurity(
                "the replay store is full: the message cannot be checked", check="replay_store_full"
            )
        drop = last + self.skew
        self._until[digest] = drop
        heapq.heappush(self._queue, (drop, digest))

    def _expire(self, now: float) -> None:
        queue, until = self._queue, self._until
        while queue and queue[0][0] < now:
            _, digest = heapq.heappop(queue)
            del until[digest]

    def __len__(self) -> int:
        return len(self._until)


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
