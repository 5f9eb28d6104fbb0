"""Replay stores of the server farms: one store a farm shares (``topology.<role>.
shared_replay_cache``, the default: deployments keep it in a distributed cache) or one a node
(a replay to another node of the farm then goes through).

Each server engine's replay cache is a :class:`ReplayStoreView` of its farm's store or of its
own: every lookup records ``replay_lookup`` in that engine's ledger, size 1 (a network round
trip to the shared store) or 0 (a store in the node's memory), so the cost model charges it
in both fidelities (replay fidelity's ledgers are recorded from real executions). The
engines are built first and given their store then (``Strategy.share_replay_cache`` would
set it for every later engine of the strategy, replications and script recorders alike).
"""

from __future__ import annotations

import copy

from sim.wire.checks import ReplayCache


class ReplayStoreView:
    """One server engine's handle on a replay store: the store's own interface, each
    ``check_and_add`` recorded in the engine's ledger (the store records ``replay_lookup``
    in the ledger it is given; a caller that gives none gets the engine's)."""

    __slots__ = ("_engine", "store")

    def __init__(self, store: ReplayCache, engine: object) -> None:
        self.store = store
        self._engine = engine

    def check_and_add(self, key, now: float, **kwargs):
        """Refuse a replay, else remember the message (the store's ``check_and_add``)."""
        if kwargs.get("ledger") is None:
            kwargs["ledger"] = self._engine.ledger
        return self.store.check_and_add(key, now, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def __len__(self) -> int:
        return len(self.store)


def new_store(*, remote: bool) -> ReplayCache:
    """An empty replay store: a farm's (``remote``: a round trip a lookup) or a node's."""
    return ReplayCache(remote=remote)


def attach_replay(engine: object, store: ReplayCache | None) -> ReplayCache:
    """Give server ``engine`` the farm's ``store``, or a store of its own when ``store`` is
    None; returns the store behind the engine's view."""
    store = new_store(remote=False) if store is None else store
    engine.replay = ReplayStoreView(store, engine)
    return store


def fork_engine(engine: object) -> object:
    """A copy of a receiving engine as it is now, for a forgery sent in place of a message
    the attacker held back: the copy has its own ledger and a copy of the replay store's
    entries (so the original's own entry, added when the original arrives, does not refuse
    the forgery), and shares everything else (keys, security contexts) with the engine."""
    fork = copy.copy(engine)
    fork.ledger = type(engine.ledger)()
    replay = getattr(engine, "replay", None)
    if isinstance(replay, ReplayStoreView):
        fork.replay = ReplayStoreView(copy.deepcopy(replay.store), fork)
    elif replay is not None:
        fork.replay = copy.deepcopy(replay)
    return fork
