"""Replay fidelity: scripts of application messages recorded from the real protocol engines,
per situation, then replayed step by step by the SimPy model.

A script is the client's first Step of a message and the Step each receiver took, in order.
Message sizes and ledgers are deterministic for a configuration, so a script depends only on
its *situation* (the memo key):

* the message's position in its protocol session: 0 (establishment), 1, 2 and later (the
  steady state, which repeats the third recorded message exactly), or the close; a session
  restarted after a transport failure starts again at 0;
* the payload size (one set of scripts per size of the workload's discrete set);
* the deliveries at which the message reached a server node new to the session (never
  seen by it, restarted since, or idle longer than the strategy's ``idle_timeout`` for the
  role, so that its cache evicted the session's state), as a tuple of
  (role, delivery index). The model tracks that per session in both fidelities; replay
  switches to the script recorded with a fresh node there, recording it with the real
  engines the first time the situation occurs (nested situations included). Where the
  fresh node behaves the same (stateless roles, a farm-wide shared cache) the script is
  the same object; where it does not (per-node SCT caches) it holds the real
  BadContextToken fault and the client's recovery.

* the clock offsets at which deliveries reached a receiver whose clock differs from the
  client's when the message started (a skewed server node, or the client itself after its
  clock moved: ``clock_skew`` faults), as a tuple of (delivery index, offset): replay
  switches to a script recorded with that receiver's clock that far ahead or behind
  (so a Timestamp the receiver finds in the future or expired is refused as in ``full``);
* whether the message starts past the client's horizon (``Client.horizon``: its
  cached token or security context falls due for renewal), which the model tracks per
  session from the horizon each replayed script reports; such a message is recorded with
  the client's clock past that point, so renewals happen where ``full`` has them;
* once a message of the session met clock offsets or its horizon, or failed after
  reaching a fresh node, the session's history: the position, offsets and horizon flag of
  each earlier message, and the fresh-node switches of each that failed (consecutive
  steady-state ones alike counted once), recorded in that order, because what a skewed
  node, a renewal or a failed recovery gave the client shapes the later messages (a client
  whose recovery failed has lost its context and negotiates again). The switches of a
  message that got through them are not part of it: that session carries state of the
  same shape.

The recorder's clock advances a millisecond a message (well inside any token lifetime), so
no renewal happens there unless a situation asks for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

from sim.engine.stores import attach_replay, new_store
from sim.errors import ScenarioError
from sim.protocol.api import CLIENT, Send, Step, role_of


class Fidelity(Enum):
    """How a run makes its messages (``run.fidelity``, whose strings are the values)."""

    #: every message built, signed, encrypted and verified by the real engines
    FULL = "full"
    #: each situation recorded once from the real engines, then replayed
    REPLAY = "replay"

    @classmethod
    def of(cls, value: Fidelity | str) -> Fidelity:
        """``value`` as a Fidelity; a string other than the values is a ScenarioError."""
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(repr(f.value) for f in cls)
            raise ScenarioError("run.fidelity", f"{value!r} is not one of {known}") from None


#: recorded messages per session; later ones repeat the last recorded one exactly
SCRIPTED_MESSAGES = 3
CLOSE = -1
#: the recorder's clock step between messages (seconds)
RECORDER_STEP = 0.001


@dataclass
class MessageScript:
    """One application message (or a close) as recorded from real engines."""

    origin: Step
    handled: list[Step]
    #: role of the receiver of each delivery ("" for a reply, which goes to a named node)
    receivers: list[str] = field(default_factory=list)
    #: when the message moved the client's horizon: how far after the message's start the
    #: horizon now lies (``math.inf``: none); None when the message left it alone
    horizon: float | None = None


@dataclass
class Scripts:
    """Every situation of a session, recorded for one strategy and configuration."""

    messages: list[MessageScript]
    close: MessageScript
    strategy: object = None
    payload: bytes = b""
    shared_roles: frozenset = frozenset()
    #: the roles whose farm shares one replay store (its lookups a round trip away)
    replay_roles: frozenset = frozenset()
    #: (position, switches, offsets) -> the script where, at each (role, delivery) of
    #: ``switches``, the message reaches a node of ``role`` new to the session and, at each
    #: (delivery, offset) of ``offsets``, a receiver whose clock is ``offset`` seconds off
    #: the client's; recorded on first need
    fresh: dict[tuple[int, tuple, tuple], MessageScript] = field(default_factory=dict)

    def script(self, index: int) -> MessageScript:
        if index == CLOSE:
            return self.close
        return self.messages[min(index, len(self.messages) - 1)]

    def position(self, index: int) -> int:
        return CLOSE if index == CLOSE else min(index, len(self.messages) - 1)

    def variant(
        self,
        position: int,
        switches: tuple,
        offsets: tuple,
        parent: MessageScript | None,
        d: int,
        prior: tuple = (),
        aged: bool = False,
    ) -> MessageScript:
        """The script of ``position`` with fresh nodes at ``switches``, receiver clock
        ``offsets``, the session's ``prior`` history and, when ``aged``, the client past its
        horizon (memoized); it must agree with ``parent`` before delivery ``d``."""
        key = (position, switches, offsets, prior, aged)
        script = self.fresh.get(key)
        if script is None:
            recorder = _Recorder(self.strategy, set(self.shared_roles), set(self.replay_roles))
            if prior:
                earlier = prior
            else:
                count = len(self.messages) if position == CLOSE else position
                earlier = tuple((i, (), (), False) for i in range(count))
            for _, earlier_switches, earlier_offsets, earlier_aged in earlier:
                recorder.message(self.payload, earlier_switches, earlier_offsets, earlier_aged)
            if position == CLOSE:
                script = recorder.close(switches, offsets, aged)
            else:
                script = recorder.message(self.payload, switches, offsets, aged)
            if parent is None:
                self.fresh[key] = script
                return script
            if _shapes(parent, d) != _shapes(script, d):
                raise RuntimeError(
                    f"{self.strategy.name}: scripts diverge before delivery {d} "
                    f"(fresh nodes {switches}, clock offsets {offsets})"
                )
            if _shapes(parent) == _shapes(script) and parent.horizon == script.horizon:
                script = parent  # the fresh node behaves the same: keep the same objects
            self.fresh[key] = script
        return script


class _Recorder:
    """One client and server nodes by name; routes each request to the current node of its
    role, each reply to the node named in ``to``."""

    def __init__(self, strategy, shared_roles: set[str], replay_roles: set[str]) -> None:
        self.strategy = strategy
        self.client = strategy.client("client-0")
        self.shared = {
            role: strategy.shared_state(role) if role in shared_roles else None
            for role in strategy.roles
        }
        #: the replay store of each role whose farm shares one (the others keep their own)
        self.replay = {
            role: new_store(remote=True) for role in strategy.roles if role in replay_roles
        }
        self.servers: dict[str, object] = {}
        self.route = {role: f"{role}-0" for role in strategy.roles}
        self.used: dict[str, int] = {}
        self.clock = 0.0

    def _server(self, name: str):
        engine = self.servers.get(name)
        if engine is None:
            role = role_of(name)
            engine = self.strategy.server(role, name, shared=self.shared[role])
            attach_replay(engine, self.replay.get(role))
            self.servers[name] = engine
        return engine

    def run(
        self, origin: Step, now: float, switches: tuple = (), offsets: tuple = ()
    ) -> MessageScript:
        """Follow ``origin`` to the end; at each (role, d) of ``switches``, from the d-th
        delivery on, requests to ``role`` go to a node that has never seen this client; at
        each (d, offset) of ``offsets`` the d-th receiver's clock reads ``now + offset``."""
        ahead = dict(offsets)
        script = MessageScript(origin, [])
        sender, step = "client-0", origin
        while True:
            sends = [e for e in step.events if isinstance(e, Send)]
            if not sends:
                return script
            send = sends[0]  # the model follows one message in flight per chain, too
            for role, d in switches:
                if len(script.handled) == d:
                    self.used[role] = self.used.get(role, 0) + 1
                    self.route[role] = f"{role}-{self.used[role]}"
            target = send.to if send.reply else self.route[role_of(send.to)]
            receiver = self.client if role_of(target) == CLIENT else self._server(target)
            step = receiver.receive(
                send.data, sender=sender, now=now + ahead.get(len(script.handled), 0.0)
            )
            script.handled.append(step)
            script.receivers.append("" if send.reply else role_of(target))
            sender = target

    def message(
        self, payload: bytes, switches: tuple = (), offsets: tuple = (), aged: bool = False
    ) -> MessageScript:
        """Record the next application message (past the client's horizon when ``aged``)."""
        return self._record(
            lambda now: self.client.request(payload, now=now), switches, offsets, aged
        )

    def close(self, switches: tuple = (), offsets: tuple = (), aged: bool = False):
        """Record the session's close."""
        return self._record(lambda now: self.client.close(now=now), switches, offsets, aged)

    def _record(self, first, switches: tuple, offsets: tuple, aged: bool) -> MessageScript:
        before = self.client.horizon()
        now = max(self.clock, before) if aged else self.clock
        script = self.run(first(now), now, switches, offsets)
        after = self.client.horizon()
        if after != before:
            script.horizon = after - now
        self.clock = now + RECORDER_STEP
        return script


