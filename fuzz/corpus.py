"""Seed inputs for the receiver fuzzers: real messages of every strategy, captured from
sessions between the real engines."""

from __future__ import annotations

from functools import lru_cache

from sim.protocol import STRATEGY_NAMES, build_strategy
from sim.protocol.api import role_of
from sim.protocol.harness import Harness


@lru_cache(maxsize=4)
def strategies(key_dir: str | None = None):
    """Every strategy, its keys in ``key_dir`` (by default the user's private key cache)."""
    return {name: build_strategy(name, key_dir=key_dir) for name in STRATEGY_NAMES}


@lru_cache(maxsize=1)
def messages() -> tuple[tuple[str, str, bytes], ...]:
    """(strategy, receiving server role, bytes) of every message a server receives in a
    two-message session."""
    out = []
    for name, strategy in strategies().items():
        outcome = Harness(strategy).session([b"first", b"second"])
        for delivery in outcome.deliveries:
            role = role_of(delivery.receiver)
            if role in strategy.roles:
                out.append((name, role, delivery.send.data))
    return tuple(out)


def receivers(name: str):
    """A fresh server engine per role of ``name`` (fresh caches: no state across inputs)."""
    strategy = strategies()[name]
    return {role: strategy.server(role, f"{role}-0") for role in strategy.roles}
