"""The HTTP layer's own cost, measured with empty requests: a testbed node echoing every
POST's body (uvicorn and the ASGI app, no engine) in a process of its own, and this
process's ``httpx`` client, as the load generator and an intermediary use it.

Per request on a kept-alive connection (what ``CostProfile.http_seconds`` charges per
message), per byte (a 16 KiB body echoed against an empty one), per new connection (what opening one adds; the simulation charges TLS handshakes,
not TCP connections: the testbed's prediction adds the client's to the load generator's
CPU), and a node's CPU per second serving nothing (its event loops' timers: the testbed's
prediction adds it to each server node's CPU over the window)."""

from __future__ import annotations

import asyncio
import os
import ssl
import time

import httpx

from sim.testbed.cluster import Cluster
from sim.testbed.driver import client_tls_context
from sim.testbed.node import cpu_seconds

#: the body echoed to measure what a byte costs (about a big SOAP message)
BODY_BYTES = 16384


def split_cores() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(client cores, server cores): one core each when there are two."""
    cores = sorted(os.sched_getaffinity(0))
    return (cores[0],), (cores[1] if len(cores) > 1 else cores[0],)


async def _requests(
    url: str,
    count: int,
    fresh: bool,
    context: ssl.SSLContext,
    gap_s: float = 0.0,
    body: bytes = b"",
) -> None:
    if gap_s:  # at low load: the client idles between requests
        async with httpx.AsyncClient(verify=context) as client:
            for _ in range(count):
                await client.post(url, content=body)
                await asyncio.sleep(gap_s)
        return
    if fresh:
        for _ in range(count):
            async with httpx.AsyncClient(verify=context) as client:
                await client.post(url, content=body)
        return
    async with httpx.AsyncClient(verify=context) as client:
        for _ in range(count):
            await client.post(url, content=body)


def _ca_pem(key_dir: str) -> bytes:
    from sim.protocol import build_strategy

    return build_strategy("x509", {}, key_dir=key_dir).setup.keystore.ca.pem


def measure_requests(
    cluster: Cluster,
    count: int,
    fresh: bool,
    context: ssl.SSLContext,
    tls: bool = False,
    gap_s: float = 0.0,
    idle_per_s: float = 0.0,
    body: bytes = b"",
) -> tuple[float, float]:
    """(server, client) CPU seconds per request of ``body`` (echoed), over plain HTTP or
    ``tls``; with ``gap_s``, requests that far apart, the server's CPU serving nothing
    (``idle_per_s`` CPU seconds a second) taken out."""
    endpoint = cluster.nodes[0].endpoint
    url = endpoint.tls if tls else endpoint.plain
    asyncio.run(_requests(url, 20, fresh, context, body=body))  # warm both ends
    name = cluster.nodes[0].name
    server = cluster.stats()[name]["cpu_s"]
    client = cpu_seconds()
    started = time.perf_counter()
    asyncio.run(_requests(url, count, fresh, context, gap_s, body))
    elapsed = time.perf_counter() - started
    client = cpu_seconds() - client
    server = cluster.stats()[name]["cpu_s"] - server - idle_per_s * elapsed
    return max(server, 0.0) / count, client / count


def measure_http_costs(key_dir: str, *, quick: bool = False) -> dict[str, float]:
    """The HTTP layer's CPU microseconds: ``server_request_us``, ``client_request_us``
    (kept-alive connection), ``server_connection_us``, ``client_connection_us`` (what a new
    connection adds), and ``server_idle_us_per_s`` (a node's CPU per second serving
    nothing), with the processes pinned as in a testbed run."""
    client_cores, server_cores = split_cores()
    count = 300 if quick else 2000
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(client_cores))
    try:
        with Cluster(
            "x509", {}, {"provider": 1}, server_cores, key_dir, time.time(), empty=True
        ) as c:
            # made once, as a testbed's clients share one; trusting the test CA
            context = client_tls_context(_ca_pem(key_dir))
            server, client = measure_requests(c, count, False, context)
            big_server, big_client = measure_requests(
                c, count, False, context, body=bytes(BODY_BYTES)
            )
            server_new, client_new = measure_requests(c, max(count // 5, 50), True, context)
            tls_server, tls_client = measure_requests(c, count, False, context, tls=True)
            tls_server_new, tls_client_new = measure_requests(
                c, max(count // 10, 30), True, context, True
            )
        idle = _idle_seconds_per_second(key_dir, server_cores, 3.0 if quick else 8.0)
    finally:
        os.sched_setaffinity(0, previous)
    return {
        "server_request_us": server * 1e6,
        "client_request_us": client * 1e6,
        "server_connection_us": max(server_new - server, 0.0) * 1e6,
        "client_connection_us": max(client_new - client, 0.0) * 1e6,
        "server_idle_us_per_s": idle * 1e6,
        # a byte sent and one read back (the echo): per byte of the message a side sends
        "server_byte_ns": max(big_server - server, 0.0) / BODY_BYTES * 1e9,
        "client_byte_ns": max(big_client - client, 0.0) / BODY_BYTES * 1e9,
        "server_tls_request_us": tls_server * 1e6,
        "client_tls_request_us": tls_client * 1e6,
        # a new TLS connection whole (TCP, handshake, Python's TLS transport)
        "server_tls_connection_us": max(tls_server_new - tls_server, 0.0) * 1e6,
        "client_tls_connection_us": max(tls_client_new - tls_client, 0.0) * 1e6,
    }


def measure_low_load_http_costs(
    key_dir: str, idle_us_per_s: float, *, gap_s: float, quick: bool = False
) -> dict[str, float]:
    """The request costs of ``measure_http_costs`` at low load: requests ``gap_s`` apart
    on a kept-alive connection, so that each runs with the CPU caches other processes
    left (it costs more than back to back); the node's idle CPU (``idle_us_per_s``) over
    the gaps taken out, as the prediction adds it on its own."""
    client_cores, server_cores = split_cores()
    count = 30 if quick else 120
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(client_cores))
    idle = idle_us_per_s * 1e-6
    try:
        with Cluster(
            "x509", {}, {"provider": 1}, server_cores, key_dir, time.time(), empty=True
        ) as c:
            context = client_tls_context(_ca_pem(key_dir))
            server, client = measure_requests(c, count, False, context, False, gap_s, idle)
            tls_server, tls_client = measure_requests(c, count, False, context, True, gap_s, idle)
    finally:
        os.sched_setaffinity(0, previous)
    return {
        "server_request_us": server * 1e6,
        "client_request_us": client * 1e6,
        "server_tls_request_us": tls_server * 1e6,
        "client_tls_request_us": tls_client * 1e6,
    }


def _idle_seconds_per_second(key_dir: str, cores: tuple[int, ...], seconds: float) -> float:
    """CPU seconds per second a testbed node (a real one: plain and TLS listeners, an
    engine) spends serving nothing: its event loops' timers."""
    with Cluster("x509", {}, {"provider": 1}, cores, key_dir, time.time()) as cluster:
        time.sleep(1.0)  # past its start-up
        name = cluster.nodes[0].name
        before = cluster.stats()[name]["cpu_s"]
        time.sleep(seconds)
        # the second /stats request's own cost is left in: one request in ``seconds``
        return (cluster.stats()[name]["cpu_s"] - before) / seconds
