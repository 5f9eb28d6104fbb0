"""The testbed's load generator, an OS process of its own: the scenario's workload (open
Poisson sessions or closed users, messages per session, payload sizes, gaps) driven through
the strategy's real client engines over real HTTP, every application message recorded as a
row of ``messages.csv``.

Run as ``python -m sim.testbed.loadgen CONFIG_JSON RESULT_JSON``. Sessions start during
``duration_s``; the servers' ``/stats`` and this process's CPU time are read when the
measured window opens (``warmup_s``) and closes; the messages still running then get
``drain_s`` to finish. The result holds the rows, the snapshots and the window.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import httpx
import numpy as np

from sim.engine.preparation import payload
from sim.protocol.api import AppDone
from sim.testbed.driver import (
    Bill,
    Endpoint,
    Transport,
    client_tls_context,
    follow,
    shared_clock,
)
from sim.testbed.node import cpu_seconds, run_queue_seconds

#: open workload: sessions in flight beyond which arrivals stop (the system is overloaded)
MAX_IN_FLIGHT = 2000


class LoadGenerator:
    #: the HTTP side of a session (``loadcost`` measures the load generator with its own)
    transport_class = Transport

    def __init__(self, config: dict) -> None:
        from sim.protocol import build_strategy

        self.config = config
        self.strategy = build_strategy(
            config["strategy"], config["options"], key_dir=config["key_dir"]
        )
        self.endpoints = {
            role: [Endpoint(**e) for e in nodes] for role, nodes in config["endpoints"].items()
        }
        self.tls = client_tls_context(self.strategy.setup.keystore.ca.pem)
        self.clock = shared_clock(config["t0"])
        self.rng = np.random.default_rng(config["seed"])
        self.rows: list[dict] = []
        self.live: set[int] = set()
        self.overloaded = False
        #: the first unexpected errors, for the report
        self.errors: list[str] = []
        self.started = 0.0

    def now(self) -> float:
        return time.perf_counter() - self.started

    def client_engine(self, name: str):
        """A new client engine of the strategy for the session ``name``."""
        return self.strategy.client(name)

    def _draw(self, table: list[list[float]]) -> int:
        values = [int(v) for v, _ in table]
        weights = np.array([w for _, w in table], dtype=float)
        return values[int(self.rng.choice(len(values), p=weights / weights.sum()))]

    async def session(self, key: int) -> None:
        """One session: its messages in turn (each timed from the client's first step to
        its AppDone), then its close; its own connections, as a separate client machine."""
        config = self.config
        self.live.add(key)
        name = f"client-{key}"
        engine = self.client_engine(name)
        transport = self.transport_class(self.endpoints, self.tls, name)
        length = self._draw(config["messages_per_session"])
        if config["geometric"]:
            length = int(self.rng.geometric(1.0 / length))
        try:
            for index in range(length):
                if self.now() >= config["duration_s"]:
                    break
                size = self._draw(config["payload_bytes"])
                await self.message(engine, transport, key, index, size)
                if index + 1 < length and config["message_gap_s"]:
                    await asyncio.sleep(config["message_gap_s"])
            try:
                step = engine.close(now=self.clock())
                await follow(engine, step, transport, Bill(), self.clock)
            except (httpx.HTTPError, OSError):
                pass  # a close that fails ends the session all the same
        finally:
            await transport.close()
            self.live.discard(key)

    async def message(self, engine, transport: Transport, key: int, index: int, size: int):
        bill = Bill()
        start = self.now()
        fault = None
        ok = False
        recoveries = 0
        try:
            step = engine.request(payload(size, key, index), now=self.clock())
            _, result = await follow(engine, step, transport, bill, self.clock)
            if isinstance(result, AppDone):
                ok, fault, recoveries = result.ok, result.fault, result.recoveries
            else:
                fault = "wssim:NoResult"
        except asyncio.CancelledError:
            fault = "wssim:Unfinished"  # still running when the drain ended
            self._row(key, index, start, bill, ok, fault, recoveries)
            raise
        except httpx.TimeoutException:
            fault = "wssim:Timeout"
        except (httpx.HTTPError, OSError):
            fault = "wssim:NodeDown"
        except Exception as exc:  # an engine's bug or a node's bad answer: counted, shown
            fault = f"testbed:{type(exc).__name__}"
            if len(self.errors) < 5:
                self.errors.append(f"{fault}: {exc}"[:500])
        self._row(key, index, start, bill, ok, fault, recoveries)

    def _row(self, key, index, start, bill: Bill, ok: bool, fault, recoveries: int) -> None:
        end = self.now()
        self.rows.append(
            {
                "replication": 0,
                "strategy": self.config["strategy"],
                "class": "default",
                "session": key,
                "seq": index,
                "start_s": start,
                "end_s": end,
                "latency_ms": (end - start) * 1000,
                "request_bytes": bill.request_bytes,
                "response_bytes": bill.response_bytes,
                "token_service_bytes": bill.token_bytes,
                "sts_exchanges": bill.sts_exchanges,
                "retries": 0,
                "recoveries": recoveries,
                "ok": ok,
                "fault": fault or "",
            }
        )

    async def open_arrivals(self, rate: float, tasks: set) -> None:
        key = 0
        while True:
            await asyncio.sleep(float(self.rng.exponential(1.0 / rate)))
            if self.now() >= self.config["duration_s"]:
                return
            if len(self.live) >= MAX_IN_FLIGHT:
                self.overloaded = True
                return
            task = asyncio.create_task(self.session(key))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            key += 1

    async def user(self, user: int, users: int, think: float) -> None:
        key = user
        while self.now() < self.config["duration_s"]:
            await self.session(key)
            key += users
            if think:
                await asyncio.sleep(float(self.rng.exponential(think)))

    async def snapshot(self, opening: bool = False) -> dict:
        """The servers' CPU seconds and requests, and this process's CPU seconds, now:
        read after asking the servers when the window opens, before when it closes, so
        that the snapshot's own requests stay out of the window."""
        own = self._own()
        servers = await self.server_stats()
        if opening:
            own = self._own()
        return {**own, "servers": servers}

    def _own(self) -> dict:
        return {
            "t": self.now(),
            "loadgen_cpu_s": cpu_seconds(),
            "loadgen_wait_s": run_queue_seconds(),
        }

    async def server_stats(self) -> dict:
        """Every server node's ``/stats``."""
        servers = {}
        # the run's TLS context: a client with a new default one costs 20-40 ms of CPU
        async with httpx.AsyncClient(timeout=10.0, verify=self.tls) as client:
            for nodes in self.endpoints.values():
                for endpoint in nodes:
                    answer = await client.get(endpoint.plain + "stats")
                    servers[endpoint.node] = answer.json()
        return servers

    async def run(self) -> dict:
        config = self.config
        self.started = time.perf_counter()
        tasks: set[asyncio.Task] = set()
        if config.get("rate"):
            driver = asyncio.create_task(self.open_arrivals(config["rate"], tasks))
        else:
            users = config["users"]
            driver = asyncio.gather(
                *(self.user(u, users, config["think_time_s"]) for u in range(users))
            )
        await asyncio.sleep(config["warmup_s"])
        opening = await self.snapshot(opening=True)
        await asyncio.sleep(max(0.0, config["duration_s"] - self.now()))
        closing = await self.snapshot()
        pending = [driver, *tasks]
        _, late = await asyncio.wait(pending, timeout=config["drain_s"])
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        return {
            "rows": self.rows,
            "opening": opening,
            "closing": closing,
            "unfinished_sessions": len(late),
            "overloaded": self.overloaded,
            "errors": self.errors,
        }


def main(argv: list[str]) -> None:
    config = json.loads(argv[0])
    if config.get("cores"):
        os.sched_setaffinity(0, set(config["cores"]))
    result = asyncio.run(LoadGenerator(config).run())
    with open(argv[1], "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main(sys.argv[1:])
