"""Farms: the nodes of one role behind a load balancer (``topology.<role>.balancer``).

Placing a request costs O(1) (round robin, random, sticky while the session's node is up)
or O(log n) (least connections; sticky's hash), whatever the farm's size: the nodes that
are up are kept as they change (``take_down``, and a node's return, noticed by comparing
the clock with the earliest return), never listed per message."""

from __future__ import annotations

import heapq
import math

import numpy as np

from sim.engine.resources import Node

_MASK = (1 << 64) - 1
#: tries of a re-hashed node before sticky gives a down node's session to the first up one
_REHASHES = 32
#: sticky home nodes remembered (a session asks once a message)
_HOMES = 100_000


def _mix(x: int) -> int:
    """SplitMix64's finalizer: a well-spread 64-bit hash of an integer (not Python's
    ``hash``, which is the identity on small ints)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def jump_hash(key: int, buckets: int) -> int:
    """Lamping and Veach's jump consistent hash: ``key``'s bucket among ``buckets``, each
    bucket equally likely, O(log buckets), no table. Between n and n + 1 buckets only the
    keys that go to the new bucket move."""
    key &= _MASK
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & _MASK
        j = int((b + 1) * (2147483648.0 / ((key >> 33) + 1)))
    return b


class Farm:
    """The nodes of one role behind a load balancer; ``pick`` places a request.

    * ``sticky``: consistent hashing. A session's node is the jump hash of its key over the
      farm; while that node is down the session goes to the first node up among its
      re-hashes (spread evenly over the others), and back when it returns. Only the down
      node's sessions move (affinity by cookie or consistent hash, not key mod the nodes
      up, which remaps nearly every session when one node fails).
    * ``round_robin``: the nodes in turn, skipping the ones down.
    * ``random``: uniform over the nodes up, from the farm's stream.
    * ``least_connections``: the node up with the fewest exchanges in progress
      (``connect``/``release``; ties to the lowest index).

    When every node is down, each balancer still answers with one (the request then
    fails at the node)."""

    def __init__(self, role: str, nodes: list[Node], balancer: str, rng: np.random.Generator):
        self.role = role
        self.nodes = nodes
        self.balancer = balancer
        self.rng = rng
        self.env = nodes[0].env
        #: whether exchanges hold a connection (``connect``/``release``) on their node
        self.counts_connections = balancer == "least_connections"
        self._index = {id(node): i for i, node in enumerate(nodes)}
        #: the nodes up, in farm order (every node when none is), and the nodes down with
        #: their return times
        self._live: list[Node] = list(nodes)
        self._down: dict[int, float] = {}
        self._next_return = math.inf
        self._turn = 0
        #: least connections: (connections, index) entries, some stale (see ``_least``)
        self._heap = [(0, i) for i in range(len(nodes))] if self.counts_connections else []
        #: sticky: session key -> its home node (the hash, once a session; cleared when big)
        self._homes: dict[int, Node] = {}
        self.pick = {
            "sticky": self._sticky,
            "random": self._random,
            "least_connections": self._least_connections,
            "round_robin": self._round_robin,
        }[balancer]

    # the nodes up ------------------------------------------------------------------------
    def take_down(self, node: Node, until: float) -> None:
        """``node`` is down until ``until`` (a crash); it is back from then on."""
        node.down_until = until
        self._down[self._index[id(node)]] = until
        self._refresh()

    def up(self) -> list[Node]:
        """The nodes that are up now, or every node when none is."""
        if self.env.now >= self._next_return:
            self._refresh()
        return self._live

    def _refresh(self) -> None:
        now = self.env.now
        self._down = {i: t for i, t in self._down.items() if t > now}
        self._next_return = min(self._down.values(), default=math.inf)
        down = self._down
        self._live = [n for i, n in enumerate(self.nodes) if i not in down] or self.nodes

    # the balancers (each is ``pick(session_key) -> Node``) --------------------------------
    def _sticky(self, session_key: int) -> Node:
        node = self._homes.get(session_key)
        if node is None:
            homes = self._homes
            if len(homes) >= _HOMES:
                homes.clear()
            nodes = self.nodes
            node = homes[session_key] = nodes[jump_hash(session_key, len(nodes))]
        if node.down_until <= self.env._now:  # ``env.now`` without the property's call
            return node
        return self._rehash(session_key, node)

    def _rehash(self, session_key: int, home: Node) -> Node:
        """A node up for a session whose home node is down."""
        live = self.up()
        if live is self.nodes:  # every node is down
            return home
        now = self.env.now
        n = len(self.nodes)
        for attempt in range(1, _REHASHES + 1):
            node = self.nodes[jump_hash(_mix(session_key * _REHASHES + attempt), n)]
            if node.down_until <= now:
                return node
        return live[session_key % len(live)]

    def _random(self, session_key: int) -> Node:
        live = self.up()
        return live[int(self.rng.integers(len(live)))]

    def _round_robin(self, session_key: int) -> Node:
        nodes = self.nodes
        n = len(nodes)
        now = self.env.now
        turn = self._turn
        for _ in range(n):
            node = nodes[turn]
            turn = turn + 1 if turn + 1 < n else 0
            if node.down_until <= now:
                self._turn = turn
                return node
        # none is up: the next in turn
        node = nodes[turn]
        self._turn = turn + 1 if turn + 1 < n else 0
        return node

    # least connections -------------------------------------------------------------------
    def connect(self, node: Node) -> None:
        """An exchange placed on ``node`` holds a connection until ``release``."""
        node.connections += 1
        self._push(node)

    def release(self, node: Node) -> None:
        node.connections -= 1
        self._push(node)

    def _push(self, node: Node) -> None:
        heap = self._heap
        heapq.heappush(heap, (node.connections, self._index[id(node)]))
        if len(heap) > 4 * len(self.nodes) + 64:  # too many stale entries: start afresh
            heap[:] = [(n.connections, i) for i, n in enumerate(self.nodes)]
            heapq.heapify(heap)

    def _least_connections(self, session_key: int) -> Node:
        """The heap's first entry that is current (its count is the node's) and up; the
        entries of nodes down are set aside and put back."""
        heap = self._heap
        nodes = self.nodes
        now = self.env.now
        aside = []
        chosen = None
        while heap:
            count, i = heap[0]
            node = nodes[i]
            if count != node.connections:
                heapq.heappop(heap)  # stale
            elif node.down_until > now:
                aside.append(heapq.heappop(heap))
            else:
                chosen = node
                break
        for entry in aside:
            heapq.heappush(heap, entry)
        if chosen is None:  # every node is down
            chosen = min(nodes, key=lambda n: n.connections)
        return chosen
