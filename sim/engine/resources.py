"""The resources a message uses: a machine's CPU cores and HSM units (``Node``) and one
direction of a link (``Wire``), each a FCFS queue whose load is counted inside the measured
window. Protocol engines never see them: the message chain (``chain.py``) charges them."""

from __future__ import annotations

import math
from heapq import heapreplace

import numpy as np
import simpy
from simpy.events import Timeout

from sim.engine.scenario import Link
from sim.protocol.api import CLIENT

#: time bins of the per-node load series (utilization and waiting line over the run)
SERIES_BINS = 100

_new = object.__new__


def hop_event(env: simpy.Environment) -> Timeout:
    """A Timeout for a process that waits on one Timeout after the other (a session's
    hops, ``Chain.run``): its owner schedules it anew once it has fired (``callbacks =
    []``, then pushed on SimPy's heap under ``Timeout``'s key: its time, NORMAL, the next
    event id), without making an event, nor ``Timeout.__init__`` and
    ``Environment.schedule``'s calls, for each."""
    event = _new(Timeout)
    event.env = env
    event.callbacks = None
    event._value = None
    event._delay = 0.0
    event._ok = True
    return event


class Node:
    """A machine: ``cores`` served first come, first served, with busy-time and queue
    accounting.

    Service times are known when a job arrives, so each job's start follows the
    Kiefer-Wolfowitz recursion of the FCFS multi-server queue: it takes the core that frees
    first (``max(now, earliest free time)``). The cores are a heap of free times and a job
    costs one SimPy event (its end) instead of a Resource's request, timeout and release.
    The waiting line's integral (``queue_area``) is the sum of the jobs' waits. Busy time,
    waits, requests and service are counted within the measured window only (``account``),
    so that utilization (busy / (cores x window)) never exceeds 1, however long the run
    drains after the window.
    """

    __slots__ = (
        "bin_s",
        "busy",
        "connections",
        "contended",
        "cores",
        "down_until",
        "engines",
        "env",
        "epoch",
        "free",
        "hsm_busy",
        "hsm_free",
        "hsm_op_s",
        "hsm_units",
        "name",
        "queue_area",
        "requests",
        "role",
        "series_busy",
        "series_hsm",
        "series_hsm_wait",
        "series_wait",
        "service",
        "skew",
    )

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        role: str,
        cores: int,
        contended: bool = True,
        hsm_units: int = 0,
        hsm_op_s: float = 0.0,
        bin_s: float = 0.0,
    ) -> None:
        self.env = env
        self.name = name
        self.role = role
        self.cores = cores
        self.contended = contended
        #: when each core finishes the jobs booked on it so far (a heap; empty: uncontended)
        self.free: list[float] = [0.0] * cores if contended else []
        self.busy = 0.0  # core-seconds within the measured window
        self.requests = 0  # steps ending within the window
        self.service = 0.0  # their service seconds
        self.queue_area = 0.0  # integral of the waiting line within the window
        self.down_until = -1.0
        #: full fidelity: the protocol engine of this node, per strategy it serves
        self.engines: dict[str, object] = {}
        self.connections = 0  # for least-connections balancing
        self.skew = 0.0
        #: bumped when the node restarts and loses its per-session state
        self.epoch = 0
        # optional dedicated crypto hardware for RSA private-key operations (FCFS units)
        self.hsm_units = hsm_units
        self.hsm_free: list[float] = [0.0] * hsm_units
        self.hsm_op_s = hsm_op_s
        self.hsm_busy = 0.0
        #: with ``bin_s``: busy core-seconds and waiting-line seconds per time bin of the run
        #: (``SERIES_BINS`` bins from 0), the load over time
        self.bin_s = bin_s
        self.series_busy = [0.0] * SERIES_BINS if bin_s > 0 and contended else None
        self.series_wait = [0.0] * SERIES_BINS if bin_s > 0 and contended else None
        self.series_hsm = [0.0] * SERIES_BINS if bin_s > 0 and hsm_units else None
        self.series_hsm_wait = [0.0] * SERIES_BINS if bin_s > 0 and hsm_units else None

    #: whether its load is counted (``account``; a ``ClientMachine``'s is not)
    keeps_load = True

    def book(self, seconds: float) -> float:
        """Book a core for a job of ``seconds`` arriving now; returns when it starts."""
        now = self.env._now  # the property's value, without its call
        free = self.free
        if not free:
            return now
        earliest = free[0]
        start = earliest if earliest > now else now
        heapreplace(free, start + seconds)
        return start

    def account(
        self, arrival: float, start: float, seconds: float, warmup: float, until: float = math.inf
    ) -> None:
        """Count a job that arrived at ``arrival``, starts at ``start`` and runs ``seconds``,
        within the measured window [``warmup``, ``until``] only.

        Its busy core time (start to end) and its wait in line (arrival to start) are clipped
        to the window at both ends; the job itself (``requests``, ``service``) counts in the
        window in which it ends (``warmup < end <= until``). Everything is known when the
        job is booked, so it is counted then: a job still waiting when the run stops (an
        overloaded node) has its wait inside the window counted all the same."""
        end = start + seconds
        # ``_overlap`` inlined (a job's every step passes here)
        a = start if start > warmup else warmup
        b = end if end < until else until
        if b > a:
            self.busy += b - a
        if warmup < end <= until:
            self.requests += 1
            self.service += seconds
        if start > arrival:  # it waited in line
            self.queue_area += _overlap(arrival, start, warmup, until)
        series = self.series_busy
        if series is not None:
            width = self.bin_s
            i = int(start / width)
            if i == int(end / width) and i < SERIES_BINS:  # ``_spread`` within one bin
                series[i] += end - start
            else:
                _spread(series, start, end, width)
            if start > arrival:
                _spread(self.series_wait, arrival, start, width)

    def work(self, seconds: float, warmup: float, until: float = math.inf):
        """Generator: occupy one core for ``seconds`` of CPU time (queueing first when all
        are busy), counted within the window [``warmup``, ``until``] (``account``)."""
        arrival = self.env.now
        start = self.book(seconds)
        self.account(arrival, start, seconds, warmup, until)
        yield self.env.timeout(start + seconds - arrival)

    def hsm_work(self, operations: int, warmup: float, until: float = math.inf):
        """Generator: RSA private-key operations on the HSM, one unit each, FCFS; the
        units' busy time is counted within the window [``warmup``, ``until``]."""
        env = self.env
        units = self.hsm_free
        op_s = self.hsm_op_s
        for _ in range(operations):
            now = env.now
            earliest = units[0]
            start = earliest if earliest > now else now
            end = start + op_s
            heapreplace(units, end)
            self.hsm_busy += _overlap(start, end, warmup, until)
            if self.series_hsm is not None:
                _spread(self.series_hsm, start, end, self.bin_s)
                if start > now:
                    _spread(self.series_hsm_wait, now, start, self.bin_s)
            yield env.timeout(end - now)


