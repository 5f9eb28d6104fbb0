"""What the testbed's load generator spends of its own when it runs back to back, beyond its
client engines' steps: per application message, its bookkeeping (the asyncio tasks and
their turns, ``follow``, the bill, the row, the payload), and per HTTP request as it makes
them, each between other sessions' engine steps.

``httpcost`` times empty requests in a tight loop, where the HTTP client's code and data
stay in the CPU's caches; the load generator makes each request between engine steps (lxml,
the crypto kernels) that evict them, and pays more for it: 1.2-1.45 times the tight loop's
figure here at a load average of 3.5, timed within the same minute (issue 17,
``docs/validation.md``). Both are measured with the load generator's own code
(``LoadGenerator``, ``Transport``, ``follow``, httpx): eight closed users of ``REFERENCE``
back to back, each request answered by the strategy's server engine in this process (its
CPU timed and taken out, as the client engines' steps are: the model prices those with the
ledger and ``engine_overhead_us``); without HTTP, the cost per message; with each request
also POSTed with its real bytes to an echo node on the servers' core, the rest per request,
a new connection's cost (``client_connection_us``) taken out. The testbed's prediction
charges them to the load generator at saturation (``predict.client_cpu_ms(busy=True)``).
``python -m sim.testbed.loadcost PROFILE.json STRATEGY...`` takes one strategy's load
generator apart (``diagnose``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sim.engine.steps import first_events
from sim.protocol.api import role_of
from sim.testbed.cluster import Cluster
from sim.testbed.driver import Bill, Transport
from sim.testbed.httpcost import split_cores
from sim.testbed.loadgen import LoadGenerator
from sim.testbed.node import cpu_seconds

#: the strategy whose sessions the load generator runs while it is measured
REFERENCE = "x509"
#: closed users back to back, as the saturation search's busiest steps
USERS = 8
MESSAGES = 5
PAYLOAD_BYTES = 1024


@dataclass(frozen=True)
class Beyond:
    """One measured run: the load generator's CPU seconds beyond its client engines' and
    the in-process servers' steps, and what it did in the measured window."""

    seconds: float
    #: CPU seconds of the client engines' steps
    engine_s: float
    messages: int
    requests: int
    connections: int


class _Mirror(LoadGenerator):
    """The load generator with the servers' engines in this process: each request goes
    over HTTP to an echo node (``http``) or nowhere, and the answer is the server engine's."""

    def __init__(self, config: dict, http: bool) -> None:
        from sim.protocol.harness import Harness

        super().__init__(config)
        self.servers = Harness(self.strategy).servers
        self.http = http
        self.server_s = self.engine_s = 0.0
        self.requests = self.connections = 0
        self.transport_class = self._transport()

    def _transport(self) -> type[Transport]:
        mirror = self

        class Echoed(Transport):
            async def post(self, send, bill: Bill) -> tuple[bytes, str]:
                mirror.requests += 1
                opened = self.__dict__.setdefault("opened", set())
                if (role_of(send.to), send.tls) not in opened:
                    opened.add((role_of(send.to), send.tls))
                    mirror.connections += 1
                if mirror.http:
                    await super().post(send, bill)
                else:
                    await asyncio.sleep(0)  # the event loop's turn, as a socket gives it
                return mirror.answer(send, self.me)

        return Echoed

    def answer(self, send, sender: str) -> tuple[bytes, str]:
        start = time.process_time()
        node = f"{role_of(send.to)}-0"
        step = self.servers[node].receive(send.data, sender=sender, now=self.clock())
        reply, _ = first_events(step)
        self.server_s += time.process_time() - start
        return reply.data, node

    def client_engine(self, name: str):
        engine = super().client_engine(name)
        for method in ("request", "receive", "close"):
            setattr(engine, method, self._timed(getattr(engine, method)))
        return engine

    def _timed(self, call):
        def timed(*args, **kwargs):
            start = time.process_time()
            try:
                return call(*args, **kwargs)
            finally:
                self.engine_s += time.process_time() - start

        return timed

    async def snapshot(self, opening: bool = False) -> dict:
        return {
            "t": self.now(),
            "servers": {},
            "loadgen_cpu_s": cpu_seconds(),
            "loadgen_wait_s": 0.0,
            "beyond": cpu_seconds() - self.server_s - self.engine_s,
            "engine_s": self.engine_s,
            "requests": self.requests,
            "connections": self.connections,
        }


