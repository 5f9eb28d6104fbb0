"""Replay fidelity's shadows of the context caches it does not model: what a full cache
would evict, per node or per farm sharing one cache."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from sim.engine.balancer import Farm
from sim.engine.resources import Node
from sim.engine.shadows import ContextShadow, ContextShadows


def test_the_shadow_counts_only_running_sessions_evicted_before_their_idle_timeout():
    live = {1, 2, 3}
    shadow = ContextShadow(capacity=2, idle_timeout=10.0, live=live, shared=False)
    shadow.touch(1, 0.0, 0)
    shadow.touch(2, 1.0, 0)
    shadow.touch(1, 2.0, 0)  # used again: 2 is now the least recently used
    shadow.touch(3, 3.0, 0)
    assert shadow.evicted == 1 and list(shadow.sessions) == [1, 3]
    shadow.drop(1)  # a Cancel
    shadow.touch(4, 4.0, 0)  # room again: nothing goes
    assert shadow.evicted == 1 and list(shadow.sessions) == [3, 4]
    live.discard(3)
    shadow.touch(5, 5.0, 0)  # 3 has ended: its context may go
    assert shadow.evicted == 1
    shadow.touch(6, 20.0, 0)  # 4 has been idle 16 s: the cache had forgotten it already
    assert shadow.evicted == 1 and list(shadow.sessions) == [5, 6]


@pytest.mark.parametrize("shared", [False, True])
def test_a_restart_empties_a_nodes_cache_but_not_a_shared_one(shared):
    shadow = ContextShadow(capacity=2, idle_timeout=10.0, live={1, 2, 3}, shared=shared)
    shadow.touch(1, 0.0, 0)
    shadow.touch(2, 1.0, 0)
    shadow.touch(3, 2.0, 1)  # the node restarted before this delivery
    assert list(shadow.sessions) == ([2, 3] if shared else [3])
    assert shadow.evicted == (1 if shared else 0)


def _farm(nodes: int) -> Farm:
    env = simpy.Environment()
    members = [Node(env, f"provider-{i}", "provider", 1) for i in range(nodes)]
    return Farm("provider", members, "sticky", np.random.default_rng(0))


@pytest.mark.parametrize("shared", [False, True])
def test_a_farm_sharing_its_cache_has_one_shadow_and_others_one_a_node(shared):
    farm = _farm(3)
    shadows = ContextShadows()
    assert not shadows
    shadows.watch(farm, "sct", capacity=5, idle_timeout=10.0, live=set(), shared=shared)
    kept = {id(shadows.of("sct", node)) for node in farm.nodes}
    assert len(kept) == (1 if shared else 3)
    assert [key for key, _ in shadows.items()] == (
        [("sct", "provider")] if shared else [("sct", f"provider-{i}") for i in range(3)]
    )
    assert shadows.of("x509", farm.nodes[0]) is None  # a strategy not watched
