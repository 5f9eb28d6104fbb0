"""Scenario files: the pydantic schema, loading with errors that name the key, and
``--set dotted.key=value`` overrides."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Literal

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sim.errors import ScenarioError
from sim.protocol.api import ATTACK_NAMES as ATTACKS
from sim.protocol.api import STRATEGY_NAMES

LINK_ENDS = ("client", "intermediary", "sts", "provider", "kdc")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_strategy(name: str) -> None:
    if name not in STRATEGY_NAMES:
        raise ValueError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGY_NAMES)}")


def _check_table(value, name: str):
    """A count or size, or a table {value = weight}; checks keys and weights."""
    if value is None:
        return value
    limit = 100_000 if name == "messages_per_session" else 10_000_000
    table = {str(value): 1.0} if isinstance(value, int) else value
    if not table:
        raise ValueError("an empty table")
    for key, weight in table.items():
        if not key.isdigit() or not 1 <= int(key) <= limit:
            raise ValueError(f"{key!r} must be an integer from 1 to {limit}")
        if not (isinstance(weight, (int, float)) and weight > 0):
            raise ValueError(f"the weight of {key} must be a positive number")
    return value


def _table(value) -> tuple[tuple[int, ...], tuple[float, ...]]:
    if isinstance(value, int):
        return (value,), (1.0,)
    items = sorted((int(k), float(w)) for k, w in value.items())
    total = sum(w for _, w in items)
    return tuple(k for k, _ in items), tuple(w / total for _, w in items)


class ClientClass(_Strict):
    """A class of clients: its share of the sessions and its own workload values (those not
    given are the workload's). When classes name a ``strategy``, their sessions run it, all
    classes together on one topology (a mixed run)."""

    share: float = Field(1.0, gt=0, description="relative share of the sessions")
    strategy: str | None = Field(
        None, description="the strategy this class's sessions run (give it on every class)"
    )
    messages_per_session: int | dict[str, float] | None = None
    payload_bytes: int | dict[str, float] | None = None

    @field_validator("messages_per_session", "payload_bytes")
    @classmethod
    def _count_or_table(cls, value, info):
        return _check_table(value, info.field_name)

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str | None) -> str | None:
        if value is not None:
            _check_strategy(value)
        return value


class Workload(_Strict):
    """Open (``rate`` sessions/s, Poisson arrivals) or closed (``users`` with think time)."""

    rate: float | None = Field(None, gt=0, description="sessions per second (open workload)")
    users: int | None = Field(None, gt=0, le=1_000_000, description="closed workload users")
    think_time_s: float = Field(
        1.0, ge=0, description="closed workload: pause between sessions (exponential, this mean)"
    )
    first_session: Literal["at_start", "after_think"] = Field(
        "at_start",
        description="closed workload: every user's first session starts at 0 s (at_start), or "
        "after a think time, as in a closed network's steady state (after_think: a large "
        "population starts gradually, not all at once)",
    )
    messages_per_session: int | dict[str, float] = Field(
        1, description="a count, or a table {count = weight, ...} each session draws from"
    )
    session_length: Literal["fixed", "geometric"] = Field(
        "fixed", description="geometric: each session draws its length, mean messages_per_session"
    )
    message_gap_s: float = Field(0.0, ge=0, description="pause between messages of a session")
    classes: dict[str, ClientClass] = Field(
        default_factory=dict, description="client classes; each session draws one by share"
    )
    payload_bytes: int | dict[str, float] = Field(
        1024, description="a size, or a table {size = weight, ...} each message draws from"
    )
    retries: int = Field(
        1,
        ge=0,
        le=10,
        description="retries of a message after a transport failure "
        "(node down, timeout), each on a new session",
    )

    @field_validator("messages_per_session", "payload_bytes")
    @classmethod
    def _count_or_table(cls, value, info):
        return _check_table(value, info.field_name)

    def table(
        self, name: str, client_class: str | None = None
    ) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """Values and probabilities of ``messages_per_session`` or ``payload_bytes`` (of a
        client class when given, falling back on the workload's)."""
        value = getattr(self.classes[client_class], name) if client_class else None
        return _table(getattr(self, name) if value is None else value)

    def all_values(self, name: str) -> tuple[int, ...]:
        """Every value of ``name`` any class may draw."""
        values = set(self.table(name)[0])
        for client_class in self.classes:
            values.update(self.table(name, client_class)[0])
        return tuple(sorted(values))

    def mean_messages(self, client_class: str | None = None) -> float:
        values, probabilities = self.table("messages_per_session", client_class)
        return sum(v * p for v, p in zip(values, probabilities, strict=True))

    @model_validator(mode="after")
    def _open_or_closed(self):
        if (self.rate is None) == (self.users is None):
            raise ValueError("give exactly one of workload.rate (open) or workload.users (closed)")
        return self


class Role(_Strict):
    nodes: int = Field(1, ge=1, le=10_000, description="nodes in the role's farm")
    cores: int = Field(2, ge=1, le=1024, description="CPU cores of each node")
    balancer: Literal["round_robin", "least_connections", "random", "sticky"] = Field(
        "round_robin", description="how the farm's load balancer picks a node for a request"
    )
    shared_cache: bool = Field(False, description="one security-context cache for the farm")
    shared_replay_cache: bool = Field(
        True,
        description="server roles: one replay store for the farm (a distributed cache, a "
        "round trip a lookup: profile op replay_lookup); false: each node keeps its own, "
        "and a message replayed to another node of the farm goes through",
    )
    hsm_units: int = Field(0, ge=0, le=64, description="HSM units per node (0: none)")
    hsm_op_ms: float = Field(2.0, gt=0, description="HSM time per RSA private-key operation")


class Clients(_Strict):
    """The client machines: light state made for each session (no node object each), each
    its own machine (its CPU time never queues), so a population may have millions."""

    nodes: int = Field(
        1, ge=1, le=10_000_000, description="client machines; a session runs on the key's one"
    )
    cores: int = Field(1024, ge=1, le=1024, description="not used: a client never queues")


class Topology(_Strict):
    client: Clients = Clients(nodes=1, cores=1024)
    intermediary: Role = Role()
    sts: Role = Role()
    provider: Role = Role()
    #: the Kerberos KDC (AS and TGS exchanges) of the kerberos and sct-spnego strategies
    kdc: Role = Role()


class Link(_Strict):
    latency_ms: float = Field(1.0, ge=0, le=60_000, description="one-way propagation delay")
    bandwidth_mbps: float = Field(
        1000.0, gt=0, le=1_000_000, description="transmit rate of each direction"
    )
    jitter_ms: float = Field(0.0, ge=0, description="mean of an exponential extra delay")
    loss: float = Field(0.0, ge=0, lt=1, description="probability that a message is lost")
    bit_error_rate: float = Field(
        0.0, ge=0, lt=1e-2, description="a message of n bytes is lost with 1-(1-ber)^(8n)"
    )
    overhead_bytes: int = Field(350, ge=0, description="HTTP and TCP framing per message")
    timeout_s: float = Field(2.0, gt=0, description="sender's retransmission timeout")
    retries: int = Field(2, ge=0, le=10, description="retransmissions before the message fails")
    tls_handshake_bytes: int = Field(
        4500, ge=0, description="bytes of a TLS handshake, on a session's first use of a link"
    )


class Run(_Strict):
    duration_s: float = Field(60.0, gt=0, le=1e7, description="simulated seconds of the run")
    warmup_s: float = Field(
        5.0, ge=0, description="seconds left out of the statistics at the start"
    )
    warmup: Literal["fixed", "mser5"] = Field(
        "fixed",
        description="fixed: the message statistics start at warmup_s; mser5: at the "
        "truncation point MSER-5 finds in each replication's latencies (in the order the "
        "messages ended, from warmup_s on; reported as warmup.truncation_s). Keeps every "
        "message of the run in memory; resource figures keep the window from warmup_s",
    )
    batches: int = Field(
        20,
        ge=0,
        le=1000,
        description="one replication: 95 % confidence intervals of the mean latency and the "
        "throughput by batch means over this many equal time batches of the window (0: none)",
    )
    max_messages: int | None = Field(
        None, gt=0, description="stop starting sessions after this many application messages"
    )
    replications: int = Field(
        1, ge=1, le=1000, description="independent runs, combined with 95 % confidence intervals"
    )
    seed: int = Field(1, ge=0, description="the random seed: same seed, same summary")
    fidelity: Literal["full", "replay"] = Field(
        "replay",
        description="full: every message built and verified for real; replay: the ledgers "
        "and sizes recorded from real executions, replayed",
    )
    target_ci95_ms: float | None = Field(
        None,
        gt=0,
        description="add replications until the 95% CI half-width of run.ci_metric "
        "(mean latency unless told) of every strategy is at most this (at least 3, at most "
        "max_replications)",
    )
    ci_metric: Literal[
        "latency_ms.mean", "latency_ms.p50", "latency_ms.p95", "latency_ms.p99", "throughput_per_s"
    ] = Field(
        "latency_ms.mean",
        description="the metric whose 95% CI half-width target_ci95_ms bounds (in its own "
        "unit: ms, or messages/s for throughput_per_s)",
    )
    max_replications: int = Field(30, ge=3, le=1000)
    max_in_flight_sessions: int = Field(
        50_000,
        ge=1,
        le=10_000_000,
        description="open workload: when more sessions than this are in flight at once, the "
        "offered load exceeds the capacity; arrivals stop there and the summary warns",
    )
    record_messages: int = Field(
        200_000,
        ge=0,
        le=50_000_000,
        description="application messages kept per replication and strategy for "
        "messages.csv (the first ones started); the summary always sees every message",
    )

    @model_validator(mode="after")
    def _warmup_within_run(self):
        if self.warmup_s >= self.duration_s:
            raise ValueError("run.warmup_s must be shorter than run.duration_s")
        if self.batches == 1:
            raise ScenarioError("run.batches", "one batch gives no interval: 0 or at least 2")
        return self


class OpOverride(_Strict):
    fixed_us: float | None = Field(None, ge=0, description="fixed CPU cost of one operation")
    per_byte_ns: float | None = Field(
        None, ge=0, description="CPU cost per unit of size (byte, or key bit for RSA)"
    )
    wait_us: float | None = Field(
        None, ge=0, description="waiting without a core per unit of size (network round trips)"
    )


class Profile(_Strict):
    name: str = Field("default", description="'default' or a path to a calibrated JSON profile")
    scale: float = Field(1.0, gt=0, description="CPU speed factor: 2 = twice as slow")
    overrides: dict[str, OpOverride] = Field(
        default_factory=dict, description="per ledger op (rsa_sign, c14n, ...): its costs"
    )
    variability: Literal["deterministic", "exponential", "lognormal"] = Field(
        "deterministic", description="how a service time varies around the profile's cost"
    )
    cv: float = Field(0.5, ge=0, le=10, description="coefficient of variation (lognormal)")


class Fault(_Strict):
    kind: Literal["sts_crash", "provider_restart", "link_outage", "clock_skew"]
    at_s: float = Field(ge=0)
    duration_s: float = Field(0.0, ge=0)
    node: str | None = None
    link: str | None = None
    skew_s: float = 0.0


class Adversary(_Strict):
    """An attacker on a link, attacking a share of the application requests crossing it."""

    link: str = Field("client-provider", description="'<from>-<to>' roles, request direction")
    attacks: list[Literal[ATTACKS]] = Field(
        default_factory=lambda: ["steal-token", "replay", "wrap", "tamper"],
        min_length=1,
        description="any of " + ", ".join(ATTACKS),
    )
    probability: float = Field(0.1, gt=0, le=1, description="share of requests attacked")
    sees_tls: bool = Field(
        False, description="the link has no transport protection (or the attacker terminates TLS)"
    )
    campaigns: int = Field(
        1,
        ge=1,
        le=1000,
        description="replay-flood and padding-oracle: campaigns per replication at most "
        "(each costs the receiver thousands of messages)",
    )
    flood_messages: int = Field(
        10_000,
        ge=1,
        le=10_000_000,
        description="replay-flood: messages per flood (above a replay store's capacity, a "
        "store that evicts by count would forget the captured message)",
    )
    oracle_queries: int = Field(
        4096,
        ge=256,
        le=1_000_000,
        description="padding-oracle: queries an attacker spends on one block before giving up",
    )

    @field_validator("link")
    @classmethod
    def _link_roles(cls, value: str) -> str:
        ends = value.split("-")
        if len(ends) != 2 or not set(ends) <= set(LINK_ENDS):
            raise ValueError(f"must be '<from>-<to>' with roles in {', '.join(LINK_ENDS)}")
        return value


class Scenario(_Strict):
    name: str = "scenario"
    description: str = ""
    strategies: list[str] = Field(min_length=1)
    strategy_options: dict[str, dict] = Field(default_factory=dict)
    workload: Workload
    topology: Topology = Topology()
    links: dict[str, Link] = Field(default_factory=dict)
    run: Run = Run()
    profile: Profile = Profile()
    faults: list[Fault] = Field(default_factory=list)
    adversary: Adversary | None = None

    @field_validator("strategies")
    @classmethod
    def _known_strategies(cls, value: list[str]) -> list[str]:
        for name in value:
            _check_strategy(name)
        if len(set(value)) != len(value):
            raise ValueError("a strategy is listed twice")
        return value

    @field_validator("strategy_options")
    @classmethod
    def _options_for_known(cls, value: dict) -> dict:
        for name in value:
            if name not in STRATEGY_NAMES:
                raise ValueError(f"options for unknown strategy {name!r}")
        return value

    @field_validator("links")
    @classmethod
    def _link_names(cls, value: dict) -> dict:
        for name in value:
            ends = name.split("-")
            if name != "default" and (len(ends) != 2 or not set(ends) <= set(LINK_ENDS)):
                raise ValueError(
                    f"link {name!r} must be 'default' or '<a>-<b>' with a, b in "
                    + ", ".join(LINK_ENDS)
                )
        return value

    @model_validator(mode="after")
    def _spnego_mechanism(self):
        """sct-spnego negotiates Kerberos when the scenario has a ``kdc`` role
        (``[topology.kdc]``), else NTLM, WCF's fallback; ``mechanism`` given wins."""
        if "sct-spnego" in self.strategies:
            options = self.strategy_options.get("sct-spnego", {})
            if "mechanism" not in options:
                mechanism = "kerberos" if "kdc" in self.topology.model_fields_set else "ntlm"
                self.strategy_options["sct-spnego"] = {**options, "mechanism": mechanism}
        return self

    @model_validator(mode="after")
    def _mixed_classes(self):
        classes = self.workload.classes
        named = {name: c.strategy for name, c in classes.items() if c.strategy is not None}
        if not named:
            return self
        for name, client_class in classes.items():
            if client_class.strategy is None:
                raise ScenarioError(
                    f"workload.classes.{name}.strategy",
                    "when one client class names a strategy, every class must (a mixed run)",
                )
        if set(self.strategies) != set(named.values()):
            raise ScenarioError(
                "strategies",
                "a mixed run (client classes with strategies) runs exactly its classes' "
                f"strategies: list {sorted(set(named.values()))}",
            )
        if self.adversary is not None:
            raise ScenarioError(
                "adversary", "attacks run one strategy at a time; not in a mixed run"
            )
        return self

    @property
    def mixed(self) -> bool:
        """Whether client classes carry their strategies (all of them run together)."""
        return any(c.strategy is not None for c in self.workload.classes.values())

    def class_strategy(self, client_class: str | None) -> str:
        """The strategy a session of ``client_class`` runs in a mixed run."""
        return self.workload.classes[client_class].strategy

    def link(self, a: str, b: str) -> Link:
        """The link between roles ``a`` and ``b`` (either order), else ``links.default``."""
        return (
            self.links.get(f"{a}-{b}")
            or self.links.get(f"{b}-{a}")
            or self.links.get("default")
            or Link()
        )


_TYPE_TAGS = frozenset(("int", "float", "str", "bool", "dict", "list", "function-after"))


def _is_tag(part) -> bool:
    """pydantic adds the member type of a union (``int``, ``dict[str,float]``) to locations."""
    return isinstance(part, str) and (part in _TYPE_TAGS or "[" in part)


def _dotted(location: tuple) -> str:
    return ".".join(str(part) for part in location if not _is_tag(part)) or "scenario"


def load_scenario(data: Mapping) -> Scenario:
    """Validate a parsed scenario; any problem is a ScenarioError naming the dotted key."""
    try:
        return Scenario.model_validate(dict(data))
    except ValidationError as exc:
        error = exc.errors()[0]
        key = _dotted(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif any(_is_tag(part) for part in error["loc"]) and key.startswith("workload."):
            message = (
                f"must be an integer or a table {{value = weight, ...}} (got {error['input']!r})"
            )
        elif "input" in error and error["type"] not in ("missing",):
            message = f"{message} (got {error['input']!r})"[:300]
        raise ScenarioError(key, message) from None


def read_scenario_file(path) -> dict:
    """The TOML of a scenario file; unreadable or invalid TOML is a ScenarioError."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ScenarioError("SCENARIO", f"no such file: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError("SCENARIO", f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ScenarioError("SCENARIO", f"cannot read {path}: {exc.strerror}") from None


def apply_overrides(data: Mapping, sets: list[str]) -> dict:
    """Apply ``dotted.key=value`` strings; the value is read as TOML, a bare word as a string."""
    result = copy.deepcopy(dict(data))
    for item in sets:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ScenarioError(key or item, "--set takes dotted.key=value")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ScenarioError(key, f"{part} is not a table")
            node = child
        node[parts[-1]] = value
    return result
