"""Farms: the nodes of one role behind a load balancer (``topology.<role>.balancer``)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from sim.engine.resources import Node


class Farm:
    """The nodes of one role behind a load balancer; ``pick`` places a request.

    Each balancer is a method taking the nodes that are up (all of them when none is) and
    the session's key; the farm binds the scenario's one when it is built."""

    def __init__(self, role: str, nodes: list[Node], balancer: str, rng: np.random.Generator):
        self.role = role
        self.nodes = nodes
        self.balancer = balancer
        self.rng = rng
        self._next = itertools.cycle(range(len(nodes)))
        choices: dict[str, Callable[[list[Node], int], Node]] = {
            "sticky": self._sticky,
            "random": self._random,
            "least_connections": self._least_connections,
            "round_robin": self._round_robin,
        }
        self._choose = choices[balancer]

    def up(self) -> list[Node]:
        """The nodes that are up now, or every node when none is."""
        return [n for n in self.nodes if n.down_until <= n.env.now] or self.nodes

    def pick(self, session_key: int) -> Node:
        """The node that takes a request of session ``session_key``."""
        return self._choose(self.up(), session_key)

    def _sticky(self, up: list[Node], session_key: int) -> Node:
        return up[session_key % len(up)]

    def _random(self, up: list[Node], session_key: int) -> Node:
        return up[int(self.rng.integers(len(up)))]

    def _least_connections(self, up: list[Node], session_key: int) -> Node:
        return min(up, key=lambda n: (n.connections, n.name))

    def _round_robin(self, up: list[Node], session_key: int) -> Node:
        for _ in range(len(self.nodes)):
            node = self.nodes[next(self._next)]
            if node in up:
                return node
        return up[0]
