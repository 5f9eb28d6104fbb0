"""Replay fidelity's session as one generator: its application messages, their retries and
its close, each followed hop by hop from the client's first Step to its AppDone.

``Replication._general_session`` + ``Chain.run`` do the same for every fidelity; here a
session keeps in locals, across its messages, what those rebuild for each one: its
script's position (no ``ScriptCursor``), the nodes bound in the exchange, its chain's
state, and the message's row of messages.csv and figures for the statistics (no
``MessageRecord``). The same events in the same order, the same draws, the same records
(``tests/engine/test_replay_session.py`` runs both on scenarios that take every branch).
The rare cases (a lossy link or an outage, a TLS connection to open, an HSM, a switch to
another script) are the ``Chain``'s and the fidelity's own code.
"""

from __future__ import annotations

import math
from heapq import heappush
from typing import TYPE_CHECKING

from simpy.events import NORMAL

from sim.engine.chain import NODE_DOWN, TIMEOUT
from sim.engine.fidelity import CLOSE, History, switch
from sim.engine.network import Bill
from sim.engine.resources import hop_event
from sim.protocol.api import CLIENT, AppDone

if TYPE_CHECKING:
    from sim.engine.replication import Replication

# Enum members read from module globals: an Enum class attribute costs some 300 ns a read
_TOKEN_REQUEST = Bill.TOKEN_REQUEST
_TOKEN_REPLY = Bill.TOKEN_REPLY
_APP_REQUEST = Bill.APP_REQUEST
_APP_RESPONSE = Bill.APP_RESPONSE
#: failures of the transport, not of the protocol: the client retries them on a new session
_TRANSPORT_FAULTS = (NODE_DOWN, TIMEOUT)
_INF = math.inf


