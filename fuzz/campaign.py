"""A deterministic mutation campaign against the live receivers of one strategy.

Sessions between the real engines run one after another (:class:`~sim.protocol.harness.
Harness`); as each message is about to be delivered, mutated copies of it go first to the
very engine that will receive it, in the state the session left it in: a server gets
``copies`` mutations of every request (each meeting the server's replay store as it was
before the copies), the client one mutation of a reply now and then (``client_share``);
then the real message follows. A receiver must refuse with a
:class:`~sim.errors.SecurityFault` (a server answers it as a SOAP fault with a standard code)
or accept; any other exception is a finding, reported with the mutation that caused it.

The mutations and their order follow ``seed``; the messages' ids, nonces and keys are drawn
from the same seed too (RSA-OAEP and TLS draw from OpenSSL, which cannot be seeded), and the
RSA key pairs the engines generate from a small pool (:func:`pooled_rsa_keys`).

    python -m fuzz.campaign --strategy sct --mutations 5000 --seed 1 [--save DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import os
import random
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from fuzz.corpus import strategies
from fuzz.mutations import mutate
from sim.errors import FAULTS_BY_CODE, SecurityFault
from sim.protocol.api import Send, Step
from sim.protocol.harness import Delivery, Harness
from sim.wire import xmlutil
from sim.wire.checks import ReplayCache

#: Longest a receiver may take over one input, in seconds (a refusal must stay cheap).
SLOW = 1.0
#: The check name of the servers' former catch-all (ValueError, TypeError, KeyError,
#: IndexError and lxml errors turned into a refusal): a bug hidden as a refusal.
CATCH_ALL = "malformed"


class FuzzerError(RuntimeError):
    """The campaign itself failed (not a receiver)."""


@dataclass
class Finding:
    """A receiver that raised something other than a SecurityFault, or answered wrongly."""

    strategy: str
    receiver: str
    kind: str
    mutation: str
    error: str
    where: str
    data: bytes

    def describe(self) -> str:
        return (
            f"[{self.strategy}] {self.receiver} ({self.kind}) after '{self.mutation}': "
            f"{self.error} at {self.where}"
        )


@dataclass
class Report:
    strategy: str
    seed: int
    mutations: int = 0
    sessions: int = 0
    #: receiver check -> refusals; "accepted" counts the mutated inputs taken as valid
    outcomes: Counter = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    #: (receiver, message kind, mutation, bytes) of mutated inputs a receiver accepted
    accepted: list[tuple[str, str, str, bytes]] = field(default_factory=list)

    def distinct(self) -> list[Finding]:
        """One finding per (exception, place)."""
        seen: dict[tuple[str, str], Finding] = {}
        for finding in self.findings:
            seen.setdefault((finding.error.split(":")[0], finding.where), finding)
        return list(seen.values())


@contextlib.contextmanager
def seeded_random_bytes(seed: int) -> Iterator[None]:
    """Ids, nonces, IVs and keys drawn from ``random.Random(seed)`` instead of the OS."""
    rng = random.Random(seed)
    real = os.urandom
    os.urandom = rng.randbytes
    xmlutil._POOLS = threading.local()
    try:
        yield
    finally:
        os.urandom = real
        xmlutil._POOLS = threading.local()


#: how many key pairs of each size :func:`pooled_rsa_keys` hands out
POOLED_KEYS = 4
_generate_rsa = rsa.generate_private_key


@functools.cache
def _key_pool(public_exponent: int, key_size: int) -> tuple[rsa.RSAPrivateKey, ...]:
    return tuple(_generate_rsa(public_exponent, key_size) for _ in range(POOLED_KEYS))


@contextlib.contextmanager
def pooled_rsa_keys(seed: int) -> Iterator[None]:
    """Key pairs the engines generate (hok-public's ephemeral client key, one a session)
    drawn under ``seed`` from a pool made once per size: generating a 2048-bit key took
    most of a hok-public campaign's time, and the campaign mutates the messages, not the
    key generation. OpenSSL cannot be seeded, so the draw is deterministic and the pool
    is not."""
    rng = random.Random(f"{seed}:keys")

    def pooled(public_exponent: int, key_size: int, backend: object = None) -> rsa.RSAPrivateKey:
        return rng.choice(_key_pool(public_exponent, key_size))

    rsa.generate_private_key = pooled
    try:
        yield
    finally:
        rsa.generate_private_key = _generate_rsa


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if "/sim/" in f.filename] or frames
    frame = inside[-1]
    path = frame.filename[frame.filename.rfind("/sim/") + 1 :]
    return f"{path}:{frame.lineno} ({frame.name})"


def _check_step(step: object) -> str | None:
    """What is wrong with a receiver's answer, or None."""
    if not isinstance(step, Step):
        return f"answered {type(step).__name__}, not a Step"
    for event in step.events:
        if (
            isinstance(event, Send)
            and event.fault is not None
            and event.fault not in FAULTS_BY_CODE
        ):
            return f"answered a fault with a code outside the standard ones: {event.fault}"
    return None


def run(
    name: str,
    *,
    mutations: int,
    seed: int = 1,
    copies: int = 12,
    client_share: float = 0.25,
    key_dir: str | None = None,
) -> Report:
    """Deliver ``mutations`` mutated messages to the live receivers of strategy ``name``."""
    strategy = strategies(key_dir)[name]
    rng = random.Random(f"{seed}:{name}")
    report = Report(name, seed)
    recent: list[bytes] = []  # real messages of this strategy, for splicing

    def deliver(engine, delivery: Delivery, data: bytes, mutation: str) -> None:
        report.mutations += 1
        # Each copy meets the replay store as the real message will: a copy's MessageID or
        # signature value must not make every later copy a mere "replay".
        store = getattr(engine, "replay", None)
        if isinstance(store, ReplayCache):
            engine.replay = copy.deepcopy(store)
        try:
            receive(engine, delivery, data, mutation)
        finally:
            if isinstance(store, ReplayCache):
                engine.replay = store

    def receive(engine, delivery: Delivery, data: bytes, mutation: str) -> None:
        started = time.perf_counter()
        try:
            step = engine.receive(data, sender=delivery.sender, now=delivery.t)
        except SecurityFault as fault:  # raising a typed fault is a refusal too
            report.outcomes[fault.check] += 1
            return
        except Exception as exc:  # every other exception is a finding
            report.findings.append(
                Finding(
                    name,
                    delivery.receiver,
                    delivery.send.kind,
                    mutation,
                    f"{type(exc).__name__}: {exc}"[:300],
                    _where(exc),
                    data,
                )
            )
            return
        elapsed = time.perf_counter() - started
        refusal = getattr(engine, "last_refusal", None)
        problem = _check_step(step)
        if problem is None and refusal == CATCH_ALL:
            problem = "a catch-all turned an exception into a refusal (check 'malformed')"
        if problem is None and elapsed > SLOW:
            problem = f"took {elapsed:.2f} s"
        if problem is not None:
            report.findings.append(
                Finding(name, delivery.receiver, delivery.send.kind, mutation, problem, "", data)
            )
        report.outcomes[refusal or "accepted"] += 1
        if refusal is None and len(report.accepted) < 1000:
            report.accepted.append((delivery.receiver, delivery.send.kind, mutation, data))

    def tamper(delivery: Delivery) -> None:
        data = delivery.send.data
        others = list(recent)
        recent.append(data)
        del recent[:-8]
        if delivery.receiver == harness.client_name:
            engine = harness.client
            count = 1 if rng.random() < client_share else 0
        else:
            engine = harness.servers[delivery.receiver]
            count = copies
        for _ in range(min(count, mutations - report.mutations)):
            try:
                mutated, what = mutate(rng, data, others)
            except Exception as exc:  # the fuzzer's own bug: never a receiver's finding
                raise FuzzerError(f"mutating a {delivery.send.kind}: {exc!r}") from exc
            context[:] = [delivery, what, mutated]
            deliver(engine, delivery, mutated, what)
        context[:] = [delivery, "the real message, after the mutated ones", data]

    context: list = []
    with seeded_random_bytes(seed), pooled_rsa_keys(seed):
        while report.mutations < mutations:
            harness = Harness(strategy, tamper=tamper)
            payloads = [b"x" * rng.choice((1, 60, 700)) for _ in range(rng.randint(1, 3))]
            before = report.mutations
            context.clear()
            try:
                harness.session(payloads, start=report.sessions * 10.0)
            except FuzzerError:
                raise
            except Exception as exc:  # a receiver broken by what it was sent
                if not context:
                    raise  # before any delivery: the strategy is broken, not by a mutation
                delivery, what, data = context
                report.findings.append(
                    Finding(
                        name,
                        delivery.receiver,
                        delivery.send.kind,
                        what,
                        f"{type(exc).__name__}: {exc}"[:300],
                        _where(exc),
                        data,
                    )
                )
            report.sessions += 1
            if report.mutations == before:
                raise RuntimeError(f"a session of {name} delivered no message to mutate")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", action="append", help="strategy (all by default)")
    parser.add_argument("--mutations", type=int, default=5600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--save", type=Path, help="write each finding's input to this folder")
    args = parser.parse_args(argv)
    names = args.strategy or list(strategies())
    found = 0
    for name in names:
        started = time.process_time()
        report = run(name, mutations=args.mutations, seed=args.seed)
        print(
            f"{name}: {report.mutations} mutations, {report.sessions} sessions, "
            f"{time.process_time() - started:.1f} s CPU, findings {len(report.findings)}; "
            f"{dict(report.outcomes.most_common(8))}"
        )
        for index, finding in enumerate(report.distinct()):
            found += 1
            print("  " + finding.describe())
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                (args.save / f"{name}-{index}.xml").write_bytes(finding.data)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
