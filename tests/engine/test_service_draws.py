"""The service-time variability drawn 1,024 at a time when nothing else draws from the
network's stream: the same numbers, so the same run, as one draw at a time."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from sim.engine import load_scenario, simulate
from sim.engine import network as network_module
from sim.engine.costs import load_profile
from sim.engine.network import Network


def _scenario(variability: str, **extra):
    return load_scenario(
        {
            "strategies": ["sct"],
            "workload": {"rate": 30.0, "messages_per_session": 4},
            "run": {"duration_s": 3.0, "warmup_s": 0.5},
            "profile": {"variability": variability, "cv": 0.8},
            **extra,
        }
    )


def _network(scenario) -> Network:
    return Network(
        simpy.Environment(),
        scenario,
        ("provider",),
        np.random.default_rng(5),
        load_profile("default"),
    )


@pytest.mark.parametrize("variability", ["lognormal", "exponential"])
def test_batched_draws_are_the_draws_one_at_a_time(variability):
    scenario = _scenario(variability)
    draws = _network(scenario).jitter
    single = network_module._variability(
        variability, scenario.profile.cv, np.random.default_rng(5), alone=False
    )[1]
    assert [draws() for _ in range(3000)] == [single() for _ in range(3000)]


@pytest.mark.parametrize("variability", ["lognormal", "exponential"])
def test_a_run_with_batched_draws_is_the_run_with_single_draws(variability, monkeypatch, tmp_path):
    scenario = _scenario(variability)
    batched = simulate(scenario, key_dir=tmp_path)
    monkeypatch.setattr(network_module, "_draws_alone", lambda scenario, farms: False)
    single = simulate(scenario, key_dir=tmp_path)
    assert batched.summary == single.summary
    assert list(batched.messages) == list(single.messages) and len(batched.messages) > 100


@pytest.mark.parametrize(
    "extra",
    [
        {"topology": {"provider": {"nodes": 3, "balancer": "random"}}},
        {"links": {"client-provider": {"loss": 0.01}}},
        {"links": {"default": {"bit_error_rate": 1e-7}}},
        {"links": {"client-provider": {"jitter_ms": 2.0}}},
    ],
    ids=["random-balancer", "loss", "bit-errors", "link-jitter"],
)
def test_draws_come_one_at_a_time_when_something_else_draws_from_the_stream(extra):
    scenario = _scenario("lognormal", **extra)
    assert not network_module._draws_alone(scenario, _network(scenario).farms.values())
    plain = _scenario("lognormal")
    assert network_module._draws_alone(plain, _network(plain).farms.values())