def _shape(step: Step) -> tuple:
    events = tuple(
        (type(e).__name__, e.to, e.kind, len(e.data), e.reply, e.tls, e.token_service, e.fault)
        if isinstance(e, Send)
        else e
        for e in step.events
    )
    return step.ops, events


def _shapes(script: MessageScript, end: int | None = None) -> list:
    return [_shape(script.origin)] + [_shape(s) for s in script.handled[:end]]


def record_scripts(
    strategy,
    messages: int,
    payload: bytes,
    shared_roles: set[str],
    replay_roles: set[str] = frozenset(),
) -> Scripts:
    """Record the scripts of a session of ``messages`` messages (at most SCRIPTED_MESSAGES
    distinct ones) and its close; fresh-node situations are recorded when first met.
    ``shared_roles`` share a context cache per farm, ``replay_roles`` a replay store."""
    count = min(messages, SCRIPTED_MESSAGES)
    recorder = _Recorder(strategy, shared_roles, set(replay_roles))
    return Scripts(
        [recorder.message(payload) for _ in range(count)],
        recorder.close(),
        strategy,
        payload,
        frozenset(shared_roles),
        frozenset(replay_roles),
    )


class History:
    """What replay keeps of a protocol session (the memo key's ``prior`` and the client's
    horizon): ``prior`` stays empty until a message meets clock offsets or the horizon, or
    fails after reaching a node new to the session, then holds each message's (position,
    switches, offsets, aged), steady-state repeats alike counted once. A message's fresh-node
    switches are kept only when it failed: a session that got through them carries state of
    the same shape, one whose recovery failed does not (its client lost its context)."""

    __slots__ = ("count", "due", "prior")

    def __init__(self) -> None:
        self.count = 0  # messages of the session so far
        self.prior: tuple = ()
        #: the client's horizon, on the client's clock (``math.inf``: none yet)
        self.due = math.inf

    def add(self, cursor: ScriptCursor, ok: bool = True) -> None:
        """Account the message ``cursor`` just replayed (``ok``: it succeeded)."""
        self.count += 1
        horizon = cursor.script.horizon
        if horizon is not None:
            self.due = cursor.start + horizon
        switches = () if ok else cursor.switches
        if cursor.position != CLOSE and (cursor.offsets or cursor.aged or switches or self.prior):
            self.remember(cursor.position, switches, cursor.offsets, cursor.aged)

    def remember(self, position: int, switches: tuple, offsets: tuple, aged: bool) -> None:
        """Add a message (its position, kept switches, clock offsets and whether it was
        aged) to ``prior``, once ``count`` counts it: the message met offsets or the
        horizon, failed after fresh nodes, or came after one that did."""
        steady = SCRIPTED_MESSAGES - 1
        if not self.prior:  # the first one: the messages before it met none of these
            self.prior = tuple(
                (min(i, steady), (), (), False) for i in range(min(self.count - 1, steady + 1))
            )
        entry = (position, switches, offsets, aged)
        if not (self.prior and self.prior[-1] == entry and entry[0] == steady):
            self.prior = (*self.prior, entry)


