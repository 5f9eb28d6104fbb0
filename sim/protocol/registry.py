"""The strategy registry: ``build_strategy(name, options)`` makes a strategy's actors."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping

from sim.errors import ScenarioError
from sim.protocol.api import INTERMEDIARY, PROVIDER, STRATEGY_NAMES, STS, KeyLog
from sim.protocol.base import Client, ContextCache, Server, Setup, make_setup
from sim.protocol.strategies import saml_tokens, sct, sct_tlsnego, sender_vouches, ut_derived, x509
from sim.wire.checks import ReplayCache


class Strategy:
    """A session strategy: a factory of its client and server engines over one setup."""

    def __init__(
        self,
        setup: Setup,
        client_class: type[Client],
        servers: dict[str, type[Server]],
        shared: dict[str, Callable[[], object]] | None = None,
    ) -> None:
        self.name = setup.name
        self.setup = setup
        self._client_class = client_class
        self._servers = servers
        self._shared = shared or {}
        self.roles = tuple(servers)

    def client(self, client_id: str) -> Client:
        return self._client_class(self.setup, client_id)

    def server(self, role: str, node_id: str, *, shared: object | None = None) -> Server:
        if role not in self._servers:
            raise ValueError(f"strategy {self.name} has no {role}; roles: {', '.join(self.roles)}")
        return self._servers[role](self.setup, node_id, shared)

    def shared_state(self, role: str) -> object | None:
        factory = self._shared.get(role)
        return factory() if factory else None

    def share_replay_cache(self, role: str, store: ReplayCache | None = None) -> ReplayCache:
        """Give every ``role`` server made from now on one replay store (``store``, or a new
        remote one: a distributed cache, each lookup a round trip), as the nodes of a farm
        share one; returns it. Without this each server node keeps its own."""
        if role not in self._servers:
            raise ValueError(f"strategy {self.name} has no {role}; roles: {', '.join(self.roles)}")
        store = ReplayCache(remote=True) if store is None else store
        self.setup.replay_stores[role] = store
        return store

    def idle_timeout(self, role: str) -> float:
        """How long a ``role`` node keeps a session's state unused (``math.inf``: forever)."""
        factory = self._shared.get(role)  # the roles that keep security contexts
        return factory().idle_timeout if factory else math.inf

    def context_capacity(self, role: str) -> int | None:
        """How many sessions' security contexts a ``role`` node (or a farm-wide shared
        cache) holds at most; None when the role keeps none."""
        factory = self._shared.get(role)
        return factory().capacity if factory else None

    def certificates(self) -> dict[str, bytes]:
        """Every actor's certificate PEM by name (``sts``, ``provider``, ``client-0``...)."""
        return self.setup.certificates()


def _context_cache(setup: Setup) -> Callable[[], ContextCache]:
    opts = sct.SctOptions(setup.options)
    return lambda: ContextCache(opts.capacity, opts.idle_timeout)


_TABLE = {
    # name: (options module, client, servers)
    "x509": (x509.OPTIONS, x509.X509Client, {PROVIDER: x509.X509Provider}),
    "bearer": (
        saml_tokens.OPTIONS,
        saml_tokens.BearerClient,
        {STS: saml_tokens.TokenSts, PROVIDER: saml_tokens.BearerProvider},
    ),
    "bearer-per-message": (
        saml_tokens.OPTIONS,
        saml_tokens.BearerPerMessageClient,
        {STS: saml_tokens.TokenSts, PROVIDER: saml_tokens.BearerProvider},
    ),
    "hok-symmetric": (
        saml_tokens.OPTIONS,
        saml_tokens.HokSymmetricClient,
        {STS: saml_tokens.TokenSts, PROVIDER: saml_tokens.HokSymmetricProvider},
    ),
    "hok-public": (
        saml_tokens.OPTIONS,
        saml_tokens.HokPublicClient,
        {STS: saml_tokens.TokenSts, PROVIDER: saml_tokens.HokPublicProvider},
    ),
    "sender-vouches": (
        sender_vouches.OPTIONS,
        sender_vouches.SvClient,
        {
            INTERMEDIARY: sender_vouches.SvIntermediary,
            STS: sender_vouches.SvSts,
            PROVIDER: sender_vouches.SvProvider,
        },
    ),
    "sct": (sct.OPTIONS, sct.SctClient, {PROVIDER: sct.SctProvider}),
    "sct-tlsnego": (
        sct_tlsnego.OPTIONS,
        sct_tlsnego.TlsNegoClient,
        {PROVIDER: sct_tlsnego.TlsNegoProvider},
    ),
    "ut-derived": (ut_derived.OPTIONS, ut_derived.UtClient, {PROVIDER: ut_derived.UtProvider}),
}
assert set(_TABLE) == set(STRATEGY_NAMES)


def build_strategy(
    name: str,
    options: Mapping[str, object] | None = None,
    *,
    keylog: KeyLog | None = None,
    key_dir: str | os.PathLike | None = None,
) -> Strategy:
    """The strategy ``name`` (one of ``STRATEGY_NAMES``) configured by ``options``."""
    if name not in _TABLE:
        raise ScenarioError(
            "strategies", f"unknown strategy {name!r}; known: " + ", ".join(STRATEGY_NAMES)
        )
    known, client_class, servers = _TABLE[name]
    try:
        setup = make_setup(name, options, keylog, key_dir, known)
        shared = {PROVIDER: _context_cache(setup)} if name in ("sct", "sct-tlsnego") else {}
        strategy = Strategy(setup, client_class, servers, shared)
        # Engines read their options when they are made: make one of each now, so that a
        # bad option is reported before a run starts.
        strategy.client("client-0")
        for role in strategy.roles:
            strategy.server(role, f"{role}-0")
    except ScenarioError as error:
        prefix = "strategy_options."
        if error.key.startswith(prefix) and not error.key.startswith(f"{prefix}{name}."):
            raise ScenarioError(
                f"{prefix}{name}.{error.key[len(prefix) :]}", error.message
            ) from None
        raise
    return strategy