def run_mirror(
    cluster: Cluster | None,
    key_dir: str,
    seconds: float,
    *,
    http: bool,
    strategy: str = REFERENCE,
) -> Beyond:
    """``USERS`` closed users of ``strategy`` for ``seconds`` (a quarter of it warm-up);
    with ``http``, each request also POSTed to ``cluster``'s echo node of its role."""
    config = {
        "strategy": strategy,
        "options": {},
        "key_dir": key_dir,
        "t0": cluster.t0 if cluster else time.time(),
        "endpoints": cluster.endpoints() if cluster else {},
        "seed": 1,
        "rate": None,
        "users": USERS,
        "think_time_s": 0.0,
        "duration_s": seconds,
        "warmup_s": seconds / 4,
        "drain_s": 5.0,
        "messages_per_session": [[MESSAGES, 1.0]],
        "payload_bytes": [[PAYLOAD_BYTES, 1.0]],
        "geometric": False,
        "message_gap_s": 0.0,
    }
    result = asyncio.run(_Mirror(config, http).run())
    opening, closing = result["opening"], result["closing"]
    messages = sum(
        1 for row in result["rows"] if row["ok"] and opening["t"] <= row["start_s"] < closing["t"]
    )
    return Beyond(
        seconds=closing["beyond"] - opening["beyond"],
        engine_s=closing["engine_s"] - opening["engine_s"],
        messages=messages,
        requests=closing["requests"] - opening["requests"],
        connections=closing["connections"] - opening["connections"],
    )


def loadgen_costs(
    bare: Beyond, full: Beyond, tight: Mapping[str, float], http: Mapping[str, float]
) -> dict[str, float]:
    """The profile's figures from a run without HTTP (``bare``), one with it (``full``) and
    the tight loop's ``client_request_us`` and ``client_connection_us`` timed beside it
    (``tight``): ``loadgen_message_us``; ``loadgen_request_us``, the profile's
    ``client_request_us`` (``http``) times how much more a request costs in the load
    generator than in the tight loop at the same time (a new connection's cost taken out);
    ``loadgen_tls_request_us``, the TLS one alike."""
    message = bare.seconds / max(bare.messages, 1)
    connections = full.connections * tight.get("client_connection_us", 0.0) * 1e-6
    rest = full.seconds - message * full.messages - connections
    request = max(rest, 0.0) / max(full.requests, 1) * 1e6
    factor = request / tight["client_request_us"] if tight.get("client_request_us") else 1.0
    plain = http.get("client_request_us", 0.0)
    return {
        "loadgen_message_us": message * 1e6,
        "loadgen_request_us": plain * factor,
        "loadgen_tls_request_us": http.get("client_tls_request_us", plain) * factor,
    }


