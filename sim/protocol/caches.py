"""The security contexts a provider keeps (``ContextCache``), per node or shared by a farm."""

from __future__ import annotations

from collections import OrderedDict

from sim.errors import BadContextToken
from sim.wire.ledger import Ledger, Op


class ContextCache:
    """Security contexts a provider knows, by identifier: bounded (LRU) and with an idle
    timeout, as production stacks keep them. Lookups are recorded as ``cache_lookup``.

    ``get`` only looks a context up; ``touch`` marks it used once the message that named it
    has passed every check, so a refused message changes neither its idle timer nor its
    place in the LRU order."""

    def __init__(self, capacity: int = 10_000, idle_timeout: float = 600.0) -> None:
        self.capacity = capacity
        self.idle_timeout = idle_timeout
        self._entries: OrderedDict[str, tuple[object, float]] = OrderedDict()

    def put(self, key: str, value: object, now: float) -> None:
        self._entries[key] = (value, now)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def get(self, key: str, now: float, ledger: Ledger) -> object:
        """The context, or wsc:BadContextToken when unknown, evicted or idle too long."""
        ledger.record(Op.CACHE_LOOKUP, 0)
        # One answer for unknown, evicted and idle contexts, as a peer cannot tell them apart
        # (and replay fidelity models an idle eviction as a node new to the session).
        entry = self._entries.get(key)
        if entry is None:
            raise BadContextToken("unknown security context", check="context")
        value, last_used = entry
        if now - last_used > self.idle_timeout:
            del self._entries[key]
            raise BadContextToken("unknown security context", check="context")
        return value

    def touch(self, key: str, now: float) -> None:
        """Context ``key`` was used by an accepted message at ``now``."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries[key] = (entry[0], now)
            self._entries.move_to_end(key)

    def remove(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
