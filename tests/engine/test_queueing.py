"""The engine's node primitive against queueing theory: M/M/1, M/M/c (Erlang C), M/D/1
(Pollaczek-Khinchine). The analytic mean time in system must lie within the 95% confidence
interval over replications, at low and high utilization."""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy

from sim.engine.resources import Node

REPLICATIONS = 12
CUSTOMERS = 6000


def erlang_c(c: int, a: float) -> float:
    """Probability of waiting in M/M/c with offered load a = lambda/mu."""
    rho = a / c
    tail = a**c / math.factorial(c) / (1 - rho)
    return tail / (sum(a**k / math.factorial(k) for k in range(c)) + tail)


def simulate_queue(rate: float, service, cores: int, seed: int) -> float:
    """Mean time in system of CUSTOMERS customers through one Node."""
    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    node = Node(env, "server-0", "server", cores)
    times: list[float] = []

    def customer():
        arrived = env.now
        yield from node.work(service(rng), warmup=0.0)
        times.append(env.now - arrived)

    def arrivals():
        for _ in range(CUSTOMERS):
            yield env.timeout(rng.exponential(1 / rate))
            env.process(customer())

    env.process(arrivals())
    env.run()
    return float(np.mean(times[CUSTOMERS // 10 :]))  # warm-up removed


def confidence_interval(samples: list[float]) -> tuple[float, float]:
    mean = float(np.mean(samples))
    half = 2.201 * float(np.std(samples, ddof=1)) / math.sqrt(len(samples))  # t(0.975, 11)
    return mean - half, mean + half


CASES = {
    # name: (rate, service sampler, cores, analytic mean time in system)
    "M/M/1 rho=0.3": (0.3, lambda rng: rng.exponential(1.0), 1, 1 / (1 - 0.3)),
    "M/M/1 rho=0.85": (0.85, lambda rng: rng.exponential(1.0), 1, 1 / (1 - 0.85)),
    "M/M/2 rho=0.3": (0.6, lambda rng: rng.exponential(1.0), 2, erlang_c(2, 0.6) / (2 - 0.6) + 1.0),
    "M/M/2 rho=0.85": (
        1.7,
        lambda rng: rng.exponential(1.0),
        2,
        erlang_c(2, 1.7) / (2 - 1.7) + 1.0,
    ),
    "M/D/1 rho=0.3": (0.3, lambda rng: 1.0, 1, 0.3 / (2 * (1 - 0.3)) + 1.0),
    "M/D/1 rho=0.85": (0.85, lambda rng: 1.0, 1, 0.85 / (2 * (1 - 0.85)) + 1.0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_mean_time_in_system_matches_the_analytic_value(case):
    rate, service, cores, analytic = CASES[case]
    samples = [simulate_queue(rate, service, cores, seed) for seed in range(REPLICATIONS)]
    low, high = confidence_interval(samples)
    assert low <= analytic <= high, (case, low, analytic, high)


def test_utilization_accounting_matches_offered_load():
    env = simpy.Environment()
    node = Node(env, "server-0", "server", 2)
    rng = np.random.default_rng(7)

    def arrivals():
        while True:
            yield env.timeout(rng.exponential(1 / 1.2))
            env.process(node.work(1.0, warmup=100.0))

    env.process(arrivals())
    env.run(until=20_100)
    utilization = node.busy / (2 * 20_000)
    assert abs(utilization - 0.6) < 0.03
