"""The strategy registry: ``build_strategy(name, options)`` makes a strategy's actors."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sim.errors import ScenarioError
from sim.protocol.api import INTERMEDIARY, KDC, PROVIDER, STRATEGY_NAMES, STS, KeyLog
from sim.protocol.base import Client, ContextCache, Server, Setup, make_setup
from sim.protocol.strategies import (
    kdc,
    kerberos,
    saml_hok,
    saml_tokens,
    sct,
    sct_spnego,
    sct_tlsnego,
    sender_vouches,
    sts_kerberos,
    ut_derived,
    x509,
)
from sim.wire.checks import ReplayCache


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """What the registry knows of one strategy."""

    #: the strategy's own option names (the common ones are ``make_setup``'s)
    known: frozenset[str]
    #: reads and checks every option, raising a ScenarioError naming a bad one
    read_options: Callable[[Mapping], object]
    client: type[Client]
    servers: Mapping[str, type[Server]]
    #: the roles whose nodes keep security contexts (in a ``ContextCache``)
    context_roles: tuple[str, ...] = ()
    #: the entry as a strategy's options make it (another client, servers, roles)
    resolve: Callable[[Entry, Mapping], Entry] | None = None


class Strategy:
    """A session strategy: a factory of its client and server engines over one setup."""

    def __init__(self, setup: Setup, entry: Entry) -> None:
        self.name = setup.name
        self.setup = setup
        if entry.resolve is not None:
            entry = entry.resolve(entry, setup.options)
        self._entry = entry
        self.roles = tuple(entry.servers)
        # the context limits, read once (the options were checked by build_strategy)
        contexts = sct.SctOptions(setup.options) if entry.context_roles else None
        self._contexts = dict.fromkeys(entry.context_roles, contexts)

    def client(self, client_id: str) -> Client:
        return self._entry.client(self.setup, client_id)

    def server(self, role: str, node_id: str, *, shared: object | None = None) -> Server:
        return self._server_class(role)(self.setup, node_id, shared)

    def _server_class(self, role: str) -> type[Server]:
        if role not in self._entry.servers:
            raise ValueError(f"strategy {self.name} has no {role}; roles: {', '.join(self.roles)}")
        return self._entry.servers[role]

    def shared_state(self, role: str) -> ContextCache | None:
        """A new farm-wide security context cache for ``role``, or None when the role keeps
        no contexts."""
        opts = self._contexts.get(role)
        return ContextCache(opts.capacity, opts.idle_timeout) if opts else None

    def share_replay_cache(self, role: str, store: ReplayCache | None = None) -> ReplayCache:
        """Give every ``role`` server made from now on one replay store (``store``, or a new
        remote one: a distributed cache, each lookup a round trip), as the nodes of a farm
        share one; returns it. Without this each server node keeps its own."""
        self._server_class(role)
        store = ReplayCache(remote=True) if store is None else store
        self.setup.replay_stores[role] = store
        return store

    def idle_timeout(self, role: str) -> float:
        """How long a ``role`` node keeps a session's state unused (``math.inf``: forever)."""
        opts = self._contexts.get(role)
        return opts.idle_timeout if opts else math.inf

    def context_capacity(self, role: str) -> int | None:
        """How many sessions' security contexts a ``role`` node (or a farm-wide shared
        cache) holds at most; None when the role keeps none."""
        opts = self._contexts.get(role)
        return opts.capacity if opts else None

    def certificates(self) -> dict[str, bytes]:
        """Every actor's certificate PEM by name (``sts``, ``provider``, ``client-0``...)."""
        return self.setup.certificates()


def _no_options(options: Mapping) -> None:
    """x509 has no options of its own."""


def _token_strategy(client: type[Client], provider: type[Server]) -> Entry:
    """A strategy whose client gets a SAML assertion from the STS and sends it to the
    provider itself (the SAML token options)."""
    return Entry(
        known=frozenset(saml_tokens.OPTIONS | sts_kerberos.OPTIONS),
        read_options=sts_kerberos.read_options,
        client=client,
        servers={STS: saml_tokens.TokenSts, PROVIDER: provider},
        resolve=sts_kerberos.resolve,
    )


