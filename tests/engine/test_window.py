"""Load is counted within the measured window [warm-up, duration] only: a run drains after the
window (up to ``replication.DRAIN_S``), and an overloaded node or link keeps working through the
drain, but its utilization within the window is at most 1 (exactly 1 when saturated)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy

from sim.engine import apply_overrides, load_scenario, simulate
from sim.engine.resources import Node, Wire
from sim.engine.scenario import Link, read_scenario_file

from .test_soak import SOAK

WARMUP, UNTIL = 10.0, 50.0
WINDOW = UNTIL - WARMUP


def _saturate(node: Node, gap: float, service: float, last: float) -> None:
    """Jobs of ``service`` seconds every ``gap`` seconds from 0 to ``last``; run to the end."""
    env = node.env

    def arrivals():
        while env.now <= last:
            env.process(node.work(service, WARMUP, UNTIL))
            yield env.timeout(gap)

    env.process(arrivals())
    env.run()


@pytest.mark.parametrize("cores", [1, 2])
def test_a_saturated_node_is_busy_exactly_the_window_and_no_more(cores):
    env = simpy.Environment()
    node = Node(env, "server-0", "server", cores)
    # one-second jobs arriving twice as fast as the cores serve them, until 10 s after the
    # window; the last ones end long after it
    _saturate(node, gap=0.5 / cores, service=1.0, last=UNTIL + 10)
    assert env.now > UNTIL + 50
    assert node.busy / (cores * WINDOW) == pytest.approx(1.0, rel=1e-12)
    # the job started at k on a core ends at k + 1: those ending in (10, 50] count
    assert node.requests == cores * WINDOW
    assert node.service == pytest.approx(cores * WINDOW)
    # D/D/c: job k arrives at k * gap; core j takes the jobs j, j + c, ... back to back from
    # j * gap on, so it starts one at each j * gap + m. The line at time t is the jobs arrived
    # minus the jobs started; it is constant between multiples of gap / 2: integrate exactly.
    gap = 0.5 / cores

    def line(t: float) -> int:
        arrived = math.floor(t / gap) + 1
        started = sum(math.floor(t - j * gap) + 1 for j in range(cores) if t >= j * gap)
        return arrived - started

    step = gap / 2
    area = sum(line(WARMUP + (i + 0.5) * step) * step for i in range(round(WINDOW / step)))
    assert area == pytest.approx({1: 1200.0, 2: 2390.0}[cores])
    assert node.queue_area == pytest.approx(area, rel=1e-12)


def test_the_queue_inside_the_window_counts_even_for_jobs_still_waiting_when_the_run_stops():
    env = simpy.Environment()
    node = Node(env, "server-0", "server", 1)

    def arrivals():
        while True:
            env.process(node.work(1.0, WARMUP, UNTIL))
            yield env.timeout(0.5)

    env.process(arrivals())
    env.run(until=UNTIL + 1)  # stops with most of the jobs of the window still in line
    assert node.busy == pytest.approx(WINDOW, rel=1e-12)
    assert node.queue_area == pytest.approx(1200.0, rel=1e-12)


def test_an_unsaturated_node_counts_its_jobs_by_their_end():
    env = simpy.Environment()
    node = Node(env, "server-0", "server", 1)
    # 0.25 s jobs every second from 0: job k runs [k, k + 0.25]
    _saturate(node, gap=1.0, service=0.25, last=UNTIL + 5)
    # jobs ending in (10, 50]: k = 10 .. 49; busy also takes nothing outside the window
    assert node.requests == 40
    assert node.busy == pytest.approx(10.0, rel=1e-12)
    assert node.busy / WINDOW == pytest.approx(node.requests * 0.25 / WINDOW)
    assert node.queue_area == 0.0


def test_a_saturated_hsm_is_busy_exactly_the_window():
    env = simpy.Environment()
    node = Node(env, "sts-0", "sts", 2, hsm_units=1, hsm_op_s=0.004)

    def arrivals():
        while env.now <= UNTIL + 5:
            env.process(node.hsm_work(2, WARMUP, UNTIL))  # 8 ms of work every 5 ms
            yield env.timeout(0.005)

    env.process(arrivals())
    env.run()
    assert env.now > UNTIL + 30
    assert node.hsm_busy / WINDOW == pytest.approx(1.0, rel=1e-9)


@pytest.mark.slow
def test_a_saturated_link_is_busy_exactly_the_window():
    env = simpy.Environment()
    link = Link(latency_ms=1.0, bandwidth_mbps=8.0, overhead_bytes=0)
    wire = Wire(env, "a-b", link, np.random.default_rng(1))

    def arrivals():
        # 1000-byte frames (1 ms each at 8 Mbit/s) every 0.5 ms
        while env.now <= UNTIL + 5:
            env.process(wire.send(1000, WARMUP, UNTIL))
            yield env.timeout(0.0005)

    env.process(arrivals())
    env.run()
    assert env.now > UNTIL + 5
    assert wire.busy / WINDOW == pytest.approx(1.0, rel=1e-9)
    # the frames whose transmission ends inside the window: one a millisecond
    assert wire.bytes == pytest.approx(WINDOW * 1000 * 1000, rel=1e-4)


def test_an_overloaded_farm_reports_utilizations_of_at_most_one(key_dir):
    """The STS farm of scenarios/sts-farm.toml signs 250 tokens a second on its HSM; offered
    600 a second it is saturated from the start, and stays so through the drain."""
    data = apply_overrides(
        read_scenario_file(SOAK.parent / "sts-farm.toml"),
        ["run.duration_s=6", "run.warmup_s=1"],
    )
    result = simulate(load_scenario(data), key_dir=key_dir)
    roles = result.summary["strategies"]["bearer-per-message"]["roles"]
    assert roles["sts"]["hsm_utilization"] == pytest.approx(1.0, rel=1e-6)
    for role, figures in roles.items():
        assert 0.0 < figures["utilization"] <= 1.0, role
    for row in result.nodes:
        assert row["utilization"] <= 1.0, row
    for row in result.links:
        assert row["utilization"] <= 1.0, row
    # and the throughput is what the HSM carries inside the window, not what completed
    # during the drain: at most 250 a second, with the rest in flight at the window's end
    entry = result.summary["strategies"]["bearer-per-message"]
    assert entry["throughput_per_s"] <= 250 * 1.001
    assert entry["completed"] > entry["completed_in_window"]
    assert entry["in_flight_at_end"] > 0
