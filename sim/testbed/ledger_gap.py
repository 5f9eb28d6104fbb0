"""How much of an engine's CPU its ledger charges: the engines run in the in-memory harness
(no HTTP, no sockets), each step timed with the process's CPU clock and priced with the
profile. The difference is work the ledger does not name (Python building and walking the
messages, the engines' own bookkeeping): ``ledger_gap`` reports it per application message
beside the testbed's prediction, and ``engine_overhead`` measures it per step — per role
and kind of message the step sends — for a profile's ``engine_overhead_us``
(``wssim calibrate``), which the model then charges."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sim.engine.costs import NO_SEND
from sim.engine.preparation import payload
from sim.protocol.api import CLIENT, Send, role_of
from sim.protocol.harness import Harness

#: the idle time before each step or request when calibrating for low load: about the
#: gap between messages at a node serving a few tens of messages a second
LOW_LOAD_PAUSE_S = 0.03


@dataclass
class StepTimes:
    """Every timed step of a harness run, by (role, kind sent): CPU seconds the engine
    spent, seconds its ledger is priced at, and how many steps; and the application
    messages sent in the timed sessions."""

    spent: dict[tuple[str, str], float] = field(default_factory=dict)
    charged: dict[tuple[str, str], float] = field(default_factory=dict)
    steps: dict[tuple[str, str], int] = field(default_factory=dict)
    #: seconds the profile prices the HTTP layer at for the messages the steps sent
    http: dict[tuple[str, str], float] = field(default_factory=dict)
    messages: int = 0
    #: the client's connections (a new one per session and target role and scheme, as
    #: the testbed's load generator opens them), and how many of them are TLS
    connections: int = 0
    tls_connections: int = 0
    _open: set[tuple[str, bool]] = field(default_factory=set)

    def add(self, role: str, step, seconds: float, profile) -> None:
        send = next((event for event in step.events if isinstance(event, Send)), None)
        if role == CLIENT and send is not None:
            self._open.add((role_of(send.to), send.tls))
        key = (role, NO_SEND if send is None else str(send.kind))
        self.spent[key] = self.spent.get(key, 0.0) + seconds
        self.charged[key] = self.charged.get(key, 0.0) + profile.cost(step.ops)
        self.steps[key] = self.steps.get(key, 0) + 1
        if send is not None:
            http = profile.http_seconds(send.reply, send.tls, len(send.data))
            self.http[key] = self.http.get(key, 0.0) + http

    def clear(self) -> None:
        self.spent.clear()
        self.charged.clear()
        self.steps.clear()
        self.http.clear()
        self.messages = self.connections = self.tls_connections = 0
        self._open.clear()

    def end_session(self) -> None:
        """Count the connections the session's client opened."""
        self.connections += len(self._open)
        self.tls_connections += sum(tls for _, tls in self._open)
        self._open.clear()


def time_steps(
    strategy,
    profile,
    *,
    messages: int = 5,
    size: int = 1024,
    sessions: int = 30,
    warmup_sessions: int = 5,
    pause_s: float = 0.0,
) -> StepTimes:
    """Run ``sessions`` sessions of ``messages`` messages of ``size`` bytes of ``strategy``
    (a built Strategy) in the harness (after ``warmup_sessions`` untimed ones, which fill
    the caches), every engine step of every role timed and priced with ``profile``; with
    ``pause_s``, the process sleeps that long before each step (untimed), as a node at low
    load idles between messages: the step then runs with the CPU caches other processes
    left, which costs more than back to back (``docs/validation.md``)."""
    harness = Harness(strategy)
    times = StepTimes()
    for name, engine in harness.servers.items():
        _time(engine, ("receive",), role_of(name), times, profile, pause_s)
    for session in range(warmup_sessions + sessions):
        if session == warmup_sessions:
            times.clear()
        harness.client = strategy.client(f"client-{session}")
        _time(harness.client, ("request", "receive", "close"), CLIENT, times, profile, pause_s)
        harness.session(
            [payload(size, session, index) for index in range(messages)],
            start=session * 10.0,
            gap=0.5,
        )
        times.messages += messages
        times.end_session()
    return times