def _context_strategy(
    options: frozenset[str] | set[str],
    read_options: Callable[[Mapping], object],
    client: type[Client],
    provider: type[Server],
) -> Entry:
    """A strategy whose client establishes a security context that the provider keeps."""
    return Entry(
        known=frozenset(options),
        read_options=read_options,
        client=client,
        servers={PROVIDER: provider},
        context_roles=(PROVIDER,),
    )


_TABLE = {
    "x509": Entry(
        known=frozenset(x509.OPTIONS),
        read_options=_no_options,
        client=x509.X509Client,
        servers={PROVIDER: x509.X509Provider},
    ),
    "bearer": _token_strategy(saml_tokens.BearerClient, saml_tokens.BearerProvider),
    "bearer-per-message": _token_strategy(
        saml_tokens.BearerPerMessageClient, saml_tokens.BearerProvider
    ),
    "hok-symmetric": _token_strategy(saml_hok.HokSymmetricClient, saml_hok.HokSymmetricProvider),
    "hok-public": _token_strategy(saml_hok.HokPublicClient, saml_hok.HokPublicProvider),
    "sender-vouches": Entry(
        known=frozenset(sender_vouches.OPTIONS),
        read_options=sender_vouches.SvOptions,
        client=sender_vouches.SvClient,
        servers={
            INTERMEDIARY: sender_vouches.SvIntermediary,
            STS: sender_vouches.SvSts,
            PROVIDER: sender_vouches.SvProvider,
        },
    ),
    "sct": _context_strategy(sct.OPTIONS, sct.SctOptions, sct.SctClient, sct.SctProvider),
    "sct-tlsnego": _context_strategy(
        sct_tlsnego.OPTIONS,
        sct_tlsnego.TlsNegoOptions,
        sct_tlsnego.TlsNegoClient,
        sct_tlsnego.TlsNegoProvider,
    ),
    "ut-derived": Entry(
        known=frozenset(ut_derived.OPTIONS),
        read_options=ut_derived.iteration_bounds,
        client=ut_derived.UtClient,
        servers={PROVIDER: ut_derived.UtProvider},
    ),
    "kerberos": Entry(
        known=frozenset(kerberos.OPTIONS),
        read_options=kerberos.KerberosTokenOptions,
        client=kerberos.KerberosTokenClient,
        servers={KDC: kdc.Kdc, PROVIDER: kerberos.KerberosTokenProvider},
    ),
    "sct-spnego": Entry(
        known=frozenset(sct_spnego.OPTIONS),
        read_options=sct_spnego.SpnegoOptions,
        client=sct_spnego.SpnegoClient,
        servers={KDC: kdc.Kdc, PROVIDER: sct_spnego.SpnegoProvider},
        context_roles=(PROVIDER,),
        resolve=sct_spnego.resolve,
    ),
}
assert set(_TABLE) == set(STRATEGY_NAMES)


def strategy_entry(name: str) -> Entry:
    """The registry's entry of strategy ``name`` (its client class and ``machine``...)."""
    if name not in _TABLE:
        raise ScenarioError(
            "strategies", f"unknown strategy {name!r}; known: " + ", ".join(STRATEGY_NAMES)
        )
    return _TABLE[name]


def build_strategy(
    name: str,
    options: Mapping[str, object] | None = None,
    *,
    keylog: KeyLog | None = None,
    key_dir: str | os.PathLike | None = None,
) -> Strategy:
    """The strategy ``name`` (one of ``STRATEGY_NAMES``) configured by ``options``; a bad
    option is a ScenarioError naming it (``strategy_options.<name>.<option>``)."""
    entry = strategy_entry(name)
    try:
        setup = make_setup(name, options, keylog, key_dir, entry.known)
        entry.read_options(setup.options)
    except ScenarioError as error:
        prefix = "strategy_options."
        if error.key.startswith(prefix) and not error.key.startswith(f"{prefix}{name}."):
            raise ScenarioError(
                f"{prefix}{name}.{error.key[len(prefix) :]}", error.message
            ) from None
        raise
    return Strategy(setup, entry)
