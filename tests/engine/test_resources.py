"""The resources: links follow the ns-3 point-to-point model (FIFO transmitter,
bytes*8/bandwidth, delay, and losses from a frame loss probability or a bit error rate); a
node's cores, a heap of free times, serve first come, first served as a SimPy Resource does."""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy

from sim.engine.resources import Node, Wire
from sim.engine.scenario import Link


def _deliver(link: Link, sizes: list[int], seed: int = 3) -> tuple[list[bool], list[float]]:
    env = simpy.Environment()
    wire = Wire(env, "a-b", link, np.random.default_rng(seed))
    outcomes: list[bool] = []
    arrivals: list[float] = []

    def one(size):
        delivered = yield from wire.send(size, warmup=0.0)
        outcomes.append(delivered)
        arrivals.append(env.now)

    for size in sizes:
        env.process(one(size))
    env.run()
    return outcomes, arrivals


def test_back_to_back_frames_queue_at_the_transmitter_then_propagate():
    link = Link(latency_ms=10.0, bandwidth_mbps=8.0, overhead_bytes=0)
    _, arrivals = _deliver(link, [1000, 1000, 1000])
    # 1000 bytes at 8 Mbit/s = 1 ms each, sent one after the other, then 10 ms of delay
    assert np.allclose(arrivals, [0.011, 0.012, 0.013])


def test_bit_error_rate_loses_frames_with_the_binomial_probability():
    ber, size, n = 1e-5, 1000, 4000
    link = Link(bit_error_rate=ber, overhead_bytes=350, retries=0, timeout_s=0.1)
    outcomes, _ = _deliver(link, [size] * n)
    p = 1 - (1 - ber) ** (8 * (size + 350))
    lost = outcomes.count(False)
    assert abs(lost - n * p) < 4 * math.sqrt(n * p * (1 - p)), (lost, n * p)


def test_retransmissions_recover_lost_frames():
    link = Link(loss=0.3, retries=3, timeout_s=0.05)
    outcomes, _ = _deliver(link, [500] * 2000)
    # lost only when all four attempts are: 0.3^4 = 0.81 %
    assert outcomes.count(False) < 2000 * 0.0081 + 4 * math.sqrt(2000 * 0.0081)


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
