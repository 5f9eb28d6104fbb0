"""The adversary of a replication (scenario ``adversary``; full fidelity): it watches the
application requests crossing its link (and their responses), forges attacks from them with
``sim.protocol.adversary``, delivers the forgeries over the link to the run's receiving
engines, charging their work on the receiving node, and counts per attack whether each was
accepted or which check refused it (attacks captured inside the measured window only).

A forgery sent in place of a message the attacker held back (``Forgery.isolated``) goes to
a copy of the receiving engine made when the captured message arrived, before the engine
took it (``stores.fork_engine``): the receiver as the attacker's message would have found
it, while the run's own traffic goes on as it was. Replays, floods and the padding oracle
go to the engines themselves: their point is the receiver's state.

``replay-flood`` and ``padding-oracle`` are campaigns of many messages, at most
``adversary.campaigns`` of each per replication.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sim.engine.network import Network
from sim.engine.stores import fork_engine
from sim.protocol.adversary import (
    CAMPAIGNS,
    ISOLATED_ATTACKS,
    PEER,
    RESPONSE_ATTACKS,
    SENDER,
    Capture,
    Forgery,
    Knowledge,
    forge,
)
from sim.protocol.api import CLIENT, PROVIDER, AppDone, MessageKind, Send
from sim.protocol.campaigns import PaddingOracle, answer_of, flood

#: the attacker's name as a sender
MALLORY = "mallory-0"
#: how finely the padding-oracle attacker tells the receiver's times apart (seconds): an
#: attacker on the data-centre network who repeats a query resolves about a microsecond
TIMING_RESOLUTION_S = 1e-6
#: flood messages sent between two looks at the clock
FLOOD_CHUNK = 256


def empty_stats(attack: str) -> dict:
    """An attack's counters before any attempt."""
    stats = {"attempts": 0, "accepted": 0, "refused": {}}
    if attack == "padding-oracle":
        # queries: spent in all; blocks: plaintext blocks recovered; queries_to_fall: the
        # queries of the campaigns that recovered one; encryption: campaigns per algorithm
        stats.update(queries=0, blocks=0, queries_to_fall=0, encryption={})
    elif attack == "replay-flood":
        stats["flood_messages"] = 0
    return stats


def verdict(attack: str, stats: dict) -> str:
    """One line a user reads: whether ``attack`` got through, how often, what refused it."""
    attempts = stats["attempts"]
    if not attempts:
        return "n/a"
    checks = ", ".join(f"{check} {n:g}" for check, n in sorted(stats["refused"].items()))
    if attack == "padding-oracle":
        algorithms = ", ".join(sorted(stats.get("encryption", {}))) or "?"
        blocks = stats.get("blocks", 0)
        if blocks:
            per_block = stats.get("queries_to_fall", 0) / blocks
            return (
                f"ACCEPTED: {blocks:g} plaintext block(s) of {attempts:g} campaign(s) fell, "
                f"{per_block:,.0f} queries a block ({algorithms})"
            )
        return (
            f"refused: no block in {stats.get('queries', 0):,.0f} queries of {attempts:g} "
            f"campaign(s) ({checks}; {algorithms})"
        )
    accepted = stats["accepted"]
    line = (
        f"ACCEPTED {accepted:g} of {attempts:g}" + (f" (refused: {checks})" if checks else "")
        if accepted
        else f"refused {attempts:g} of {attempts:g} ({checks})"
    )
    if attack == "replay-flood":
        line += f" after {stats.get('flood_messages', 0):,.0f} flood messages"
    return line


def security_view(strategies: dict[str, dict]) -> dict[str, dict[str, str]]:
    """summary.json's ``security``: per strategy, per attack, its :func:`verdict`."""
    return {
        name: {attack: verdict(attack, stats) for attack, stats in entry["attacks"].items()}
        for name, entry in strategies.items()
        if "attacks" in entry
    }


@dataclass
class _Captured:
    """A request the attacker captured, where it went and what the engines were then."""

    send: Send
    source: object  # Node
    target: object  # Node
    strategy: str
    now: float
    counted: bool
    #: copies of the receiving and sending engines before the request was taken
    receiver: object | None = None
    sender: object | None = None
    response: bytes | None = None


