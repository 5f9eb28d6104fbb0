"""The bundled scenarios: every file loads, every strategy has one, the flagship has all."""

from __future__ import annotations

import pytest

from sim.engine.scenario import load_scenario, read_scenario_file
from sim.protocol.api import STRATEGY_NAMES
from tests.cli.conftest import SCENARIOS

FILES = sorted(SCENARIOS.glob("*.toml"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_bundled_scenario_loads(path):
    scenario = load_scenario(read_scenario_file(path))
    assert scenario.strategies


def test_scenarios_directory_holds_the_bundled_files():
    names = {p.stem for p in FILES}
    assert {"sct-vs-per-message", "sts-farm", *STRATEGY_NAMES} <= names


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_every_strategy_has_its_own_scenario(strategy):
    scenario = load_scenario(read_scenario_file(SCENARIOS / f"{strategy}.toml"))
    assert scenario.strategies == [strategy]


def test_flagship_compares_every_strategy_on_one_topology():
    scenario = load_scenario(read_scenario_file(SCENARIOS / "sct-vs-per-message.toml"))
    assert sorted(scenario.strategies) == sorted(STRATEGY_NAMES)


def test_sts_farm_scenario_is_set_up_for_capacity_planning():
    scenario = load_scenario(read_scenario_file(SCENARIOS / "sts-farm.toml"))
    assert scenario.workload.rate is not None  # an open workload: offered load is fixed
    assert scenario.topology.sts.nodes == 1  # plan starts from one node


def test_the_attack_scenario_switches_every_attack_on_against_a_farm():
    from sim.protocol.adversary import ATTACKS

    scenario = load_scenario(read_scenario_file(SCENARIOS / "attacks.toml"))
    assert scenario.adversary is not None and set(scenario.adversary.attacks) == set(ATTACKS)
    assert scenario.run.fidelity == "full"
    provider = scenario.topology.provider
    assert provider.nodes >= 2  # cross-node-replay needs another node of the farm
    assert provider.shared_replay_cache  # the farm-wide store the attack meets