def replay_session(rep: Replication, key: int):
    """Generator: session ``key`` of replication ``rep`` in replay fidelity, untraced."""
    rep.live.add(key)
    try:
        env = rep.env
        network = rep.network
        scenario = rep.scenario
        workload = scenario.workload
        session = rep.open_session(key)
        client, label, name = session.client, session.label, session.strategy
        chain, length, sizes, drawn = session.chain, session.length, session.sizes, session.drawn
        stats = rep.stats[name]
        log = rep.log
        record_limit = scenario.run.record_messages
        refs = (log.ref(name), log.ref(label), log.ref(""))  # the row's strings, as indexes
        scripts_by_size = rep.scripts[name]
        end, max_messages = rep.end, rep.max_messages
        # ``Chain.run``'s, for the session
        warmup, until, fold, wires = network.warmup, network.until, network.fold, network.wires
        memo = network._steps
        outages = network.link_outages
        queue = env._queue
        eid = env._eid
        hop = chain.hop = hop_event(env)
        charge = chain._charge
        metered = session.metered
        deterministic, jitter = network.deterministic, network.jitter
        # ``Chain._arrive``'s
        seen = chain.history
        idle = chain.idle
        by_node = chain.shadows.by_node if chain.shadows is not None else None
        tls_open = chain.tls_open
        history = History()
        position = 0  # messages of the current protocol session (reset on transport failure)
        sent = 0  # application messages started
        index = 0  # the application message
        closing = False
        while True:
            # the next exchange: a message (or its retry), else the close -----------------
            if not closing and index == sent:  # a new message, not a retry
                if (
                    index >= length
                    or env._now >= end
                    or (max_messages is not None and rep.started >= max_messages)
                ):
                    if not position:
                        break
                    closing = True
                else:
                    rep.started += 1
                    sent = index + 1
                    started = env._now
                    stats.begin_message(started)
                    row = log.open_row(key, index, started, refs) if len(log) < record_limit else -1
                    size = sizes[0] if drawn is None else sizes[drawn[index]]
                    retries = recoveries = request_bytes = response_bytes = 0
                    token_bytes = sts_exchanges = 0
                    steps = []
            # ``Replication._begin`` and ``ScriptCursor`` inlined
            scripts = scripts_by_size[sizes[0] if closing else size]
            client_skew = client.skew
            began = env._now + client_skew  # the client's clock when the message starts
            aged = began >= history.due
            prior = history.prior
            if closing:
                script_position, script = CLOSE, scripts.close
                steps = None
            else:
                last = len(scripts.messages) - 1
                script_position = position if position < last else last
                script = scripts.messages[script_position]
            if prior or aged:
                script = scripts.variant(script_position, (), (), None, 0, prior, aged)
            handled = script.handled
            step_index = 0
            switches: tuple = ()
            offsets: tuple = ()
            chain.steps = steps  # ``Chain._open_tls`` adds the handshakes' op counts
            bound = chain.bound = {CLIENT: client}
            result = None
            node = client
            step = script.origin
            ahead = 0.0  # seconds until a folded delivery reaches ``node``
            # ``Chain.run`` inlined: each hop of the exchange ------------------------------
            while True:
                info = memo.get(id(step))
                if info is None or info.step is not step:
                    info = network.step_info(step, node.role, name)
                if steps is not None:
                    steps.append(info.counts)
                epoch = node.epoch
                if metered:
                    delay = charge(node, info, ahead)
                else:  # ``Chain._charge`` inlined
                    seconds = info.beside_hsm if node.hsm_units else info.seconds
                    if not deterministic:
                        seconds *= jitter()
                    arrival = env._now
                    if ahead:
                        if node.keeps_load:
                            start = arrival + ahead
                            node.account(start, start, seconds, warmup, until)
                        delay = ahead + seconds + info.wait
                    else:
                        start = node.book(seconds) if node.keeps_load else arrival
                        if node.keeps_load:
                            node.account(arrival, start, seconds, warmup, until)
                        delay = start + seconds - arrival + info.wait
                if delay < 0:
                    raise ValueError(f"Negative delay {delay}")
                hop.callbacks = []
                heappush(queue, (env._now + delay, NORMAL, next(eid), hop))
                yield hop
                ahead = 0.0
                if node.hsm_units and info.private:
                    yield from node.hsm_work(info.private, warmup, until)
                if node.epoch != epoch:  # the node crashed while the message was on it
                    result = AppDone(ok=False, fault=NODE_DOWN)
                    break
                if info.result is not None:
                    result = info.result
                send = info.send
                if send is None:
                    break
                role = info.role
                if send.reply:
                    target = bound[role]
                else:
                    target = bound.get(role)
                    if target is None or target.down_until > env._now:
                        target = chain._target(role, False)
                now = env._now
                if target.down_until > now:
                    result = AppDone(ok=False, fault=NODE_DOWN)
                    break
                wire = wires.get((node.role, target.role)) or network.wire(node.role, target.role)
                # one frame, always delivered: no loss, no outage, no TLS connection to open
                if not (
                    wire.lossy
                    or outages
                    or (send.tls and not send.reply and target.name not in tls_open)
                ):
                    wait = wire.frame(info.size, warmup, until)
                    if fold and not target.free and not target.hsm_units:
                        ahead = wait
                    else:
                        hop.callbacks = []
                        heappush(queue, (env._now + wait, NORMAL, next(eid), hop))
                        yield hop
                        now = env._now
                elif not (yield from chain._transfer(node, target, send, wire)):
                    result = AppDone(ok=False, fault=TIMEOUT)
                    break
                else:
                    now = env._now
                bill = info.bill
                if bill and steps is not None:  # ``Chain._bill`` inlined
                    if bill == _APP_REQUEST:
                        if info.size > request_bytes:
                            request_bytes = info.size
                    elif bill == _APP_RESPONSE:
                        if info.size > response_bytes:
                            response_bytes = info.size
                    elif bill == _TOKEN_REQUEST:
                        token_bytes += info.size
                        sts_exchanges += 1
                    elif bill == _TOKEN_REPLY:
                        token_bytes += info.size
                node = target
                role = node.role
                now = now + ahead + node.skew  # the receiver's clock when the frame is in
                fresh = False
                if role != CLIENT:  # ``Chain._arrive`` inlined
                    previous = seen.get(role)
                    fresh = previous is not None and (
                        previous[0] != node.name
                        or previous[1] != node.epoch
                        or now - previous[2] > idle.get(role, _INF)
                    )
                    seen[role] = (node.name, node.epoch, now)
                    if by_node is not None:
                        shadow = by_node.get((name, node.name))
                        if shadow is not None:
                            if closing:  # the close reaching the node: a Cancel
                                shadow.drop(key)
                            else:
                                shadow.touch(key, now, node.epoch)
                offset = node.skew - client_skew
                if fresh or offset:
                    script, switches, offsets = switch(
                        scripts,
                        script,
                        script_position,
                        step_index,
                        switches,
                        offsets,
                        prior,
                        aged,
                        role if fresh else None,
                        offset,
                    )
                    handled = script.handled
                step = handled[step_index]
                step_index += 1
            if chain.connected:
                chain.release()
            if closing:
                break
            # the message's end: ``History.add`` and ``Replication._settle`` inlined --------
            done = isinstance(result, AppDone)
            history.count += 1
            horizon = script.horizon
            if horizon is not None:
                history.due = began + horizon
            kept = () if done and result.ok else switches
            if offsets or aged or kept or history.prior:
                history.remember(script_position, kept, offsets, aged)
            position += 1
            if done:
                ok, fault = result.ok, result.fault
                recoveries += result.recoveries
                if not ok and fault in _TRANSPORT_FAULTS:
                    # A transport failure faults the client's channel (as WCF's does): the
                    # client drops its session state and retries on a new session, any node.
                    history = History()
                    chain.new_session()
                    position = 0
                    if retries < workload.retries and not rep._stop():
                        retries += 1
                        continue
            else:
                ok, fault = False, "wssim:NoResult"
            finished = env._now
            stats.end_message(
                started,
                finished,
                ok,
                fault,
                recoveries,
                request_bytes,
                response_bytes,
                token_bytes,
                sts_exchanges,
                steps,
            )
            if row >= 0:
                log.close_row(
                    row,
                    finished,
                    ok,
                    fault,
                    request_bytes,
                    response_bytes,
                    token_bytes,
                    sts_exchanges,
                    retries,
                    recoveries,
                )
            index += 1
            if index < length and workload.message_gap_s:
                yield env.timeout(workload.message_gap_s)
        if metered and sent == length:  # a whole session: its close included
            stats.add_demand(chain.demand, sent)
    finally:
        rep.live.discard(key)