class ClientMachine:
    """A client machine: light state, made for each session and let go with it (a million
    users hold no node object each). Clients never queue (each is its own machine, CPU
    time without contention) and their load is not reported, so a client keeps no cores,
    load or series."""

    __slots__ = ("env", "name", "network")

    role = CLIENT
    cores = 1
    keeps_load = False
    #: no core heap: a job starts when it arrives (``Node.book``)
    free: tuple = ()
    hsm_units = 0
    epoch = 0
    down_until = -1.0
    connections = 0
    #: a clock that is right (``SkewedClientMachine`` where clock-skew faults may come)
    skew = 0.0

    def __init__(self, network, name: str) -> None:
        self.network = network
        self.env = network.env
        self.name = name

    def book(self, seconds: float) -> float:
        return self.env.now

    def account(self, *window) -> None:
        """Nothing is counted of a client's load."""

    def work(self, seconds: float, warmup: float, until: float = math.inf):
        """Generator: ``seconds`` of CPU time, never waiting for a core."""
        yield self.env.timeout(seconds)


class SkewedClientMachine(ClientMachine):
    """A client machine in a run with clock-skew faults: its clock is the network's view
    of it, read at each use."""

    __slots__ = ()

    @property
    def skew(self) -> float:
        return self.network.client_skew_of(self.name)


def _overlap(a: float, b: float, low: float, high: float) -> float:
    """How much of [a, b] lies inside [low, high]."""
    a = a if a > low else low
    b = b if b < high else high
    return b - a if b > a else 0.0


