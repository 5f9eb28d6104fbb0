"""Cost profiles and service-time variability."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from sim.engine import load_scenario
from sim.engine.costs import load_profile
from sim.engine.model import Network


def _network(variability: str, cv: float = 0.5) -> Network:
    scenario = load_scenario(
        {
            "strategies": ["sct"],
            "workload": {"rate": 1.0},
            "profile": {"variability": variability, "cv": cv},
        }
    )
    return Network(
        simpy.Environment(), scenario, ("provider",), np.random.default_rng(4), load_profile()
    )


@pytest.mark.parametrize(
    ("variability", "cv"), [("deterministic", 0.0), ("exponential", 1.0), ("lognormal", 0.5)]
)
def test_service_time_multiplier_has_mean_one_and_the_requested_spread(variability, cv):
    network = _network(variability, cv)
    ops = (("rsa_sign", 2048), ("c14n", 3000))
    base = network.profile.cost(ops)
    node = network.nodes["provider-0"]
    samples = np.array([network.cpu(node, ops) for _ in range(40_000)]) / base
    assert samples.mean() == pytest.approx(1.0, abs=0.02)
    assert samples.std() / samples.mean() == pytest.approx(cv, abs=0.03)


def test_scale_and_overrides_change_the_cost_of_a_ledger():
    profile = load_profile()
    ops = (("rsa_sign", 2048),)
    base = profile.cost(ops)
    slower = profile.with_overrides(3.0, {})
    assert slower.cost(ops) == pytest.approx(3 * base)
    hsm = profile.with_overrides(1.0, {"rsa_sign": {"fixed_us": 2000.0}})
    assert hsm.cost(ops) == pytest.approx(0.002)
    # RSA cost grows with the key size between measured points
    assert profile.cost((("rsa_sign", 3072),)) > base > profile.cost((("rsa_sign", 1024),))
