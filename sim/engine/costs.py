"""Cost profiles: how much CPU time each ledger operation takes, measured on a machine.

A profile maps each op of the ledger vocabulary to a fixed cost (microseconds) plus a cost
per unit of size (nanoseconds per byte; per iteration for ``ut_derive``); RSA operations,
``rsa_keygen`` and ``tls_handshake`` carry a cost per key size instead, interpolated between
the measured sizes. ``sim.engine.calibration.calibrate`` measures every op with the real
implementations.

An op may also make the request wait without a core (``wait_us`` per unit of size): the
network round trips of ``replay_lookup``, whose size counts them (0 for a replay store in
the node's memory, 1 for a farm-wide store: a distributed cache). Its ``fixed_us`` is the
in-memory look-up-and-insert and ``per_byte_ns`` the CPU a round trip costs the node (a
socket write and read), both measured by calibration; ``wait_us`` is the data-centre
round trip, ``REPLAY_ROUND_TRIP_US`` (a parameter, not measured: override it with
``profile.overrides.replay_lookup.wait_us``).

A profile may also carry the cost of the HTTP layer (``http``: ``server_request_us``, the
server and its framework handling one request and writing its reply; ``client_request_us``,
an HTTP client sending one request and reading the reply), measured with an empty request
by ``wssim calibrate`` (``sim.testbed.httpcost``). ``http_seconds`` charges it per message:
a reply to its sender, any other message to its sender as a client (over TLS its
``*_tls_request_us`` where measured), and ``*_byte_ns`` per byte of the message. ``connection_seconds`` is what a new connection adds
(``*_connection_us``; over TLS, ``*_tls_connection_us`` beyond the ``tls_handshake`` op),
charged with the TLS handshake when a session first uses a TLS connection. Without them (the
shipped default) messages cost only their ledger.

A profile may also carry the engines' own CPU beyond their ledgers (``engine_overhead_us``:
strategy -> role -> the kind of message the step sends, or ``none`` for a step that sends
nothing -> microseconds a step): the Python around the priced operations (building and
walking messages, bookkeeping), measured by ``wssim calibrate`` through the engines in the
in-memory harness (``sim.testbed.ledger_gap.engine_overhead``). ``overhead_seconds``
charges it per step. The shipped default profile has none: it models a production stack's
cryptographic and XML costs alone; a calibrated profile with it models this implementation.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sim.errors import ScenarioError
from sim.wire.ledger import OPS

#: a round trip to a farm-wide replay store (a distributed cache on the data-centre network)
REPLAY_ROUND_TRIP_US = 300.0

#: the server key size of a TLS connection the model opens (``Chain``'s handshake ledger)
TLS_BITS = 2048

#: ``engine_overhead_us``'s kind for a step that sends nothing (a client's last step)
NO_SEND = "none"

BY_BITS = ("rsa_sign", "rsa_verify", "rsa_encrypt", "rsa_decrypt", "rsa_keygen", "tls_handshake")


@dataclass(frozen=True)
class OpCost:
    fixed_us: float = 0.0
    per_byte_ns: float = 0.0
    by_bits: tuple[tuple[int, float], ...] = ()  # (bits, microseconds), sorted
    #: time the request waits without a core, per unit of size (a network round trip)
    wait_us: float = 0.0

    def seconds(self, size: int) -> float:
        """CPU seconds."""
        if self.by_bits:
            return _interpolate(self.by_bits, size) * 1e-6
        return (self.fixed_us * 1e3 + self.per_byte_ns * size) * 1e-9

    def wait_seconds(self, size: int) -> float:
        """Seconds of waiting that hold no core."""
        return self.wait_us * size * 1e-6


def _interpolate(points: tuple[tuple[int, float], ...], bits: int) -> float:
    """Log-log interpolation (RSA private-key cost grows like bits^3)."""
    if len(points) == 1 or bits <= points[0][0]:
        return points[0][1] * (bits / points[0][0]) ** 3 if bits < points[0][0] else points[0][1]
    for (b0, c0), (b1, c1) in itertools.pairwise(points):
        if bits <= b1:
            slope = math.log(c1 / c0) / math.log(b1 / b0)
            return c0 * (bits / b0) ** slope
    (b0, c0), (b1, c1) = points[-2], points[-1]
    slope = math.log(c1 / c0) / math.log(b1 / b0)
    return c1 * (bits / b1) ** slope


class CostProfile:
    """Turns ledgers into CPU seconds."""

    def __init__(
        self,
        ops: Mapping[str, OpCost],
        *,
        name: str = "custom",
        scale: float = 1.0,
        meta: Mapping | None = None,
        http: Mapping[str, float] | None = None,
        engine_overhead: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    ) -> None:
        missing = OPS - set(ops)
        if missing:
            raise ValueError(f"profile lacks ops: {', '.join(sorted(missing))}")
        self.ops = dict(ops)
        self.name = name
        self.scale = scale
        self.meta = dict(meta or {})
        #: the HTTP layer's cost per message (microseconds; see the module docstring)
        self.http = {key: float(value) for key, value in (http or {}).items()}
        #: the engines' CPU beyond their ledgers, strategy -> role -> kind -> microseconds
        self.engine_overhead = {
            str(strategy): {
                str(role): {str(kind): float(us) for kind, us in kinds.items()}
                for role, kinds in roles.items()
            }
            for strategy, roles in (engine_overhead or {}).items()
        }
        self._memo: dict[tuple, float] = {}
        self._waits: dict[tuple, float] = {}
        #: the ops that make a request wait
        self._waiting = frozenset(op for op, cost in self.ops.items() if cost.wait_us)

    def wait(self, ledger: Iterable[tuple[str, int]]) -> float:
        """Seconds a ledger waits without a core (network round trips; memoized)."""
        key = tuple(ledger)
        value = self._waits.get(key)
        if value is None:
            value = sum(self.ops[op].wait_seconds(size) for op, size in key if op in self._waiting)
            if len(self._waits) < 100_000:
                self._waits[key] = value
        return value

    def http_seconds(self, reply: bool, tls: bool = False, size: int = 0) -> float:
        """CPU seconds the HTTP layer costs the sender of a message of ``size`` bytes: a
        server writing a ``reply`` (having read its request), or a client sending a request
        (and reading its reply); over a TLS connection (``tls``) its own figure where the
        profile has one; plus ``*_byte_ns`` a byte sent (measured on echoed bodies: a byte
        sent and one read back, so a reply about as long as its request is assumed)."""
        side = "server" if reply else "client"
        http = self.http
        if tls and f"{side}_tls_request_us" in http:
            fixed = http[f"{side}_tls_request_us"]
        else:
            fixed = http.get(f"{side}_request_us", 0.0)
        return (fixed * 1e-6 + http.get(f"{side}_byte_ns", 0.0) * 1e-9 * size) * self.scale

    def overhead_seconds(self, strategy: str, role: str, kind: str | None) -> float:
        """CPU seconds an engine of ``strategy`` in ``role`` spends beyond its ledger on a
        step sending a message of ``kind`` (None: a step that sends nothing); 0 where the
        profile has no figure for it."""
        if not self.engine_overhead:
            return 0.0
        kinds = self.engine_overhead.get(strategy, {}).get(role, {})
        return kinds.get(NO_SEND if kind is None else str(kind), 0.0) * 1e-6 * self.scale

    def connection_seconds(self, server: bool, tls: bool = False) -> float:
        """CPU seconds opening a new HTTP connection adds to the ``server`` or the client
        end (``http``'s ``*_connection_us``; 0 without them). For a ``tls`` one: what the
        whole TLS connection costs (``*_tls_connection_us``: TCP, the handshake, Python's TLS
        transport) beyond the ``tls_handshake`` op the model charges each end with it."""
        side = "server" if server else "client"
        if not tls:
            return self.http.get(f"{side}_connection_us", 0.0) * 1e-6 * self.scale
        whole = self.http.get(f"{side}_tls_connection_us")
        if whole is None:
            return 0.0
        handshake = self.ops["tls_handshake"].seconds(TLS_BITS)
        return max(whole * 1e-6 - handshake, 0.0) * self.scale

    def cost(self, ledger: Iterable[tuple[str, int]]) -> float:
        """CPU seconds for a ledger (memoized: ledgers repeat message after message)."""
        key = tuple(ledger)
        value = self._memo.get(key)
        if value is None:
            value = sum(self.ops[op].seconds(size) for op, size in key) * self.scale
            if len(self._memo) < 100_000:
                self._memo[key] = value
        return value

    def with_overrides(self, scale: float, overrides: Mapping[str, Mapping]) -> CostProfile:
        ops = dict(self.ops)
        for op, change in overrides.items():
            if op not in OPS:
                raise ScenarioError(
                    f"profile.overrides.{op}", f"unknown op; known: {', '.join(sorted(OPS))}"
                )
            base = ops[op]
            fixed = change.get("fixed_us")
            per_byte = change.get("per_byte_ns")
            wait = change.get("wait_us")
            ops[op] = OpCost(
                fixed_us=base.fixed_us if fixed is None else fixed,
                per_byte_ns=base.per_byte_ns if per_byte is None else per_byte,
                by_bits=() if fixed is not None else base.by_bits,
                wait_us=base.wait_us if wait is None else wait,
            )
        return CostProfile(
            ops,
            name=self.name,
            scale=self.scale * scale,
            meta=self.meta,
            http=self.http,
            engine_overhead=self.engine_overhead,
        )

    def to_json(self) -> dict:
        ops = {}
        for op, cost in sorted(self.ops.items()):
            if cost.by_bits:
                ops[op] = {"by_bits_us": {str(b): round(c, 3) for b, c in cost.by_bits}}
            else:
                ops[op] = {
                    "fixed_us": round(cost.fixed_us, 4),
                    "per_byte_ns": round(cost.per_byte_ns, 4),
                }
            if cost.wait_us:
                ops[op]["wait_us"] = round(cost.wait_us, 4)
        data = {"name": self.name, "meta": self.meta, "ops": ops}
        if self.http:
            data["http"] = {key: round(value, 3) for key, value in self.http.items()}
        if self.engine_overhead:
            data["engine_overhead_us"] = {
                strategy: {
                    role: {kind: round(us, 2) for kind, us in sorted(kinds.items())}
                    for role, kinds in sorted(roles.items())
                }
                for strategy, roles in sorted(self.engine_overhead.items())
            }
        return data

    @classmethod
    def from_json(cls, data: Mapping, source: str = "profile") -> CostProfile:
        try:
            ops = {}
            for op, spec in data["ops"].items():
                wait = float(spec.get("wait_us", 0.0))
                if "by_bits_us" in spec:
                    points = tuple(
                        sorted((int(b), float(c)) for b, c in spec["by_bits_us"].items())
                    )
                    ops[op] = OpCost(by_bits=points, wait_us=wait)
                else:
                    ops[op] = OpCost(
                        float(spec["fixed_us"]), float(spec["per_byte_ns"]), wait_us=wait
                    )
            http = {str(k): float(v) for k, v in data.get("http", {}).items()}
            return cls(
                ops,
                name=str(data.get("name", source)),
                meta=data.get("meta", {}),
                http=http,
                engine_overhead=data.get("engine_overhead_us", {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ScenarioError("profile.name", f"{source} is not a cost profile: {exc}") from None


def load_profile(name_or_path: str = "default") -> CostProfile:
    """The shipped default profile, or a JSON profile file written by ``wssim calibrate``."""
    default = json.loads(resources.files("sim").joinpath("data/default_profile.json").read_text())
    if name_or_path == "default":
        return CostProfile.from_json(default, "default")
    path = Path(name_or_path)
    if not path.is_file():
        raise ScenarioError("profile.name", f"'default' or a profile file; no file {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ScenarioError("profile.name", f"{path} is not JSON: {exc}") from None
    ops = data.get("ops") if isinstance(data, dict) else None
    if isinstance(ops, dict):
        # a profile written before ops joined the vocabulary: those take the default's cost
        later = sorted((OPS - set(ops)) & set(default["ops"]))
        if later:
            data = {
                **data,
                "ops": {**ops, **{op: default["ops"][op] for op in later}},
                "meta": {**data.get("meta", {}), "default_costs_for": later},
            }
    return CostProfile.from_json(data, str(path))