def _spread(series: list[float], a: float, b: float, width: float) -> None:
    """Add the interval [a, b) to the per-bin totals of ``series`` (bins of ``width``)."""
    last = len(series) - 1
    i = int(a / width)
    if i > last:
        return
    j = int(b / width)
    if i == j:
        series[i] += b - a
        return
    series[i] += (i + 1) * width - a
    for k in range(i + 1, min(j, last + 1)):
        series[k] += width
    if j <= last:
        series[j] += b - j * width


class Wire:
    """One direction of a link: sender-side FIFO transmitter, then propagation (ns-3's
    point-to-point model), with loss handled by timeout and retransmission.

    The transmitter is a single FIFO server with deterministic service (bytes*8/bandwidth),
    so a frame's departure follows Lindley's recursion (start = max(now, previous frame's
    finish)) without a SimPy resource: one event per frame instead of four."""

    __slots__ = ("busy", "bytes", "env", "free_at", "link", "lossy", "name", "outages", "rng")

    def __init__(self, env: simpy.Environment, name: str, link: Link, rng: np.random.Generator):
        self.env = env
        self.name = name
        self.link = link
        self.rng = rng
        #: whether a frame can be lost other than by an outage
        self.lossy = bool(link.loss or link.bit_error_rate)
        self.free_at = 0.0  # when the transmitter finishes the frames queued so far
        self.bytes = 0
        self.busy = 0.0
        #: (start, end) of outages: a frame finishing transmission inside one is lost
        self.outages: list[tuple[float, float]] = []

    def outage(self, start: float, end: float) -> None:
        self.outages.append((start, end))

    def _down_at(self, t: float) -> bool:
        return any(start <= t < end for start, end in self.outages)

    def _queue(self, total: int, transmit: float, warmup: float, until: float) -> float:
        """Put a frame of ``total`` bytes behind the frames queued so far; returns when its
        transmission finishes. The transmitter's busy time is counted within the measured
        window [``warmup``, ``until``] (clipped at both ends), the frame's bytes in the window
        in which its transmission finishes (``warmup < finish <= until``), as a node counts
        its jobs."""
        now = self.env.now
        free_at = self.free_at
        start = free_at if free_at > now else now
        finish = self.free_at = start + transmit
        if finish > warmup and start < until:
            self.busy += (finish if finish < until else until) - (
                start if start > warmup else warmup
            )
            if finish <= until:
                self.bytes += total
        return finish

    def _delay(self) -> float:
        link = self.link
        delay = link.latency_ms / 1000
        if link.jitter_ms:
            delay += abs(self.rng.normal(0.0, link.jitter_ms / 1000))
        return delay

    def frame(self, size: int, warmup: float, until: float = math.inf) -> float:
        """``send`` without its events, for a wire that is neither ``lossy`` nor ever down:
        queue the one attempt of ``size`` bytes now; returns the seconds until it arrives."""
        link = self.link
        total = size + link.overhead_bytes
        transmit = total * 8 / (link.bandwidth_mbps * 1e6)
        # ``_queue`` inlined (every frame passes here)
        now = self.env._now
        free_at = self.free_at
        start = free_at if free_at > now else now
        finish = self.free_at = start + transmit
        if finish > warmup and start < until:
            self.busy += (finish if finish < until else until) - (
                start if start > warmup else warmup
            )
            if finish <= until:
                self.bytes += total
        if link.jitter_ms:
            return finish - now + self._delay()
        return finish - now + link.latency_ms / 1000

    def send(self, size: int, warmup: float, until: float = math.inf):
        """Generator: deliver ``size`` bytes; returns False when every attempt was lost.
        Busy time and bytes are counted within [``warmup``, ``until``] (``_queue``)."""
        link = self.link
        env = self.env
        total = size + link.overhead_bytes
        loss = link.loss
        if link.bit_error_rate:  # independent bit errors: any one loses the frame
            loss = 1 - (1 - link.loss) * (1 - link.bit_error_rate) ** (8 * total)
        transmit = total * 8 / (link.bandwidth_mbps * 1e6)
        for _attempt in range(link.retries + 1):
            now = env.now
            finish = self._queue(total, transmit, warmup, until)
            if loss > 0 and self.rng.random() < loss:
                yield env.timeout(finish - now + link.timeout_s)
                continue
            delay = self._delay()
            yield env.timeout(finish - now + delay)
            if not self.outages or not self._down_at(finish):
                return True
            # the link was down when the frame left: the sender times out
            if link.timeout_s > delay:
                yield env.timeout(link.timeout_s - delay)
        return False
