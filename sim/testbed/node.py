"""One server node of a testbed as an OS process: the strategy's server engine behind a
minimal ASGI app, served by uvicorn on two loopback listeners (plain HTTP, and HTTPS with the
node's certificate from the test CA).

Endpoints (``docs/validation.md``):

* ``POST /`` — a SOAP message for the node's engine (header ``x-wssim-sender``: the sender's
  node name, ``client-17``); the reply is the engine's answer (status 500 for a SOAP
  fault), with ``x-wssim-node`` (this node) and ``x-wssim-hops`` (bytes and STS exchanges of
  the messages it sent to answer, as JSON).
* ``GET /stats`` — ``{"cpu_s": user + system CPU seconds of this process, "wait_s": seconds
  it waited for a core, "requests": n, "engine_cpu_s": CPU seconds inside the engine}``.

Run as ``python -m sim.testbed.node CONFIG_JSON``; it prints ``READY <plain port> <tls
port>`` once listening, and stops on SIGTERM or when its parent dies. ``"empty": true``
echoes every POST's body (an empty request, an empty reply) (the HTTP layer's own cost, ``sim.testbed.httpcost``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

from sim.testbed.driver import (
    HOPS,
    NODE,
    SENDER,
    SOAP_TYPE,
    Bill,
    Endpoint,
    Transport,
    client_tls_context,
    follow,
    shared_clock,
)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_queue_seconds() -> float:
    """Seconds this process's threads were ready to run but waited for a core (the
    scheduler's statistics; 0 where the kernel keeps none)."""
    total = 0.0
    try:
        for task in Path("/proc/self/task").iterdir():
            total += int((task / "schedstat").read_text().split()[1]) * 1e-9
    except (OSError, IndexError, ValueError):
        return 0.0
    return total


async def _body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class NodeApp:
    """The ASGI app of one node: its engine answers each POST (``engine`` None: the body
    echoed, for measuring the HTTP layer alone)."""

    def __init__(self, name: str, engine, transport: Transport | None, clock) -> None:
        self.name = name
        self.engine = engine
        self.transport = transport
        self.clock = clock
        self.requests = 0
        #: CPU seconds spent inside the engine's receive (the rest is HTTP, the event loop)
        self.engine_cpu_s = 0.0
        if engine is not None:
            engine.receive = self._timed(engine.receive)
        self._node = (NODE.encode(), name.encode())

    def _timed(self, receive):
        def timed(*args, **kwargs):
            start = time.process_time()
            try:
                return receive(*args, **kwargs)
            finally:
                self.engine_cpu_s += time.process_time() - start

        return timed

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"] == "/stats":
            stats = {
                "cpu_s": cpu_seconds(),
                "wait_s": run_queue_seconds(),
                "requests": self.requests,
                "engine_cpu_s": self.engine_cpu_s,
            }
            await _respond(send, 200, json.dumps(stats).encode(), [self._node])
            return
        if scope["method"] != "POST":
            await _respond(send, 405, b"", [self._node])
            return
        data = await _body(receive)
        self.requests += 1
        if self.engine is None:  # the HTTP layer alone: the body comes back as the reply
            await _respond(send, 200, data, [self._node])
            return
        sender = ""
        for key, value in scope["headers"]:
            if key == SENDER.encode():
                sender = value.decode("ascii", "replace")
        bill = Bill()
        step = self.engine.receive(data, sender=sender, now=self.clock())
        reply, _ = await follow(self.engine, step, self.transport, bill, self.clock)
        if reply is None:  # the engine answered nothing: the sender waits in vain otherwise
            await _respond(send, 502, b"", [self._node])
            return
        headers = [
            self._node,
            (HOPS.encode(), bill.header().encode()),
            (b"content-type", SOAP_TYPE.encode()),
        ]
        await _respond(send, 500 if reply.fault else 200, reply.data, headers)


def _listener() -> socket.socket:
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets of that protocol, and
    # without it a reply's body waits 40 ms behind its headers (Nagle and delayed ACKs)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def enrol_users(setup, users: int = 1000) -> None:
    """Give the node's user directory every user a client may log in as: in one process
    the clients enrol them as they start (``Setup.username``); a node in its own process
    learns them beforehand, by the same rule."""
    client = 0
    while len(setup.passwords) < users and client < 100 * users:
        setup.username(f"client-{client}")
        client += 1


def _engine(config: dict):
    """The node's server engine (its own replay cache and context cache: one node a role)."""
    from sim.protocol import build_strategy

    strategy = build_strategy(config["strategy"], config["options"], key_dir=config["key_dir"])
    enrol_users(strategy.setup)
    role = config["role"]
    shared = strategy.shared_state(role) if config.get("shared_cache") else None
    return strategy, strategy.server(role, config["node"], shared=shared)


def _tls_files(strategy, role: str, directory: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization

    identity = strategy.setup.identity(role)
    cert, key = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(identity.pem)
    handle = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(handle, "wb") as out:
        out.write(
            identity.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert, key


async def _serve(config: dict) -> None:
    import ssl

    import uvicorn

    clock = shared_clock(config["t0"])
    engine = transport = None
    strategy = None
    if not config.get("empty"):
        strategy, engine = _engine(config)
        endpoints = {
            role: [Endpoint(**e) for e in nodes] for role, nodes in config["peers"].items()
        }
        ca = strategy.setup.keystore.ca.pem
        transport = Transport(endpoints, client_tls_context(ca), config["node"])
    else:  # no engine, but the role's certificate: the TLS listener's cost is measured too
        from sim.protocol import build_strategy

        strategy = build_strategy(config["strategy"], config["options"], key_dir=config["key_dir"])
    app = NodeApp(config["node"], engine, transport, clock)
    plain, secure = _listener(), _listener()
    common = dict(lifespan="off", access_log=False, log_level="warning", http="h11", loop="asyncio")
    servers = [uvicorn.Server(uvicorn.Config(app, **common))]
    if strategy is not None:
        with tempfile.TemporaryDirectory(prefix="wssim-node-") as directory:
            cert, key = _tls_files(strategy, config["role"], Path(directory))
            tls_config = uvicorn.Config(app, ssl_certfile=cert, ssl_keyfile=key, **common)
            tls_config.load()  # reads the key now: the folder goes away
        tls_config.ssl.minimum_version = tls_config.ssl.maximum_version = ssl.TLSVersion.TLSv1_2
        servers.append(uvicorn.Server(tls_config))
    for server in servers:
        # uvicorn would take SIGTERM for one server and re-raise it: this module's handler
        # stops both
        server.capture_signals = contextlib.nullcontext
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_signal_handler(signal.SIGINT, stop)
    tasks = [
        asyncio.create_task(server.serve(sockets=[sock]))
        for server, sock in zip(servers, (plain, secure), strict=False)
    ]
    while not all(server.started for server in servers):
        await asyncio.sleep(0.01)
    print(f"READY {plain.getsockname()[1]} {secure.getsockname()[1]}", flush=True)
    parent = os.getppid()
    while not all(task.done() for task in tasks):
        if os.getppid() != parent:  # the testbed died: do not outlive it
            stop()
        await asyncio.sleep(0.5)
    if transport is not None:
        await transport.close()


def main(argv: list[str]) -> None:
    config = json.loads(argv[0])
    if config.get("cores"):
        os.sched_setaffinity(0, set(config["cores"]))
    asyncio.run(_serve(config))


if __name__ == "__main__":
    main(sys.argv[1:])
