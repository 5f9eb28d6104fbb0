"""Replay fidelity's account of the context caches it does not model (``ContextShadow``),
one per node that keeps security contexts, or per farm sharing one cache."""

from __future__ import annotations

from collections.abc import Iterator

from sim.engine.balancer import Farm
from sim.engine.resources import Node


class ContextShadow:
    """Replay fidelity's account of a context cache it does not model: the sessions a node
    (or a farm-wide shared cache) holds contexts of, least recently used first, and how
    often a full cache would have evicted the context of a session still running (the
    session would then meet wsc:BadContextToken and recover, as ``full`` fidelity shows).

    Touched at every delivery of a session to the node; a close that reaches the node (a
    Cancel) removes the session, and a node's restart all of them (not a shared cache's,
    which outlives the nodes). An entry idle longer than the cache's idle timeout is not
    counted when it goes: replay models idle evictions already."""

    __slots__ = ("capacity", "epoch", "evicted", "idle_timeout", "live", "sessions", "shared")

    def __init__(self, capacity: int, idle_timeout: float, live: set[int], shared: bool) -> None:
        self.capacity = capacity
        self.idle_timeout = idle_timeout
        #: the sessions running now (the replication's set)
        self.live = live
        self.shared = shared
        self.epoch = 0
        self.sessions: dict[int, float] = {}
        #: contexts of running sessions a full cache would have evicted
        self.evicted = 0

    def touch(self, session: int, now: float, epoch: int) -> None:
        sessions = self.sessions
        if epoch != self.epoch and not self.shared:  # the node restarted: its cache is empty
            sessions.clear()
            self.epoch = epoch
        sessions.pop(session, None)
        sessions[session] = now
        while len(sessions) > self.capacity:
            oldest = next(iter(sessions))
            last = sessions.pop(oldest)
            if oldest in self.live and now - last <= self.idle_timeout:
                self.evicted += 1

    def drop(self, session: int) -> None:
        self.sessions.pop(session, None)


class ContextShadows:
    """The ContextShadows of one replication: per (strategy, node name, or role for a
    farm-wide cache)."""

    def __init__(self) -> None:
        self._shadows: dict[tuple[str, str], ContextShadow] = {}
        #: (strategy, node name) -> the shadow that node's deliveries touch (``of``; read
        #: directly by ``Chain._arrive``, at every delivery)
        self.by_node: dict[tuple[str, str], ContextShadow] = {}

    def watch(
        self,
        farm: Farm,
        strategy: str,
        capacity: int,
        idle_timeout: float,
        live: set[int],
        shared: bool,
    ) -> None:
        """Keep a ContextShadow for ``strategy`` on each node of ``farm`` (one for the farm
        when its cache is ``shared``)."""
        for node in farm.nodes:
            key = (strategy, farm.role if shared else node.name)
            if key not in self._shadows:
                self._shadows[key] = ContextShadow(capacity, idle_timeout, live, shared)
            self.by_node[strategy, node.name] = self._shadows[key]

    def of(self, strategy: str, node: Node) -> ContextShadow | None:
        """The ContextShadow ``node`` keeps for ``strategy``, if any."""
        return self.by_node.get((strategy, node.name))

    def items(self) -> Iterator[tuple[tuple[str, str], ContextShadow]]:
        """((strategy, node name or role), shadow) of every shadow kept."""
        return iter(self._shadows.items())

    def __bool__(self) -> bool:
        return bool(self._shadows)
