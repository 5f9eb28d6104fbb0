"""The workloads' arrivals of a replication: open (sessions arriving at a rate), closed
(users, each a session after the other, with or without think times)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.engine.replication import Replication


def open_arrivals(rep: Replication, rate: float):
    """An open workload: sessions arriving at ``rate`` a second (Poisson)."""
    key = 0
    gaps = _gaps(rep, 1.0 / rate)
    while True:
        yield rep.env.timeout(next(gaps))
        if rep._stop() or (rep.max_sessions is not None and key >= rep.max_sessions):
            return
        if len(rep.live) >= rep.scenario.run.max_in_flight_sessions:
            rep.overload = (rep.env.now, len(rep.live))
            return  # an unstable system: its backlog would only grow
        rep.env.process(rep._session(key))
        key += 1


def _gaps(rep: Replication, mean: float):
    """The open workload's inter-arrival times (exponential of ``mean``). Drawn 1,024 at
    a time (the same numbers as one at a time) when nothing else draws from the
    arrivals stream (no client classes, one session length, one payload size):
    otherwise one at a time, between the sessions' own draws, as always."""
    workload = rep.scenario.workload
    alone = (
        rep.classes is None
        and workload.session_length != "geometric"
        and len(rep.lengths[None][0]) == 1
        and len(rep.sizes[None][0]) == 1
    )
    draw = rep.arrivals.exponential
    while True:
        if alone:
            yield from draw(mean, size=1024).tolist()
        else:
            yield draw(mean)


def back_to_back(rep: Replication, user: int):
    """A closed workload's user without think time: sessions back to back."""
    key = user
    users = rep.scenario.workload.users
    sessions = 0
    while not rep._stop():
        if rep.max_sessions is not None and sessions >= rep.max_sessions:
            return
        yield from rep._session(key)
        sessions += 1
        key += users


def closed(rep: Replication, think: float, first_now: bool):
    """A closed workload of ``users`` with exponential think times, each user light
    state (whether it is in a session, its sessions so far): a thinking user holds no
    process. Wake-ups come at the population's rate (users / think), each to a user
    drawn uniformly, and one drawn while in a session is passed over (thinning): every
    thinking user then wakes at rate 1 / think, its think time exponential from the end
    of its session, as if each user drew its own."""
    env = rep.env
    users = rep.scenario.workload.users
    #: per user: sessions run (the next one's key is user + sessions x users), and 1
    #: while one runs
    rep.user_sessions = sessions = np.zeros(users, dtype=np.int64)
    rep.user_busy = busy = bytearray(users)
    if first_now:
        for user in range(users):
            env.process(user_session(rep, user))
    mean_gap = think / users
    limit = rep.max_sessions
    while True:
        gaps = rep.arrivals.exponential(mean_gap, size=1024).tolist()
        picks = rep.arrivals.integers(users, size=1024).tolist() if users > 1 else None
        for k, gap in enumerate(gaps):
            yield env.timeout(gap)
            if rep._stop():
                return
            user = picks[k] if picks is not None else 0
            if busy[user] or (limit is not None and sessions[user] >= limit):
                continue
            env.process(user_session(rep, user))


def user_session(rep: Replication, user: int):
    """One session of a closed workload's ``user``."""
    if rep._stop():
        return
    rep.user_busy[user] = 1
    try:
        key = user + int(rep.user_sessions[user]) * rep.scenario.workload.users
        yield from rep._session(key)
    finally:
        rep.user_sessions[user] += 1
        rep.user_busy[user] = 0
