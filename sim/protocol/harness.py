"""Run sessions between real engines without SimPy: an in-memory router delivering each
Send to a node (a reply to the node named in ``to``, a request to the first node of the
role). For tests, documentation and message traces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sim.protocol.api import AppDone, Send, SessionClosed, Step, role_of
from sim.protocol.registry import Strategy


@dataclass(kw_only=True)
class Delivery:
    """One message on the wire."""

    seq: int
    t: float
    sender: str
    receiver: str
    send: Send
    #: the receiver's step that handled this message (and built any reply)
    handled: Step | None = None

    @property
    def handled_ops(self) -> tuple:
        return self.handled.ops if self.handled is not None else ()


@dataclass
class Outcome:
    results: list[AppDone] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    ops: dict[str, list[tuple[str, tuple]]] = field(default_factory=dict)
    closed: bool = False
    #: the client's first step of each request() / close(), in order
    origins: list[Step] = field(default_factory=list)


class Harness:
    """One client and one node per server role, talking through a router."""

    def __init__(
        self,
        strategy: Strategy,
        client_id: str = "client-0",
        *,
        tamper: Callable[[Delivery], bytes | None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.strategy = strategy
        self.client_name = client_id
        self.client = strategy.client(client_id)
        self.servers = {
            f"{role}-0": strategy.server(role, f"{role}-0", shared=strategy.shared_state(role))
            for role in strategy.roles
        }
        self.tamper = tamper
        self.now = 0.0
        self.seq = 0

    def _node_for(self, send: Send) -> str:
        if send.reply:
            return send.to
        return f"{role_of(send.to)}-0"

    def _run(self, origin: str, step: Step, outcome: Outcome, now: float) -> None:
        outcome.ops.setdefault(origin, []).append(("step", step.ops))
        for event in step.events:
            if isinstance(event, AppDone):
                outcome.results.append(event)
            elif isinstance(event, SessionClosed):
                outcome.closed = True
            elif isinstance(event, Send):
                target = self._node_for(event)
                self.seq += 1
                delivery = Delivery(seq=self.seq, t=now, sender=origin, receiver=target, send=event)
                outcome.deliveries.append(delivery)
                data = event.data
                if self.tamper is not None:
                    replaced = self.tamper(delivery)
                    if replaced is not None:
                        data = replaced
                receiver = self.client if target == self.client_name else self.servers[target]
                handled = receiver.receive(data, sender=origin, now=now)
                delivery.handled = handled
                self._run(target, handled, outcome, now)

    def request(self, payload: bytes, now: float, outcome: Outcome | None = None) -> Outcome:
        outcome = outcome or Outcome()
        step = self.client.request(payload, now=now)
        outcome.origins.append(step)
        self._run(self.client_name, step, outcome, now)
        return outcome

    def close(self, now: float, outcome: Outcome | None = None) -> Outcome:
        outcome = outcome or Outcome()
        step = self.client.close(now=now)
        outcome.origins.append(step)
        self._run(self.client_name, step, outcome, now)
        return outcome

    def session(self, payloads: list[bytes], start: float = 0.0, gap: float = 1.0) -> Outcome:
        """Send every payload in turn (``gap`` seconds apart), then close the session."""
        outcome = Outcome()
        now = start
        for payload in payloads:
            self.request(payload, now, outcome)
            now += gap
        self.close(now, outcome)
        return outcome
