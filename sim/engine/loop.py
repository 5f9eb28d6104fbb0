"""The engine's event loop: SimPy's heap and events, stepped by a loop of the engine's own.

``run_until(env, at)`` is ``env.run(until=at)``: the same stop event (URGENT at ``at``,
scheduled under the next event id), the same events popped in the same heap order, their
callbacks called in the same order, a failed event that no process defused raised as SimPy
raises it. What it leaves out is per event: ``Environment.step``'s call, its ``try`` around
the callbacks (for a ``StopSimulation`` that only the stop event raises here) and its
``EmptySchedule`` exception (the stop event is in the heap until it is popped); and, for an
event that succeeded and resumes one process, ``Process._resume``'s call (its common case
inlined: the process yields an event still to come, or ends, or fails).
"""

from __future__ import annotations

import gc
from heapq import heappop

import simpy
from simpy.events import URGENT, Event, EventPriority, Process, _describe_frame


def run_until(env: simpy.Environment, at: float, *, collect_cycles: bool = True) -> None:
    """Process ``env``'s events until the simulated time ``at`` (``env.run(until=at)``).

    Without ``collect_cycles`` Python's cyclic garbage collector is off meanwhile (as it
    was again after): for a model whose events make no reference cycles (refcounting frees
    what they drop) it would only walk the run's live objects again and again as they pile
    up (replay: every kept record; 14 % of a run's CPU time at the issue's workload)."""
    at = float(at)
    if at <= env._now:
        raise ValueError(f"until ({at}) must be greater than the current simulation time")
    collecting = not collect_cycles and gc.isenabled()
    if collecting:
        gc.disable()
    try:
        _run(env, at)
    finally:
        if collecting:
            gc.enable()


def _run(env: simpy.Environment, at: float) -> None:
    stop = Event(env)
    stop._ok = True
    stop._value = None
    env.schedule(stop, URGENT, at - env._now)
    queue = env._queue
    while True:
        env._now, _, _, event = heappop(queue)
        callbacks, event.callbacks = event.callbacks, None
        if event is stop:
            # as SimPy leaves it: the stop event back in the heap, first at this time
            stop.callbacks = []
            env.schedule(stop, EventPriority(-1))
            return
        if event._ok and len(callbacks) == 1:
            resume = callbacks[0]
            if getattr(resume, "__func__", None) is _RESUME:
                # ``Process._resume`` inlined for its common case: the process yields an
                # event still to come; whatever else it does goes SimPy's own way
                process = resume.__self__
                env._active_proc = process
                try:
                    following = process._generator.send(event._value)
                except StopIteration as end:
                    process._ok = True
                    process._value = end.args[0] if len(end.args) else None
                    env.schedule(process)
                    process._target = None
                    env._active_proc = None
                    continue
                except BaseException as error:
                    # as SimPy: the failure, without this frame, is the process's value
                    error.__traceback__ = error.__traceback__.tb_next
                    process._ok = False
                    process._value = error
                    env.schedule(process)
                    process._target = None
                    env._active_proc = None
                    continue
                try:
                    waiting = following.callbacks
                except AttributeError:
                    description = _describe_frame(process._generator.gi_frame)
                    raise RuntimeError(
                        f'\n{description}Invalid yield value "{following}"'
                    ) from None
                if waiting is None:  # processed already: SimPy's loop sends its value now
                    _RESUME(process, following)
                    continue
                waiting.append(resume)  # the callback itself: no new bound method an event
                process._target = following
                env._active_proc = None
                continue
        for callback in callbacks:
            callback(event)
        if not event._ok and not hasattr(event, "_defused"):
            # as SimPy: a copy of the failure with a new traceback crashes the run
            exc = type(event._value)(*event._value.args)
            exc.__cause__ = event._value
            raise exc


_RESUME = Process._resume
