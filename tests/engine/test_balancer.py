"""Farms place requests on the nodes that are up, by the scenario's balancer."""

from __future__ import annotations

from collections import Counter

import numpy as np
import simpy

from sim.engine import load_scenario, simulate
from sim.engine.balancer import Farm
from sim.engine.resources import Node


def _farm(balancer: str, nodes: int = 3) -> tuple[simpy.Environment, Farm]:
    env = simpy.Environment()
    members = [Node(env, f"provider-{i}", "provider", 1) for i in range(nodes)]
    return env, Farm("provider", members, balancer, np.random.default_rng(7))


def _names(farm: Farm, keys) -> list[str]:
    return [farm.pick(key).name for key in keys]


def test_sticky_keeps_a_session_on_one_node_and_spreads_sessions_evenly():
    _, farm = _farm("sticky", nodes=4)
    first = _names(farm, range(4000))
    assert _names(farm, range(4000)) == first
    shares = Counter(first)
    assert set(shares) == {f"provider-{i}" for i in range(4)}
    assert all(900 < count < 1100 for count in shares.values()), shares


def test_sticky_moves_only_the_sessions_of_the_node_that_is_down_and_brings_them_back():
    env, farm = _farm("sticky", nodes=4)
    before = _names(farm, range(4000))
    farm.take_down(farm.nodes[1], env.now + 10)
    during = _names(farm, range(4000))
    moved = [k for k in range(4000) if during[k] != before[k]]
    assert moved == [k for k in range(4000) if before[k] == "provider-1"]
    # spread over the other three, not all on one neighbour
    assert all(1150 < n < 1500 for n in Counter(during).values()), Counter(during)
    assert "provider-1" not in during
    env.run(until=10)
    assert _names(farm, range(4000)) == before


def test_sticky_on_a_growing_farm_moves_only_the_sessions_the_new_node_takes():
    _, small = _farm("sticky", nodes=9)
    _, large = _farm("sticky", nodes=10)
    before, after = _names(small, range(5000)), _names(large, range(5000))
    moved = [k for k in range(5000) if before[k] != after[k]]
    assert all(after[k] == "provider-9" for k in moved)
    assert 350 < len(moved) < 650


def test_round_robin_takes_the_nodes_in_turn_and_skips_a_node_that_is_down():
    env, farm = _farm("round_robin")
    assert _names(farm, [9] * 4) == ["provider-0", "provider-1", "provider-2", "provider-0"]
    farm.take_down(farm.nodes[2], env.now + 10)
    assert _names(farm, [9] * 3) == ["provider-1", "provider-0", "provider-1"]


def test_least_connections_takes_the_node_with_fewest_exchanges_then_the_first():
    env, farm = _farm("least_connections")
    for node in (farm.nodes[0], farm.nodes[0], farm.nodes[1], farm.nodes[2]):
        farm.connect(node)
    assert farm.pick(0).name == "provider-1"
    farm.take_down(farm.nodes[1], env.now + 10)
    assert farm.pick(0).name == "provider-2"
    farm.release(farm.nodes[0])
    farm.release(farm.nodes[0])
    assert farm.pick(0).name == "provider-0"
    env.run(until=10)  # provider-1 is back
    farm.connect(farm.nodes[0])
    farm.connect(farm.nodes[0])
    assert farm.pick(0).name == "provider-1"


def test_random_draws_from_the_farms_stream_among_the_nodes_up():
    env, farm = _farm("random", nodes=4)
    farm.take_down(farm.nodes[3], env.now + 10)
    expected = np.random.default_rng(7).integers(3, size=50)
    assert _names(farm, range(50)) == [f"provider-{int(k)}" for k in expected]


def test_when_every_node_is_down_the_farm_still_answers_with_one():
    env, farm = _farm("sticky", nodes=2)
    home = farm.pick(3)
    for node in farm.nodes:
        farm.take_down(node, env.now + 10)
    assert farm.up() == farm.nodes
    assert farm.pick(3) is home


def _key_mod_up(farm: Farm, session_key: int) -> Node:
    """The rule sticky balancing replaced (the control): the key modulo the nodes up."""
    up = farm.up()
    return up[session_key % len(up)]


def _recoveries(scenario) -> int:
    return (
        simulate(scenario, fidelity="replay")
        .summary["strategies"]["sct"]["faults"]
        .get("recovered", 0)
    )


def test_crashing_one_of_four_sticky_nodes_costs_a_third_of_the_recoveries_of_key_mod(
    monkeypatch,
):
    """Consistent hashing moves the crashed node's quarter of the sessions (out and back);
    the key modulo the nodes up moved three quarters of them (1/(N-1) as many for N
    nodes)."""
    scenario = load_scenario(
        {
            "strategies": ["sct"],
            "workload": {"rate": 40.0, "messages_per_session": 20, "message_gap_s": 0.2},
            "run": {"duration_s": 30.0, "warmup_s": 0.0},
            "topology": {"provider": {"nodes": 4, "balancer": "sticky"}},
            "faults": [
                {"kind": "provider_restart", "at_s": 10.0, "duration_s": 5.0, "node": "provider-0"}
            ],
        }
    )
    consistent = _recoveries(scenario)
    monkeypatch.setattr(Farm, "_sticky", _key_mod_up)
    key_mod = _recoveries(scenario)
    assert key_mod > 150, key_mod
    assert 0.2 < consistent / key_mod < 0.45, (consistent, key_mod)
