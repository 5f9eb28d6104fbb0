"""Links follow the ns-3 point-to-point model: FIFO transmitter, bytes*8/bandwidth, delay,
and losses from a frame loss probability or a bit error rate."""

from __future__ import annotations

import math

import numpy as np
import simpy

from sim.engine.model import Wire
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
