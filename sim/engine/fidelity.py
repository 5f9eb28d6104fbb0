"""Replay fidelity: scripts of application messages recorded once from the real protocol
engines, per situation, then replayed step by step by the SimPy model.

A script is the client's first Step of a message and the Step each receiver took, in order.
Message sizes and ledgers are deterministic for a configuration, so a script depends only on
its *situation*:

* the message's position in the session: 0 (establishment), 1, 2 and later (steady state,
  which repeats the third recorded message exactly), or the close;
* whether a server node the message reaches has not handled this session before, or has
  restarted since (it lost its per-session state: an SCT context). The model tracks that
  per session in both fidelities; a replayed message switches to the script recorded with a
  fresh node of that role at the delivery that reaches it (also mid-message, when the
  balancer re-routes away from a node that went down). Where the fresh node behaves the
  same (stateless roles, a farm-wide shared cache) the scripts are identical and none is
  kept; where it does not (per-node SCT caches) the fresh script holds the real
  BadContextToken fault and the client's recovery.

Only the first fresh node of a message switches scripts; a second one in the same message
(both the STS and the provider new to the session, with both holding per-session state) is
replayed as recorded. Clock skew is not part of the situation: ``full`` fidelity models it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.protocol.api import CLIENT, Send, Step, role_of

#: recorded messages per session; later ones repeat the last recorded one exactly
SCRIPTED_MESSAGES = 3
CLOSE = -1


@dataclass
class MessageScript:
    """One application message (or a close) as recorded from real engines."""

    origin: Step
    handled: list[Step]
    #: role of the receiver of each delivery ("" for a reply, which goes to a named node)
    receivers: list[str] = field(default_factory=list)


@dataclass
class Scripts:
    """Every situation of a session, recorded for one strategy and configuration."""

    messages: list[MessageScript]
    close: MessageScript
    #: (position, role, delivery) -> the script where that delivery reaches a node of
    #: ``role`` new to the session
    fresh: dict[tuple[int, str, int], MessageScript] = field(default_factory=dict)

    def script(self, index: int) -> MessageScript:
        if index == CLOSE:
            return self.close
        return self.messages[min(index, len(self.messages) - 1)]

    def position(self, index: int) -> int:
        return CLOSE if index == CLOSE else min(index, len(self.messages) - 1)


class _Recorder:
    """One client and server nodes by name; routes each request to the current node of its
    role, each reply to the node named in ``to``."""

    def __init__(self, strategy, shared_roles: set[str]) -> None:
        self.strategy = strategy
        self.client = strategy.client("client-0")
        self.shared = {
            role: strategy.shared_state(role) if role in shared_roles else None
            for role in strategy.roles
        }
        self.servers: dict[str, object] = {}
        self.route = {role: f"{role}-0" for role in strategy.roles}

    def _server(self, name: str):
        engine = self.servers.get(name)
        if engine is None:
            role = role_of(name)
            engine = self.strategy.server(role, name, shared=self.shared[role])
            self.servers[name] = engine
        return engine

    def run(self, origin: Step, now: float, switch: tuple[str, int] | None = None) -> MessageScript:
        """Follow ``origin`` to the end; ``switch`` = (role, d): from the d-th delivery on,
        requests to ``role`` go to a node that has never seen this client."""
        script = MessageScript(origin, [])
        sender, step = "client-0", origin
        while True:
            sends = [e for e in step.events if isinstance(e, Send)]
            if not sends:
                return script
            send = sends[0]  # the model follows one message in flight per chain, too
            if switch is not None and len(script.handled) == switch[1]:
                self.route[switch[0]] = f"{switch[0]}-1"
            target = send.to if send.reply else self.route[role_of(send.to)]
            receiver = self.client if role_of(target) == CLIENT else self._server(target)
            step = receiver.receive(send.data, sender=sender, now=now)
            script.handled.append(step)
            script.receivers.append("" if send.reply else role_of(target))
            sender = target

    def message(self, payload: bytes, now: float, switch=None) -> MessageScript:
        return self.run(self.client.request(payload, now=now), now, switch)

    def close(self, now: float, switch=None) -> MessageScript:
        return self.run(self.client.close(now=now), now, switch)


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


def record_scripts(strategy, messages: int, payload: bytes, shared_roles: set[str]) -> Scripts:
    """Record the scripts of a session of ``messages`` messages (at most SCRIPTED_MESSAGES
    distinct ones) and its close, plus every fresh-node situation that differs: for each
    request delivery ``d`` to a role, the script where that delivery reaches a node new to
    the session (key ``(position, role, d)``)."""
    count = min(messages, SCRIPTED_MESSAGES)
    recorder = _Recorder(strategy, shared_roles)
    scripts = Scripts(
        [recorder.message(payload, float(i)) for i in range(count)],
        recorder.close(float(count)),
    )
    for position in [*range(count), CLOSE]:
        known = scripts.script(position)
        for d, role in enumerate(known.receivers):
            if not role or role == CLIENT:
                continue
            if position == 0 and role not in known.receivers[:d]:
                continue  # a new session's first node of a role is not "fresh"
            recorder = _Recorder(strategy, shared_roles)
            for i in range(count if position == CLOSE else position):
                recorder.message(payload, float(i))
            if position == CLOSE:
                alternative = recorder.close(float(count), (role, d))
            else:
                alternative = recorder.message(payload, float(position), (role, d))
            if _shapes(known) == _shapes(alternative):
                continue
            if _shapes(known, d) != _shapes(alternative, d):
                raise RuntimeError(
                    f"{strategy.name}: scripts diverge before reaching the fresh {role}"
                )
            scripts.fresh[(position, role, d)] = alternative
    return scripts


class ScriptCursor:
    """Replays one message's script, switching to a fresh-node script when the model says a
    node the message reaches is new to the session."""

    __slots__ = ("index", "position", "script", "scripts", "switched")

    def __init__(self, scripts: Scripts, index: int) -> None:
        self.scripts = scripts
        self.position = scripts.position(index)
        self.script = scripts.script(index)
        self.index = 0
        self.switched = False

    @property
    def origin(self) -> Step:
        return self.script.origin

    def next(self, role: str, fresh: bool) -> Step:
        if fresh and not self.switched and self.scripts.fresh:
            alternative = self.scripts.fresh.get((self.position, role, self.index))
            if alternative is not None:
                self.script = alternative
                self.switched = True
        step = self.script.handled[self.index]
        self.index += 1
        return step