def measure_loadgen_costs(
    key_dir: str, http: Mapping[str, float], *, quick: bool = False
) -> dict[str, float]:
    """``loadgen_costs`` measured here (``http``: the profile's ``measure_http_costs``), this
    process pinned to the load generator's core, the echo nodes to the servers'; the tight
    loop timed again just before and after the run with HTTP (a shared machine's speed
    drifts within a minute: the ratio is what carries)."""
    from sim.protocol import build_strategy
    from sim.testbed import httpcost
    from sim.testbed.driver import client_tls_context

    client_cores, server_cores = split_cores()
    seconds, count = (3.0, 200) if quick else (8.0, 600)
    built = build_strategy(REFERENCE, {}, key_dir=key_dir)
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(client_cores))
    try:
        bare = run_mirror(None, key_dir, seconds, http=False)
        with _echo_nodes(REFERENCE, built.roles, key_dir, server_cores) as cluster:
            context = client_tls_context(built.setup.keystore.ca.pem)
            _, before = httpcost.measure_requests(cluster, count, False, context)
            _, fresh = httpcost.measure_requests(cluster, count // 5, True, context)
            full = run_mirror(cluster, key_dir, seconds, http=True)
            _, after = httpcost.measure_requests(cluster, count, False, context)
    finally:
        os.sched_setaffinity(0, previous)
    kept = (before + after) / 2
    tight = {"client_request_us": kept * 1e6, "client_connection_us": max(fresh - kept, 0.0) * 1e6}
    return loadgen_costs(bare, full, tight, http)


def diagnose(strategy: str, profile_path: str, key_dir: str, seconds: float = 2.0) -> dict:
    """One strategy's load generator taken apart, every figure timed within the same few
    seconds (a shared machine's speed drifts by minutes): the client engines' CPU ms a
    message back to back in the harness and between requests in the load generator; what
    the load generator spends beyond them per request (with HTTP) and per message (without);
    an empty request in a tight loop (``httpcost``); and the model's figure at saturation
    (``predict.client_cpu_ms(busy=True)`` with the profile at ``profile_path``)."""
    from sim.engine.costs import load_profile
    from sim.protocol import build_strategy
    from sim.protocol.api import CLIENT
    from sim.testbed import httpcost, predict
    from sim.testbed.driver import client_tls_context
    from sim.testbed.ledger_gap import time_steps

    client_cores, server_cores = split_cores()
    built = build_strategy(strategy, {}, key_dir=key_dir)
    profile = load_profile(profile_path)
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(client_cores))
    try:
        times = time_steps(built, profile, messages=MESSAGES, size=PAYLOAD_BYTES, sessions=10)
        harness = sum(s for (role, _), s in times.spent.items() if role == CLIENT)
        with _echo_nodes(strategy, built.roles, key_dir, server_cores) as cluster:
            context = client_tls_context(built.setup.keystore.ca.pem)
            _, tight = httpcost.measure_requests(cluster, 300, False, context)
            full = run_mirror(cluster, key_dir, seconds, http=True, strategy=strategy)
            bare = run_mirror(None, key_dir, seconds, http=False, strategy=strategy)
    finally:
        os.sched_setaffinity(0, previous)
    model = predict.client_cpu_ms(
        strategy, {}, profile, messages=MESSAGES, size=PAYLOAD_BYTES, key_dir=key_dir, busy=True
    )
    return {
        "harness_engine_ms": harness / times.messages * 1e3,
        "loadgen_engine_ms": full.engine_s / max(full.messages, 1) * 1e3,
        "loadgen_ms": (full.engine_s + full.seconds) / max(full.messages, 1) * 1e3,
        "requests_per_message": full.requests / max(full.messages, 1),
        "beyond_per_request_us": full.seconds / max(full.requests, 1) * 1e6,
        "bookkeeping_per_message_us": bare.seconds / max(bare.messages, 1) * 1e6,
        "tight_request_us": tight * 1e6,
        "model_ms": model,
    }


def _echo_nodes(strategy: str, roles, key_dir: str, cores: tuple[int, ...]) -> Cluster:
    """A node of each of ``strategy``'s server ``roles`` on ``cores``, echoing every request
    (its engine never runs: the mirror answers in this process)."""
    return Cluster(strategy, {}, dict.fromkeys(roles, 1), cores, key_dir, time.time(), empty=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.testbed.loadcost PROFILE.json STRATEGY...``: each strategy's load
    generator taken apart (``diagnose``), a line each; 2 on bad input, said in one line."""
    import argparse
    import sys

    from sim.engine.costs import load_profile
    from sim.errors import WssimError
    from sim.protocol.registry import strategy_entry
    from sim.wire.keys import default_key_dir

    parser = argparse.ArgumentParser(
        prog="python -m sim.testbed.loadcost",
        description="the testbed's load generator taken apart, per strategy",
    )
    parser.add_argument("profile", help="a profile written by wssim calibrate")
    parser.add_argument("strategies", nargs="+", metavar="STRATEGY", help="e.g. x509 sct")
    args = parser.parse_args(argv)
    try:
        load_profile(args.profile)
        for name in args.strategies:
            strategy_entry(name)
        for name in args.strategies:
            figures = diagnose(name, args.profile, str(default_key_dir()))
            print(name, " ".join(f"{k}={v:.3g}" for k, v in figures.items()), flush=True)
    except WssimError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
