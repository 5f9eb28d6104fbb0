"""Moving a sans-I/O engine's Sends over real HTTP: the loop the load generator's clients and
an intermediary's node share (``follow``), and the HTTP side of it (``Transport``: one
``httpx.AsyncClient`` per connection set, TLS with the test CA on the links that need it).

A request travels as an HTTP POST of the SOAP bytes to ``/`` of a node of the Send's role
(``https`` when ``Send.tls``), with the sender's node name in ``x-wssim-sender``; the reply
carries the answering node's name in ``x-wssim-node`` and, when that node made requests of
its own to answer (an intermediary), what they cost in ``x-wssim-hops``.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

from sim.engine.steps import first_events
from sim.protocol.api import AppDone, MessageKind, Send, SessionClosed, Step, role_of

SENDER = "x-wssim-sender"
NODE = "x-wssim-node"
HOPS = "x-wssim-hops"
SOAP_TYPE = "application/soap+xml; charset=utf-8"
#: seconds an HTTP exchange may take before it counts as failed (bounded runs)
REQUEST_TIMEOUT_S = 30.0


@dataclass
class Bill:
    """What the messages of one application message cost on the wire, as the simulator's
    ``MessageRecord`` counts them (``sim.engine.network.bill_of``)."""

    request_bytes: int = 0
    response_bytes: int = 0
    token_bytes: int = 0
    sts_exchanges: int = 0

    def count(self, send: Send) -> None:
        size = len(send.data)
        if send.token_service:
            self.token_bytes += size
            self.sts_exchanges += 0 if send.reply else 1
        elif send.kind == MessageKind.APP_REQUEST and role_of(send.to) != "client":
            self.request_bytes = max(self.request_bytes, size)
        elif send.kind == MessageKind.APP_RESPONSE:
            self.response_bytes = max(self.response_bytes, size)

    def add(self, other: Mapping[str, int]) -> None:
        self.request_bytes = max(self.request_bytes, int(other.get("request_bytes", 0)))
        self.response_bytes = max(self.response_bytes, int(other.get("response_bytes", 0)))
        self.token_bytes += int(other.get("token_bytes", 0))
        self.sts_exchanges += int(other.get("sts_exchanges", 0))

    def header(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))


@dataclass(frozen=True)
class Endpoint:
    """A server node's two listeners on the loopback."""

    node: str
    plain: str
    tls: str


def client_tls_context(ca_pem: bytes) -> ssl.SSLContext:
    """TLS 1.2 client context trusting only the test CA (the nodes' certificates name the
    actor, not the loopback address: the chain is verified, the host name is not)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cadata=ca_pem.decode())
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


@dataclass
class Transport:
    """HTTP towards the server roles, for one connection set (a client session, or a node).

    ``endpoints`` maps each role to its nodes; a request goes to them in turn."""

    endpoints: Mapping[str, list[Endpoint]]
    tls: ssl.SSLContext
    me: str
    _clients: dict[bool, httpx.AsyncClient] = field(default_factory=dict)
    _turn: dict[str, int] = field(default_factory=dict)

    def _client(self, secure: bool) -> httpx.AsyncClient:
        client = self._clients.get(secure)
        if client is None:
            client = httpx.AsyncClient(
                verify=self.tls,  # for plain HTTP too: a new default context costs 2 ms
                timeout=REQUEST_TIMEOUT_S,
                limits=httpx.Limits(max_keepalive_connections=4),
            )
            self._clients[secure] = client
        return client

    async def post(self, send: Send, bill: Bill) -> tuple[bytes, str]:
        """POST ``send`` to a node of its role: (the reply's bytes, the node's name)."""
        role = role_of(send.to)
        nodes = self.endpoints.get(role)
        if not nodes:
            raise RuntimeError(f"no node of role {role} is running")
        turn = self._turn.get(role, 0)
        self._turn[role] = turn + 1
        endpoint = nodes[turn % len(nodes)]
        url = endpoint.tls if send.tls else endpoint.plain
        response = await self._client(send.tls).post(
            url, content=send.data, headers={SENDER: self.me, "content-type": SOAP_TYPE}
        )
        hops = response.headers.get(HOPS)
        if hops:
            bill.add(json.loads(hops))
        return response.content, response.headers.get(NODE, endpoint.node)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


async def follow(
    engine,
    step: Step,
    transport: Transport,
    bill: Bill,
    clock: Callable[[], float],
) -> tuple[Send | None, AppDone | SessionClosed | None]:
    """Carry out ``step`` of ``engine``: every request it sends goes over HTTP and its reply
    goes back into the engine, until a step sends a reply (a server answering its caller:
    returned) or sends nothing (a client's AppDone or SessionClosed: returned)."""
    while True:
        send, result = first_events(step)
        if send is None or send.reply:
            if send is not None:
                bill.count(send)
            return send, result
        bill.count(send)
        data, node = await transport.post(send, bill)
        step = engine.receive(data, sender=node, now=clock())


def shared_clock(t0: float) -> Callable[[], float]:
    """Seconds since ``t0`` (a wall-clock instant every process of a testbed run shares),
    plus one: the engines' ``now``."""
    return lambda: time.time() - t0 + 1.0
