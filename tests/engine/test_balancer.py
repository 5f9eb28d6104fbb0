"""Farms place requests on the nodes that are up, by the scenario's balancer."""

from __future__ import annotations

import numpy as np
import simpy

from sim.engine.balancer import Farm
from sim.engine.resources import Node


def _farm(balancer: str, nodes: int = 3) -> tuple[simpy.Environment, Farm]:
    env = simpy.Environment()
    members = [Node(env, f"provider-{i}", "provider", 1) for i in range(nodes)]
    return env, Farm("provider", members, balancer, np.random.default_rng(7))


def _names(farm: Farm, keys) -> list[str]:
    return [farm.pick(key).name for key in keys]


def test_sticky_keeps_a_session_on_one_node_and_remaps_when_one_is_down():
    env, farm = _farm("sticky")
    assert _names(farm, [0, 1, 2, 3, 4]) == [f"provider-{k % 3}" for k in range(5)]
    assert _names(farm, [4, 4]) == ["provider-1", "provider-1"]
    farm.nodes[1].down_until = env.now + 10
    # the session's key over the nodes that are up
    assert _names(farm, [0, 1, 2, 3]) == ["provider-0", "provider-2"] * 2


def test_round_robin_takes_the_nodes_in_turn_and_skips_a_node_that_is_down():
    env, farm = _farm("round_robin")
    assert _names(farm, [9] * 4) == ["provider-0", "provider-1", "provider-2", "provider-0"]
    farm.nodes[2].down_until = env.now + 10
    assert _names(farm, [9] * 3) == ["provider-1", "provider-0", "provider-1"]


def test_least_connections_takes_the_least_busy_node_then_the_first_by_name():
    env, farm = _farm("least_connections")
    farm.nodes[0].connections = 2
    farm.nodes[1].connections = 1
    farm.nodes[2].connections = 1
    assert farm.pick(0).name == "provider-1"
    farm.nodes[1].down_until = env.now + 10
    assert farm.pick(0).name == "provider-2"


def test_random_draws_from_the_farms_stream_among_the_nodes_up():
    env, farm = _farm("random", nodes=4)
    farm.nodes[3].down_until = env.now + 10
    expected = np.random.default_rng(7).integers(3, size=50)
    assert _names(farm, range(50)) == [f"provider-{int(k)}" for k in expected]


def test_when_every_node_is_down_the_farm_still_answers_with_one():
    env, farm = _farm("sticky", nodes=2)
    for node in farm.nodes:
        node.down_until = env.now + 10
    assert farm.up() == farm.nodes
    assert farm.pick(3).name == "provider-1"