class ScriptCursor:
    """Replays one message's script, switching to a variant whenever the model says a node
    the message reaches is new to the session, or keeps a clock other than the client's
    (nested switches included)."""

    __slots__ = (
        "aged",
        "client_skew",
        "index",
        "offsets",
        "position",
        "prior",
        "script",
        "scripts",
        "start",
        "switches",
    )

    def __init__(
        self,
        scripts: Scripts,
        index: int,
        client_skew: float = 0.0,
        prior: tuple = (),
        aged: bool = False,
        start: float = 0.0,
    ) -> None:
        self.scripts = scripts
        # ``Scripts.position`` and ``Scripts.script`` inlined (once a message)
        if index == CLOSE:
            self.position, self.script = CLOSE, scripts.close
        else:
            last = len(scripts.messages) - 1
            self.position = position = index if index < last else last
            self.script = scripts.messages[position]
        if prior or aged:
            self.script = scripts.variant(self.position, (), (), None, 0, prior, aged)
        self.index = 0
        self.switches: tuple = ()
        self.offsets: tuple = ()
        self.client_skew = client_skew
        self.prior = prior
        self.aged = aged
        #: when the message started, on the client's clock
        self.start = start

    @property
    def origin(self) -> Step:
        return self.script.origin

    def handle(self, node, send: Send, sender: str, now: float, fresh: bool) -> Step:
        """``Chain``'s handler: the step of the node that receives the next delivery."""
        if fresh or node.skew != self.client_skew:
            return self.next(node, fresh)
        step = self.script.handled[self.index]
        self.index += 1
        return step

    def next(self, node, fresh: bool) -> Step:
        """The step of ``node`` for the next delivery (``fresh``: new to the session)."""
        # against the client's clock when the message started (the client's own clock may
        # have moved since, for its later steps)
        offset = node.skew - self.client_skew
        if fresh or offset:
            self.script, self.switches, self.offsets = switch(
                self.scripts,
                self.script,
                self.position,
                self.index,
                self.switches,
                self.offsets,
                self.prior,
                self.aged,
                node.role if fresh else None,
                offset,
            )
        step = self.script.handled[self.index]
        self.index += 1
        return step


def switch(
    scripts: Scripts,
    script: MessageScript,
    position: int,
    index: int,
    switches: tuple,
    offsets: tuple,
    prior: tuple,
    aged: bool,
    fresh_role: str | None,
    offset: float,
) -> tuple[MessageScript, tuple, tuple]:
    """The variant a message replaying ``script`` at delivery ``index`` switches to, when
    that delivery reaches a node of ``fresh_role`` new to the session (None: not new) or a
    receiver whose clock is ``offset`` seconds off the client's: (the script, the message's
    switches and offsets so far)."""
    if fresh_role is not None:
        switches = (*switches, (fresh_role, index))
    if offset:
        offsets = (*offsets, (index, offset))
    script = scripts.variant(position, switches, offsets, script, index, prior, aged)
    return script, switches, offsets