class Attacker:
    """Watches the deliveries of one replication's ``Network`` (``watch``: every chain
    shows it each delivery) and runs the scenario's attacks, counting them in ``stats``."""

    def __init__(self, network: Network, strategies: dict) -> None:
        self.network = network
        self.spec = network.scenario.adversary
        self.strategies = strategies
        #: per attack: attempts, accepted, refused {check: count} (measured window only)
        self.stats: dict[str, dict] = {}
        attacks = self.spec.attacks
        self.at_request = [a for a in attacks if a not in RESPONSE_ATTACKS and a not in CAMPAIGNS]
        self.at_response = [a for a in attacks if a in RESPONSE_ATTACKS]
        self.campaigns = [a for a in attacks if a in CAMPAIGNS]
        self.isolating = bool(set(attacks) & ISOLATED_ATTACKS)
        self.reflecting = "reflection" in attacks
        self.started: Counter[str] = Counter()
        self._known: dict[str, Knowledge] = {}

    # watching --------------------------------------------------------------------------
    def watch(self, chain, send: Send, source, target) -> None:
        """A Send of ``chain`` delivered from node ``source`` to node ``target``, before the
        target takes it."""
        network = self.network
        if send.reply:
            captured = chain.capture
            if captured is not None and source is captured.target and target is captured.source:
                chain.capture = None
                if send.kind == MessageKind.APP_RESPONSE:
                    captured.response = send.data
                self._launch(captured, self.at_response)
            return
        if not (
            send.kind == MessageKind.APP_REQUEST
            and self.spec.link == f"{source.role}-{target.role}"
            and network.rng.random() < self.spec.probability
        ):
            return
        now = network.env.now
        counted = network.warmup <= now < network.until  # the measured window
        strategy = chain.strategy
        if send.tls and not self.spec.sees_tls:
            for attack in self.spec.attacks:
                if attack in CAMPAIGNS and not self._campaign(attack, counted):
                    continue
                if counted:
                    self._count(attack, "tls")
            return
        captured = _Captured(send, source, target, strategy, now, counted)
        if self.isolating:
            captured.receiver = fork_engine(target.engines[strategy])
        if self.reflecting:
            engine = chain.engine if source.role == CLIENT else source.engines.get(strategy)
            captured.sender = None if engine is None else fork_engine(engine)
        self._launch(captured, self.at_request)
        if self.at_response:
            chain.capture = captured
        # A campaign takes hundreds of round trips: it starts on a session's first message
        # (the attacker saw the session begin), whose security context outlives it best.
        first = chain.record is not None and chain.record.seq == 0
        for attack in self.campaigns:
            if first and self._campaign(attack, counted):
                run = self._flood if attack == "replay-flood" else self._oracle
                network.env.process(run(captured))

    def _campaign(self, attack: str, counted: bool) -> bool:
        """Whether a campaign of ``attack`` may start now (inside the window, and fewer than
        ``adversary.campaigns`` so far)."""
        if not counted or self.started[attack] >= self.spec.campaigns:
            return False
        self.started[attack] += 1
        return True

    def _launch(self, captured: _Captured, attacks: list[str]) -> None:
        capture = Capture(captured.send.data, captured.now, captured.response)
        for attack in attacks:
            for forgery in forge(attack, capture, self._knowledge(captured.strategy)):
                self.network.env.process(self._deliver(attack, captured, forgery))

    def _knowledge(self, strategy: str) -> Knowledge:
        known = self._known.get(strategy)
        if known is None:
            built = self.strategies[strategy]
            setup = built.setup
            certificate = setup.identity(PROVIDER).certificate if PROVIDER in built.roles else None
            known = self._known[strategy] = Knowledge(certificate, setup.suite)
        return known

    # delivering ------------------------------------------------------------------------
    def _destination(self, captured: _Captured, forgery: Forgery):
        """(node, engine, sender name) that receives ``forgery``, or None."""
        strategy = captured.strategy
        if forgery.to == SENDER:
            if captured.sender is None:
                return None
            return captured.source, fork_engine(captured.sender), captured.target.name
        if forgery.to == PEER:
            nodes = self.network.farms[captured.target.role].nodes
            now = self.network.env.now
            peers = [n for n in nodes if n is not captured.target and n.down_until <= now]
            if not peers:
                return None  # a farm of one node: nowhere else to replay to
            at = nodes.index(captured.target)
            node = min(peers, key=lambda n: (nodes.index(n) - at) % len(nodes))
            return node, node.engines.get(strategy), MALLORY
        node = captured.target
        if forgery.isolated:
            return node, fork_engine(captured.receiver), MALLORY
        return node, node.engines.get(strategy), MALLORY

    def _deliver(self, attack: str, captured: _Captured, forgery: Forgery):
        """Generator: ``forgery`` over the link just after the captured message, taken by its
        receiver (the node charged for the work), counted."""
        network = self.network
        env = network.env
        yield env.timeout(0.001)
        found = self._destination(captured, forgery)
        if found is None or found[1] is None:
            return
        node, engine, sender = found
        origin = captured.target if forgery.to == SENDER else captured.source
        wire = network.wire(origin.role, node.role)
        if not (yield from wire.send(len(forgery.data), network.warmup, network.until)):
            return
        step = engine.receive(forgery.data, sender=sender, now=env.now + node.skew)
        refusal = _refusal(engine, step)
        yield from node.work(network.cpu(node, step.ops), network.warmup, network.until)
        if captured.counted:
            self._count(attack, refusal)

    def _count(self, attack: str, refusal: str | None) -> dict:
        stats = self.stats.get(attack)
        if stats is None:
            stats = self.stats[attack] = empty_stats(attack)
        stats["attempts"] += 1
        if refusal is None:
            stats["accepted"] += 1
        else:
            stats["refused"][refusal] = stats["refused"].get(refusal, 0) + 1
        return stats

    # campaigns -------------------------------------------------------------------------
    def _flood(self, captured: _Captured):
        """Generator: flood the receiver's replay store, then replay the captured request."""
        network = self.network
        env = network.env
        node = captured.target
        window = network.warmup, network.until
        wire = network.wire(captured.source.role, node.role)
        engine = node.engines.get(captured.strategy)
        if engine is None:
            return
        count = self.spec.flood_messages
        yield env.timeout(0.001)
        messages = flood(Capture(captured.send.data, env.now), count)
        sent = 0
        while sent < count:
            # a chunk of frames leaves back to back (never lost: the flood is not about the
            # link); the node takes them when they are in
            chunk = [next(messages) for _ in range(min(FLOOD_CHUNK, count - sent))]
            sent += len(chunk)
            arrive = max(wire.frame(len(data), *window) for data in chunk)
            yield env.timeout(arrive)
            engine = node.engines.get(captured.strategy, engine)
            end = env.now
            for data in chunk:
                step = engine.receive(data, sender=MALLORY, now=env.now + node.skew)
                seconds = network.cpu(node, step.ops)
                start = node.book(seconds)
                node.account(env.now, start, seconds, *window)
                end = max(end, start + seconds)
            yield env.timeout(end - env.now)
        data = captured.send.data
        if not (yield from wire.send(len(data), *window)):
            return
        engine = node.engines.get(captured.strategy, engine)
        step = engine.receive(data, sender=MALLORY, now=env.now + node.skew)
        refusal = _refusal(engine, step)
        yield from node.work(network.cpu(node, step.ops), *window)
        self._count("replay-flood", refusal)["flood_messages"] += count

    def _oracle(self, captured: _Captured):
        """Generator: the padding-oracle campaign against the captured request's Body."""
        network = self.network
        env = network.env
        node = captured.target
        window = network.warmup, network.until
        oracle = PaddingOracle(
            captured.send.data,
            budget=self.spec.oracle_queries,
            resolution=TIMING_RESOLUTION_S,
        )
        if not oracle.applies:
            self.started["padding-oracle"] -= 1  # nothing to attack here: try another
            return
        wire = network.wire(captured.source.role, node.role)
        run = oracle.run()
        query = next(run, None)
        checks: Counter[str] = Counter()
        yield env.timeout(0.001)
        while query is not None:
            if (yield from wire.send(len(query), *window)):
                engine = node.engines[captured.strategy]
                step = engine.receive(query, sender=MALLORY, now=env.now + node.skew)
                checks[_refusal(engine, step) or "accepted"] += 1
                yield from node.work(network.cpu(node, step.ops), *window)
                reply = next((e.data for e in step.events if isinstance(e, Send)), None)
                # the refusal's CPU time without the variability draw: an attacker who
                # repeats a query averages the noise out
                seconds = network.ledger_info(step.ops)[1]
            else:
                reply, seconds = None, 0.0
            try:
                query = run.send((*answer_of(reply), seconds))
            except StopIteration:
                query = None
        if oracle.recovered is not None:
            stats = self._count("padding-oracle", None)
            stats["blocks"] += 1
            stats["queries_to_fall"] += oracle.queries
        else:
            refused = [check for check, _ in checks.most_common() if check != "accepted"]
            stats = self._count("padding-oracle", refused[0] if refused else "no oracle")
        stats["queries"] += oracle.queries
        algorithm = oracle.algorithm or "unknown"
        stats["encryption"][algorithm] = stats["encryption"].get(algorithm, 0) + 1


def _refusal(engine, step) -> str | None:
    """The check that refused the message a receiving engine just took, None if accepted."""
    refusal = getattr(engine, "last_refusal", None)
    if refusal is not None:
        return refusal
    faults = [e.fault for e in step.events if isinstance(e, Send) and e.fault]
    if faults:
        return faults[0]
    done = [e for e in step.events if isinstance(e, AppDone)]
    if engine is not None and getattr(engine, "role", None) == CLIENT:
        if done:
            return None if done[0].ok else done[0].fault or "refused"
        # a client that took the message as no reply to what it awaits
        return "restarted" if step.events else "ignored"
    return None