def _time(
    engine, methods: Iterable[str], role: str, times: StepTimes, profile, pause_s: float
) -> None:
    """Replace ``engine``'s ``methods`` by ones timing each step into ``times``."""
    for method in methods:
        setattr(engine, method, _timed(getattr(engine, method), role, times, profile, pause_s))


def _timed(call, role: str, times: StepTimes, profile, pause_s: float):
    def timed(*args, **kwargs):
        if pause_s:
            time.sleep(pause_s)
        start = time.process_time()
        step = call(*args, **kwargs)
        times.add(role, step, time.process_time() - start, profile)
        return step

    return timed


def ledger_gap(strategy, profile, **options) -> dict[str, dict[str, float]]:
    """Per server role of ``strategy`` (a built Strategy): ``engine_ms`` (CPU the engine
    spent) and ``ledger_ms`` (what ``profile`` charges for its ledger) per application
    message, and ``charged`` (their ratio). ``options``: those of ``time_steps``."""
    times = time_steps(strategy, profile, **options)
    spent: dict[str, float] = {}
    charged: dict[str, float] = {}
    for (role, _), seconds in times.spent.items():
        if role != CLIENT:
            spent[role] = spent.get(role, 0.0) + seconds
            charged[role] = charged.get(role, 0.0) + times.charged[role, _]
    return {
        role: {
            "engine_ms": spent[role] / times.messages * 1000,
            "ledger_ms": charged[role] / times.messages * 1000,
            "charged": charged[role] / spent[role] if spent[role] else 0.0,
        }
        for role in spent
    }


def engine_overhead(strategy, profile, **options) -> dict[str, dict[str, float]]:
    """Role -> kind of message sent (``none``: nothing sent) -> the microseconds of CPU a
    step of ``strategy`` spends beyond what ``profile`` charges for its ledger (the mean
    over the timed steps; never below 0: a ledger priced above what the engine spends
    stays as priced). Every role, the client's included. ``options``: those of
    ``time_steps``."""
    times = time_steps(strategy, profile, **options)
    out: dict[str, dict[str, float]] = {}
    for (role, kind), seconds in sorted(times.spent.items()):
        beyond = (seconds - times.charged[role, kind]) / times.steps[role, kind]
        out.setdefault(role, {})[kind] = max(beyond, 0.0) * 1e6
    return out


def gaps(strategies: Mapping[str, object], profile) -> dict[str, dict]:
    """``ledger_gap`` of every built strategy."""
    return {name: ledger_gap(strategy, profile) for name, strategy in strategies.items()}


def measure_engine_overheads(
    profile_data: Mapping,
    *,
    quick: bool = False,
    key_dir: str | None = None,
    pause_s: float = 0.0,
) -> dict[str, dict[str, dict[str, float]]]:
    """A profile's ``engine_overhead_us``: ``engine_overhead`` of every strategy (its
    default options, 5 messages of 1 KiB a session) against the ledger prices of
    ``profile_data`` (the profile being written); with ``pause_s``, at low load (each
    step after that long idle: ``time_steps``), over fewer sessions."""
    from sim.engine.costs import CostProfile
    from sim.protocol import STRATEGY_NAMES, build_strategy

    profile = CostProfile.from_json(profile_data)
    if pause_s:
        sessions, warmup = (2, 1) if quick else (8, 2)
    else:
        sessions, warmup = (8, 2) if quick else (30, 5)
    return {
        name: engine_overhead(
            build_strategy(name, {}, key_dir=key_dir),
            profile,
            sessions=sessions,
            warmup_sessions=warmup,
            pause_s=pause_s,
        )
        for name in STRATEGY_NAMES
    }
