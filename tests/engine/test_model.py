"""The model's shortcuts against what they replace: FCFS cores as a heap of free times
against a SimPy Resource, and client deliveries folded into the client's CPU time against
one event per delivery."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from sim.engine import load_scenario, simulate
from sim.engine import run as run_module
from sim.engine.model import Network, Node


def _customers(rate: float, mean_service: float, count: int, seed: int):
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.exponential(1 / rate, count)), rng.exponential(mean_service, count)


def _with_resource(arrivals, services, cores: int, warmup: float):
    """The reference: a SimPy Resource, its waiting line sampled every 10 ms after warm-up."""
    env = simpy.Environment()
    resource = simpy.Resource(env, capacity=cores)
    ends = [0.0] * len(arrivals)
    samples = []

    def customer(i):
        yield env.timeout(arrivals[i])
        with resource.request() as request:
            yield request
            yield env.timeout(services[i])
        ends[i] = env.now

    def monitor():
        while env.now < arrivals[-1] + 100:
            yield env.timeout(0.01)
            if env.now > warmup:
                samples.append(len(resource.queue))

    for i in range(len(arrivals)):
        env.process(customer(i))
    env.process(monitor())
    env.run()
    return ends, sum(samples) * 0.01


def _with_node(arrivals, services, cores: int, warmup: float):
    env = simpy.Environment()
    node = Node(env, "server-0", "server", cores)
    ends = [0.0] * len(arrivals)

    def customer(i):
        yield env.timeout(arrivals[i])
        yield from node.work(services[i], warmup)
        ends[i] = env.now

    for i in range(len(arrivals)):
        env.process(customer(i))
    env.run()
    return ends, node


@pytest.mark.parametrize("cores", [1, 3])
def test_node_serves_first_come_first_served_as_a_simpy_resource_does(cores):
    arrivals, services = _customers(
        rate=2.4 if cores == 3 else 0.9, mean_service=1.0, count=3000, seed=cores
    )
    expected, area = _with_resource(arrivals, services, cores, warmup=50.0)
    ends, node = _with_node(arrivals, services, cores, warmup=50.0)
    assert ends == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert node.queue_area == pytest.approx(area, rel=1e-3)  # the integral of the line
    assert area > 100  # the line was long at times: the order of service mattered
    assert node.requests == sum(1 for end in ends if end > 50.0)
    busy = sum(min(s, e - 50.0) for e, s in zip(ends, services, strict=True) if e > 50.0)
    assert node.busy == pytest.approx(busy, rel=1e-9)


class _Unfolded(Network):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        assert self.fold  # nothing in the scenario below turns it off
        self.fold = False


@pytest.mark.parametrize("variability", ["deterministic", "exponential"])
def test_folding_client_deliveries_leaves_the_summary_as_it_is(tmp_path, monkeypatch, variability):
    """Folded or not, a replay run measures the same (with random service times the draws
    are made in another order: the same distribution, close figures)."""
    s = load_scenario(
        {
            "strategies": ["sct"],
            "workload": {"rate": 40.0, "messages_per_session": 5},
            "run": {"duration_s": 20.0, "warmup_s": 2.0},
            "profile": {"variability": variability},
            "topology": {"provider": {"nodes": 1, "cores": 1}},
        }
    )
    folded = simulate(s, fidelity="replay", key_dir=tmp_path).summary["strategies"]["sct"]
    monkeypatch.setattr(run_module, "Network", _Unfolded)
    unfolded = simulate(s, fidelity="replay", key_dir=tmp_path).summary["strategies"]["sct"]
    if variability == "deterministic":
        assert folded["app_messages"] == unfolded["app_messages"]
        assert folded["latency_ms"] == pytest.approx(unfolded["latency_ms"], rel=1e-9)
        for role, figures in folded["roles"].items():
            assert figures == pytest.approx(unfolded["roles"][role], rel=1e-9)
    else:
        assert folded["latency_ms"]["mean"] == pytest.approx(
            unfolded["latency_ms"]["mean"], rel=0.05
        )
