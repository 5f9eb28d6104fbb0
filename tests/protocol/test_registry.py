"""``build_strategy`` checks every option of a strategy without making its engines."""

from __future__ import annotations

import pytest

from sim.errors import ScenarioError
from sim.protocol import STRATEGY_NAMES
from sim.protocol.registry import strategy_entry
from sim.protocol.strategies import sct


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_every_option_of_every_strategy_is_checked_when_the_strategy_is_built(make, name):
    for option in sorted(strategy_entry(name).known):
        with pytest.raises(ScenarioError) as refused:
            make(name, {option: {"not": "a value"}})
        assert refused.value.key == f"strategy_options.{name}.{option}"


def test_a_bad_trusted_intermediaries_list_is_refused_naming_the_option(make):
    with pytest.raises(ScenarioError, match="trusted_intermediaries"):
        make("sender-vouches", {"trusted_intermediaries": ["intermediary", 3]})


def test_building_a_strategy_makes_no_engine(make, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an engine was made")

    monkeypatch.setattr(sct.SctClient, "__init__", refuse)
    monkeypatch.setattr(sct.SctProvider, "__init__", refuse)
    strategy = make("sct", {"cache_capacity": 7, "cache_idle_timeout_s": 30.0})
    assert strategy.context_capacity("provider") == 7
    assert strategy.idle_timeout("provider") == 30.0
    assert strategy.shared_state("provider").capacity == 7


def test_roles_that_keep_no_contexts_have_no_limits(make):
    strategy = make("bearer")
    assert strategy.context_capacity("sts") is None
    assert strategy.idle_timeout("provider") == float("inf")
    assert strategy.shared_state("provider") is None
