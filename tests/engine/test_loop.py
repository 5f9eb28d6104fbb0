"""The engine's own event loop (``loop.run_until``) and a session's reused hop Timeout
(``resources.hop_event``) do what SimPy's ``env.run(until=...)`` and fresh Timeouts do:
the same events, at the same times, in the same order, the same errors."""

from __future__ import annotations

import gc
from heapq import heappush

import numpy as np
import pytest
import simpy
from simpy.events import NORMAL

from sim.engine.loop import run_until
from sim.engine.resources import hop_event


def _model(env: simpy.Environment, log: list) -> None:
    """Processes exercising what a loop must get right: timeouts at equal times, a
    process waiting on another's end (and its value), an event with two waiters, a
    condition, an event already processed when yielded, an interrupt, a failure caught,
    and processes still running at the stop time."""
    rng = np.random.default_rng(4)
    shared = env.event()

    def worker(k):
        for i in range(20):
            yield env.timeout(float(rng.integers(0, 3)) / 4)  # many equal times
            log.append((env.now, "worker", k, i))
        return k * 10

    def waiter():
        value = yield env.process(worker(7))
        log.append((env.now, "joined", value))
        got = yield shared
        log.append((env.now, "shared", got))
        done = env.timeout(0.5, value="early")
        yield env.timeout(1.0)
        again = yield done  # processed a while ago: SimPy resumes at once with its value
        log.append((env.now, "again", again))
        both = yield env.all_of([env.timeout(0.25), env.timeout(0.75)])
        log.append((env.now, "all_of", len(both.todict())))

    def second_waiter():
        got = yield shared
        log.append((env.now, "shared-2", got))

    def trigger():
        yield env.timeout(2.0)
        shared.succeed("go")

    def sleeper():
        try:
            yield env.timeout(100.0)
        except simpy.Interrupt as interrupt:
            log.append((env.now, "interrupted", interrupt.cause))

    def failing():
        yield env.timeout(1.5)
        raise KeyError("inside")

    def catcher():
        try:
            yield env.process(failing())
        except KeyError as error:
            log.append((env.now, "caught", str(error)))

    def endless():
        while True:
            yield env.timeout(0.3)
            log.append((env.now, "tick"))

    sleeping = env.process(sleeper())

    def interrupter():
        yield env.timeout(3.0)
        sleeping.interrupt("wake")

    for k in range(3):
        env.process(worker(k))
    for process in (waiter, second_waiter, trigger, interrupter, catcher, endless):
        env.process(process())


def _trace(run) -> list:
    env = simpy.Environment()
    log: list = []
    _model(env, log)
    run(env)
    log.append((env.now, "end", len(env._queue)))
    return log


def test_run_until_processes_the_same_events_in_the_same_order_as_simpy():
    simpys = _trace(lambda env: env.run(until=9.0))
    ours = _trace(lambda env: run_until(env, 9.0))
    assert ours == simpys
    assert len(ours) > 100 and {entry[1] for entry in ours} >= {
        "joined",
        "shared",
        "shared-2",
        "again",
        "all_of",
        "interrupted",
        "caught",
        "tick",
    }


def test_run_until_can_go_on_from_where_it_stopped_as_simpy():
    def twice(run):
        def both(env):
            run(env, 4.0)
            run(env, 9.0)

        return both

    assert _trace(twice(run_until)) == _trace(twice(lambda env, at: env.run(until=at)))


def test_a_process_failing_unhandled_stops_run_until_with_its_error_as_simpy():
    def crashing(env):
        def boom():
            yield env.timeout(1.0)
            raise ZeroDivisionError("no")

        env.process(boom())

    errors = []
    for run in (lambda env: env.run(until=5.0), lambda env: run_until(env, 5.0)):
        env = simpy.Environment()
        crashing(env)
        with pytest.raises(ZeroDivisionError, match="no") as caught:
            run(env)
        errors.append((env.now, type(caught.value.__cause__)))
    assert errors[0] == errors[1] == (1.0, ZeroDivisionError)


def test_yielding_what_is_not_an_event_is_simpys_error():
    env = simpy.Environment()

    def wrong():
        yield env.timeout(1.0)
        yield 42

    env.process(wrong())
    with pytest.raises(RuntimeError, match='Invalid yield value "42"'):
        run_until(env, 5.0)


def test_run_until_refuses_a_time_not_ahead_as_simpy():
    env = simpy.Environment()
    run_until(env, 1.0)
    with pytest.raises(ValueError, match="must be greater"):
        run_until(env, 1.0)


def test_a_hop_event_scheduled_anew_fires_as_fresh_timeouts_do():
    delays = np.random.default_rng(2).integers(0, 4, size=60) / 8

    def trace(reuse: bool) -> list:
        env = simpy.Environment()
        log = []

        def hopper(k):
            hop = hop_event(env)
            for i, delay in enumerate(delays[k::3]):
                if reuse:
                    hop.callbacks = []
                    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), hop))
                    yield hop
                else:
                    yield env.timeout(delay)
                log.append((env.now, k, i))

        def other():
            for _ in range(30):
                yield env.timeout(0.25)
                log.append((env.now, "other"))

        for k in range(3):
            env.process(hopper(k))
        env.process(other())
        run_until(env, 50.0)
        return log

    assert trace(reuse=True) == trace(reuse=False)


@pytest.mark.parametrize("collect_cycles", [True, False])
def test_the_cyclic_collector_is_off_during_a_run_without_cycles_and_back_on_after(
    collect_cycles,
):
    env = simpy.Environment()
    seen = []

    def look():
        yield env.timeout(1.0)
        seen.append(gc.isenabled())

    env.process(look())
    assert gc.isenabled()
    run_until(env, 2.0, collect_cycles=collect_cycles)
    assert seen == [collect_cycles] and gc.isenabled()


def test_a_collector_turned_off_before_the_run_stays_off():
    env = simpy.Environment()
    gc.disable()
    try:
        run_until(env, 1.0, collect_cycles=False)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_collector_is_back_on_when_a_run_fails():
    env = simpy.Environment()

    def boom():
        yield env.timeout(1.0)
        raise KeyError("out")

    env.process(boom())
    with pytest.raises(KeyError):
        run_until(env, 2.0, collect_cycles=False)
    assert gc.isenabled()


@pytest.mark.parametrize("fidelity, collecting", [("replay", False), ("full", True)])
def test_replay_runs_its_events_without_the_cyclic_collector_and_full_fidelity_with_it(
    fidelity, collecting, tmp_path
):
    from sim.engine import load_scenario, simulate

    class Watch:
        def __init__(self) -> None:
            self.seen: set[bool] = set()

        def on_message(self, *args) -> None:
            self.seen.add(gc.isenabled())

    scenario = load_scenario(
        {
            "strategies": ["sct"],
            "workload": {"rate": 10.0, "messages_per_session": 2},
            "run": {"duration_s": 0.5, "warmup_s": 0.0, "fidelity": fidelity},
        }
    )
    watch = Watch()
    simulate(scenario, tracer=watch, key_dir=tmp_path)
    assert watch.seen == {collecting} and gc.isenabled()
