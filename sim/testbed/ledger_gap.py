"""How much of a server engine's CPU its ledger charges: the engines run in the in-memory
harness (no HTTP, no sockets), each server step timed with the process's CPU clock and
priced with the profile. The difference is work the ledger does not name (Python building
and walking the messages, the engines' own bookkeeping); the testbed reports it beside the
prediction, as a cause of the CPU figures' error."""

from __future__ import annotations

import time
from collections.abc import Mapping

from sim.engine.preparation import payload
from sim.protocol.api import role_of
from sim.protocol.harness import Harness


def ledger_gap(
    strategy,
    profile,
    *,
    messages: int = 5,
    size: int = 1024,
    sessions: int = 30,
    warmup_sessions: int = 5,
) -> dict[str, dict[str, float]]:
    """Per server role of ``strategy`` (a built Strategy): ``engine_ms`` (CPU the engine
    spent) and ``ledger_ms`` (what ``profile`` charges for its ledger) per application
    message, and ``charged`` (their ratio)."""
    harness = Harness(strategy)
    spent: dict[str, float] = {}
    charged: dict[str, float] = {}
    for name, engine in harness.servers.items():
        engine.receive = _timed(engine.receive, role_of(name), spent, charged, profile)
    counted = 0
    for session in range(warmup_sessions + sessions):
        if session == warmup_sessions:
            spent.clear()
            charged.clear()
            counted = 0
        harness.client = strategy.client(f"client-{session}")
        harness.session(
            [payload(size, session, index) for index in range(messages)],
            start=session * 10.0,
            gap=0.5,
        )
        counted += messages
    return {
        role: {
            "engine_ms": spent[role] / counted * 1000,
            "ledger_ms": charged[role] / counted * 1000,
            "charged": charged[role] / spent[role] if spent[role] else 0.0,
        }
        for role in spent
    }


def _timed(receive, role: str, spent: dict, charged: dict, profile):
    def timed(data: bytes, sender: str, now: float):
        start = time.process_time()
        step = receive(data, sender=sender, now=now)
        spent[role] = spent.get(role, 0.0) + time.process_time() - start
        charged[role] = charged.get(role, 0.0) + profile.cost(step.ops)
        return step

    return timed


def gaps(strategies: Mapping[str, object], profile) -> dict[str, dict]:
    """``ledger_gap`` of every built strategy."""
    return {name: ledger_gap(strategy, profile) for name, strategy in strategies.items()}
