"""What the actors of one strategy share: the well-known addresses and Actions, the
:class:`Setup` (keys, algorithm suite, users, options) and the checked reading of the
strategy options (:func:`option`, :func:`make_setup`)."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from sim.errors import ScenarioError
from sim.protocol.api import KeyLog
from sim.wire import suites
from sim.wire.checks import ReplayCache
from sim.wire.keys import DEFAULT_BITS, Identity, KeyStore
from sim.wire.suites import AlgorithmSuite, suite

PROVIDER_ADDRESS = "https://provider.example/service"
STS_ADDRESS = "https://sts.example/trust"
APP_ACTION = "urn:wssim:app:Process"
APP_RESPONSE_ACTION = "urn:wssim:app:ProcessResponse"
CLIENT_IDENTITIES = 4


@dataclass
class Setup:
    """Keys, algorithm suite, users and options shared by all actors of one strategy."""

    name: str
    keystore: KeyStore
    suite: AlgorithmSuite
    options: dict
    keylog: KeyLog | None = None
    rsa_bits: int = DEFAULT_BITS
    passwords: dict[str, str] = field(default_factory=dict)
    #: objects built once per strategy and shared by its actors (TLS contexts)
    shared: dict[str, object] = field(default_factory=dict)
    #: farm-wide replay stores by role (``Strategy.share_replay_cache``); a role without
    #: one gives each of its nodes its own cache
    replay_stores: dict[str, ReplayCache] = field(default_factory=dict)
    #: ``strategy_options.data_encryption``: "aes-cbc" (the suite's) or "aes-gcm" (XML
    #: Encryption 1.1 AES-GCM in its place: ``suite.encryption`` is then the GCM algorithm)
    data_encryption: str = "aes-cbc"

    def identity(self, actor: str) -> Identity:
        return self.keystore.identity(actor, self.rsa_bits)

    def client_identity(self, client_id: str) -> tuple[str, Identity]:
        """Clients share a small pool of certificates (key generation is costly)."""
        name = f"client-{zlib.crc32(client_id.encode()) % CLIENT_IDENTITIES}"
        return name, self.identity(name)

    def username(self, client_id: str) -> tuple[str, str]:
        user = f"user-{zlib.crc32(client_id.encode()) % 1000:03d}"
        password = f"password-of-{user}"
        self.passwords[user] = password
        return user, password

    def log_key(self, kind: str, key_id: str, key: bytes) -> None:
        if self.keylog is not None:
            self.keylog.log(kind, key_id, key)

    def certificates(self) -> dict[str, bytes]:
        names = ["sts", "provider", "intermediary"] + [
            f"client-{i}" for i in range(CLIENT_IDENTITIES)
        ]
        return {name: self.identity(name).pem for name in names}

    def replay_cache(self, role: str, node_id: str) -> ReplayCache:
        """The replay cache of server node ``node_id`` of ``role``: its farm's shared store,
        or a cache of its own."""
        store = self.replay_stores.get(role)
        return store if store is not None else ReplayCache()


def option(options: Mapping, name: str, default, kind, *, choices=None, low=None, high=None):
    """Read one strategy option, checked; a bad value is a ScenarioError naming it."""
    value = options.get(name, default)
    key = f"strategy_options.{name}"
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ScenarioError(key, f"must be {kind.__name__}, got {value!r}")
    if choices is not None and value not in choices:
        raise ScenarioError(key, f"must be one of {', '.join(map(str, choices))}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ScenarioError(key, f"must be between {low} and {high}, got {value!r}")
    return value


def make_setup(name: str, options: Mapping | None, keylog, key_dir, known: set[str]) -> Setup:
    options = dict(options or {})
    common = {"suite", "rsa_bits", "response_bytes", "data_encryption"}
    unknown = sorted(set(options) - known - common)
    if unknown:
        allowed = ", ".join(sorted(known | common))
        raise ScenarioError(
            f"strategy_options.{unknown[0]}", f"unknown option for {name}; allowed: {allowed}"
        )
    suite_name = option(options, "suite", "Basic256", str)
    try:
        chosen = suite(suite_name)
    except ValueError as exc:
        raise ScenarioError("strategy_options.suite", str(exc)) from None
    data_encryption = option(
        options, "data_encryption", "aes-cbc", str, choices=suites.DATA_ENCRYPTIONS
    )
    try:  # the suite every actor encrypts with, and the one algorithm its receivers accept
        chosen = suites.with_data_encryption(chosen, data_encryption)
    except ValueError as exc:
        raise ScenarioError("strategy_options.data_encryption", str(exc)) from None
    bits = option(options, "rsa_bits", DEFAULT_BITS, int, choices=(1024, 2048, 3072, 4096))
    return Setup(
        name, KeyStore(key_dir), chosen, options, keylog, bits, data_encryption=data_encryption
    )
