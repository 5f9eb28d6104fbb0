"""The HTTP layer's own cost, measured with empty requests: a testbed node serving an empty
reply to every POST (uvicorn and the ASGI app, no engine) in a process of its own, and this
process's ``httpx`` client, as the load generator and an intermediary use it.

Per request on a kept-alive connection (what ``CostProfile.http_seconds`` charges per
message), and per new connection (what opening one adds; the model charges TLS handshakes,
not TCP connections: reported beside)."""

from __future__ import annotations

import asyncio
import os
import ssl
import time

import httpx

from sim.testbed.cluster import Cluster
from sim.testbed.node import cpu_seconds


def _split_cores() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(client cores, server cores): one core each when there are two."""
    cores = sorted(os.sched_getaffinity(0))
    return (cores[0],), (cores[1] if len(cores) > 1 else cores[0],)


async def _requests(url: str, count: int, fresh: bool) -> None:
    context = ssl.create_default_context()  # made once, as a testbed's clients share one
    if fresh:
        for _ in range(count):
            async with httpx.AsyncClient(verify=context) as client:
                await client.post(url, content=b"")
        return
    async with httpx.AsyncClient(verify=context) as client:
        for _ in range(count):
            await client.post(url, content=b"")


def _measure(cluster: Cluster, count: int, fresh: bool) -> tuple[float, float]:
    """(server, client) CPU seconds per request."""
    url = cluster.nodes[0].endpoint.plain
    asyncio.run(_requests(url, 20, fresh))  # warm both ends
    name = cluster.nodes[0].name
    server = cluster.stats()[name]["cpu_s"]
    client = cpu_seconds()
    asyncio.run(_requests(url, count, fresh))
    client = cpu_seconds() - client
    server = cluster.stats()[name]["cpu_s"] - server
    return server / count, client / count


def measure_http_costs(key_dir: str, *, quick: bool = False) -> dict[str, float]:
    """The HTTP layer's CPU microseconds: ``server_request_us``, ``client_request_us``
    (kept-alive connection), ``server_connection_us``, ``client_connection_us`` (what a new
    connection adds), with the processes pinned as in a testbed run."""
    client_cores, server_cores = _split_cores()
    count = 300 if quick else 2000
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(client_cores))
    try:
        with Cluster(
            "x509", {}, {"provider": 1}, server_cores, key_dir, time.time(), empty=True
        ) as c:
            server, client = _measure(c, count, fresh=False)
            server_new, client_new = _measure(c, max(count // 5, 50), fresh=True)
    finally:
        os.sched_setaffinity(0, previous)
    return {
        "server_request_us": server * 1e6,
        "client_request_us": client * 1e6,
        "server_connection_us": max(server_new - server, 0.0) * 1e6,
        "client_connection_us": max(client_new - client, 0.0) * 1e6,
    }
