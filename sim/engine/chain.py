"""The message chain: one application message (or a session's close) followed from the
client's first Step to its AppDone, each Step charged on its node's cores (and HSM), each
Send moved over its wire to the node that takes it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from heapq import heappush
from typing import Protocol

from simpy.events import NORMAL

from sim.engine.balancer import Farm
from sim.engine.network import Bill, Network, StepInfo
from sim.engine.resources import Node, Wire, hop_event
from sim.engine.shadows import ContextShadows
from sim.protocol.api import CLIENT, AppDone, Send, SessionClosed, Step
from sim.wire.ledger import Op

#: the ledger of one end of a TLS handshake (RSA-2048 server key)
TLS_HANDSHAKE = ((Op.TLS_HANDSHAKE.value, 2048),)
#: the transport's faults (the client retries them on a new session)
NODE_DOWN = "wssim:NodeDown"
TIMEOUT = "wssim:Timeout"

# Enum members read from module globals: an Enum class attribute costs some 300 ns a read
_TOKEN_REQUEST = Bill.TOKEN_REQUEST
_TOKEN_REPLY = Bill.TOKEN_REPLY
_APP_REQUEST = Bill.APP_REQUEST
_APP_RESPONSE = Bill.APP_RESPONSE

#: ``Chain``'s handler: (node taking the delivery, the Send, sender's name, the node's clock,
#: whether the node is new to the session) -> the node's Step
Handler = Callable[[Node, Send, str, float, bool], Step]


@dataclass(slots=True)
class MessageRecord:
    """One application message of the general session (full fidelity, a traced replay,
    MSER-5) while it runs: what the statistics and its row of messages.csv take as it ends
    (kept only by MSER-5; ``replay_session`` keeps these in locals)."""

    session: int
    seq: int
    start: float
    end: float = 0.0
    client_class: str = "default"
    #: the strategy the message's session ran (several in one run when client classes
    #: carry their own strategies)
    strategy: str = ""
    ok: bool = False
    fault: str | None = None
    request_bytes: int = 0
    response_bytes: int = 0
    token_bytes: int = 0
    sts_exchanges: int = 0
    retries: int = 0
    recoveries: int = 0
    #: the op counts (``Network.op_counts``) of each step the message took, in order (the
    #: statistics take them when the message ends; the record then lets them go)
    op_steps: list[tuple[tuple[str, int], ...]] = field(default_factory=list)


class DeliveryWatcher(Protocol):
    """Shown every delivery of a chain before its target takes it (the adversary)."""

    def watch(self, chain: Chain, send: Send, source: Node, target: Node) -> None: ...


class Chain:
    """Runs the application messages (and the close) of one session, one at a time, from
    each first Step to its AppDone, moving each Send over the network to the node that
    handles it. ``begin`` readies it for the next message; ``run`` follows it."""

    __slots__ = (
        "bound",
        "capture",
        "client",
        "connected",
        "cursor",
        "engine",
        "handle",
        "history",
        "hop",
        "idle",
        "network",
        "record",
        "result",
        "session_key",
        "shadows",
        "steps",
        "strategy",
        "tls_open",
        "watcher",
    )

    def __init__(
        self,
        network: Network,
        session_key: int,
        client: Node,
        strategy: str,
        idle: dict[str, float],
        *,
        shadows: ContextShadows | None = None,
        watcher: DeliveryWatcher | None = None,
    ) -> None:
        self.network = network
        self.session_key = session_key
        self.client = client
        #: the strategy the session runs
        self.strategy = strategy
        #: per role, how long a node keeps the session's state unused (replay: a node that
        #: was idle longer counts as new to the session, as its cache has evicted the state)
        self.idle = idle
        #: replay fidelity's context-cache shadows (None when no node keeps one)
        self.shadows = shadows if shadows else None
        self.watcher = watcher
        #: TLS connections this session has open (reused across its messages)
        self.tls_open: set[str] = set()
        #: per role, the node (its name and epoch) that last handled this session, and when
        self.history: dict[str, tuple[str, int, float]] = {}
        self.handle: Handler | None = None
        self.cursor = None
        self.record: MessageRecord | None = None
        #: the op counts of the message's steps so far (None for the close)
        self.steps: list | None = None
        self.bound: dict[str, Node] = {CLIENT: client}
        self.result: AppDone | SessionClosed | None = None
        #: full fidelity: the session's client engine; the adversary's request waiting
        #: for its response
        self.engine = None
        self.capture = None
        #: least-connections farms: the nodes this exchange holds a connection on
        self.connected: list[tuple[Farm, Node]] = []
        #: the session's one Timeout for its hops, scheduled anew for each (``run``)
        self.hop = None

    def begin(
        self, record: MessageRecord | None, handle: Handler, engine=None, cursor=None
    ) -> None:
        """Make the chain ready for the session's next message (``record``; None for the
        close), whose deliveries ``handle`` takes; ``engine``: full fidelity's client engine;
        ``cursor``: replay's ``ScriptCursor`` when ``handle`` is its ``handle``."""
        self.record = record
        self.steps = None if record is None else record.op_steps
        self.handle = handle
        self.cursor = cursor
        self.engine = engine
        self.bound = {CLIENT: self.client}
        self.result = None
        self.capture = None

    def new_session(self) -> None:
        """The client starts a new protocol session (after a transport failure): no TLS
        connection open, no node seen."""
        self.tls_open.clear()
        self.history.clear()

    def run(self, node: Node, step: Step):
        """Generator: charge ``step`` on ``node`` and follow its events to the end.

        A step costs one event (the end of its CPU time) and a hop one more (the arrival).
        With ``Network.fold``, a hop to a node that never queues (a client) costs none: its
        arrival time is known when the frame is queued, and the node's CPU time starts
        then, so one timeout covers both (the receiving engine is asked at send time, with
        the arrival time as ``now``)."""
        network = self.network
        env = network.env
        warmup = network.warmup
        until = network.until
        fold = network.fold
        wires = network.wires
        memo = network._steps if network.memo_steps else None
        strategy = self.strategy
        bound = self.bound
        record = self.record
        steps = record.op_steps if record is not None else None
        ahead = 0.0  # seconds until a folded delivery reaches ``node``
        # The session's hops wait one after the other on the same Timeout, scheduled anew
        # once it has fired, under the key SimPy gives a new one (``resources.hop_event``).
        hop = self.hop
        if hop is None:
            hop = self.hop = hop_event(env)
        queue = env._queue
        eid = env._eid
        while True:
            # ``Network.step_info``'s memo read here: a replayed step is the same object
            info = None if memo is None else memo.get(id(step))
            if info is None or info.step is not step:
                info = network.step_info(step, node.role, strategy)
            if steps is not None:
                steps.append(info.counts)
            epoch = node.epoch
            delay = self._charge(node, info, ahead)
            if delay < 0:
                raise ValueError(f"Negative delay {delay}")
            hop.callbacks = []
            heappush(queue, (env._now + delay, NORMAL, next(eid), hop))
            yield hop
            ahead = 0.0
            if node.hsm_units and info.private:
                yield from node.hsm_work(info.private, warmup, until)
            if node.epoch != epoch:  # the node crashed while the message was on it
                self.result = AppDone(ok=False, fault=NODE_DOWN)
                return
            if info.result is not None:
                self.result = info.result
            send = info.send
            if send is None:
                return
            target = bound[info.role] if send.reply else self._target(info.role, False)
            now = env._now  # ``env.now`` without the property's call
            if target.down_until > now:
                self.result = AppDone(ok=False, fault=NODE_DOWN)
                return
            wire = wires.get((node.role, target.role)) or network.wire(node.role, target.role)
            # one frame, always delivered: no loss, no outage, no TLS connection to open
            if not (
                wire.lossy
                or network.link_outages
                or (send.tls and not send.reply and target.name not in self.tls_open)
            ):
                wait = wire.frame(info.size, warmup, until)
                if fold and not target.free and not target.hsm_units:
                    ahead = wait
                else:
                    hop.callbacks = []
                    heappush(queue, (env._now + wait, NORMAL, next(eid), hop))
                    yield hop
                    now = env._now
            elif not (yield from self._transfer(node, target, send, wire)):
                self.result = AppDone(ok=False, fault=TIMEOUT)
                return
            else:
                now = env._now
            bill = info.bill
            if bill and record is not None:  # ``_bill`` inlined
                if bill == _APP_REQUEST:
                    if info.size > record.request_bytes:
                        record.request_bytes = info.size
                elif bill == _APP_RESPONSE:
                    if info.size > record.response_bytes:
                        record.response_bytes = info.size
                else:
                    self._bill(bill, info.size)
            if self.watcher is not None:
                self.watcher.watch(self, send, node, target)
            sender = node.name
            node = target
            now = now + ahead + node.skew  # the receiver's clock when the frame is in
            fresh = node.role != CLIENT and self._arrive(node, now)
            cursor = self.cursor
            if cursor is not None and not fresh and node.skew == cursor.client_skew:
                # ``ScriptCursor.handle``'s common case inlined: the script's next step
                step = cursor.script.handled[cursor.index]
                cursor.index += 1
            else:
                step = self.handle(node, send, sender, now, fresh)

    # the steps of ``run`` ----------------------------------------------------------------
    def _charge(self, node: Node, info: StepInfo, ahead: float) -> float:
        """Book the CPU time of ``info`` on ``node`` (beside its HSM when it has one, the
        variability drawn); returns the seconds until the step ends. A folded delivery
        ``ahead`` seconds away starts the CPU time on arrival (the node never queues); a
        wait (a replay-store round trip) holds no core: the step ends that much later."""
        network = self.network
        seconds = info.beside_hsm if node.hsm_units else info.seconds
        if not network.deterministic:
            seconds *= network.jitter()
        arrival = network.env._now
        if ahead:
            start = arrival + ahead
            if node.keeps_load:
                node.account(start, start, seconds, network.warmup, network.until)
            return ahead + seconds + info.wait
        if node.keeps_load:
            start = node.book(seconds)
            node.account(arrival, start, seconds, network.warmup, network.until)
        else:  # a client machine: never waits for a core, counts nothing
            start = arrival
        return start + seconds - arrival + info.wait

    def _target(self, role: str, reply: bool) -> Node:
        """The node a Send goes to: for a reply, the node of that role in this exchange;
        for a request, the one bound in this exchange while it is up, else the farm's
        choice."""
        if reply:
            return self.bound[role]
        bound = self.bound.get(role)
        if bound is None or bound.down_until > self.network.env.now:
            farm = self.network.farms[role]
            bound = self.bound[role] = farm.pick(self.session_key)
            if farm.counts_connections:
                farm.connect(bound)
                self.connected.append((farm, bound))
        return bound

    def release(self) -> None:
        """The exchange is over: give back the connections it held (least connections)."""
        for farm, node in self.connected:
            farm.release(node)
        self.connected.clear()

    def _transfer(self, source: Node, target: Node, send: Send, wire: Wire):
        """Generator: move ``send`` that may be lost (or open a TLS connection first);
        returns whether it was delivered."""
        network = self.network
        opening = send.tls and target.name not in self.tls_open and not send.reply
        if opening and not (yield from self._open_tls(source, target, wire)):
            return False
        return (yield from wire.send(len(send.data), network.warmup, network.until))

    def _open_tls(self, source: Node, target: Node, wire: Wire):
        """Generator: TLS connection set-up on first use: a round trip of handshake records,
        and the handshake's CPU work on both ends (then the connection is reused)."""
        network = self.network
        self.tls_open.add(target.name)
        back = network.wire(target.role, source.role)
        size = wire.link.tls_handshake_bytes
        window = network.warmup, network.until
        if not (yield from wire.send(size // 2, *window)):
            return False
        # the handshake, and what else the connection costs each end (a calibrated profile)
        accept = network.profile.connection_seconds(server=True, tls=True)
        yield from target.work(network.cpu(target, TLS_HANDSHAKE) + accept, *window)
        if not (yield from back.send(size // 2, *window)):
            return False
        connect = network.profile.connection_seconds(server=False, tls=True)
        yield from source.work(network.cpu(source, TLS_HANDSHAKE) + connect, *window)
        if self.steps is not None:
            counts = network.op_counts(TLS_HANDSHAKE)
            self.steps += (counts, counts)
        return True

    def _bill(self, bill: Bill, size: int) -> None:
        """Count a delivered Send of ``size`` bytes in the message's record."""
        record = self.record
        if bill == _TOKEN_REQUEST:
            record.token_bytes += size
            record.sts_exchanges += 1
        elif bill == _TOKEN_REPLY:
            record.token_bytes += size
        elif bill == _APP_REQUEST:
            record.request_bytes = max(record.request_bytes, size)
        elif bill == _APP_RESPONSE:
            record.response_bytes = max(record.response_bytes, size)

    def _arrive(self, node: Node, now: float) -> bool:
        """A delivery of this session reaches server ``node`` at ``now`` (its clock):
        whether the node is new to the session (another node of its role, the node
        restarted, or idle past its cache's timeout), remembered; the context-cache shadow
        touched (replay fidelity)."""
        role = node.role
        previous = self.history.get(role)
        fresh = previous is not None and (
            previous[0] != node.name
            or previous[1] != node.epoch
            or now - previous[2] > self.idle.get(role, math.inf)
        )
        self.history[role] = (node.name, node.epoch, now)
        if self.shadows is not None:
            shadow = self.shadows.by_node.get((self.strategy, node.name))  # ``of``
            if shadow is not None:
                if self.record is None:  # the close reaching the node: a Cancel
                    shadow.drop(self.session_key)
                else:
                    shadow.touch(self.session_key, now, node.epoch)
        return fresh
