"""Every process a testbed starts is stopped: when the run ends, when it fails, when a node
fails to start; and the nodes answer over real HTTP and TLS."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from sim.errors import WssimError
from sim.testbed.cluster import Cluster, pid_running
from sim.testbed.driver import client_tls_context


def _cluster(keystore, roles, **kwargs) -> Cluster:
    return Cluster("bearer", {}, roles, (0,), str(keystore.directory), time.time(), **kwargs)


def test_nodes_are_stopped_when_the_block_fails(keystore):
    pids = []
    with (
        pytest.raises(RuntimeError, match="boom"),
        _cluster(keystore, {"sts": 1, "provider": 1}) as c,
    ):
        pids = [node.process.pid for node in c.nodes]
        assert len(pids) == 2 and all(pid_running(pid) for pid in pids)
        raise RuntimeError("boom")
    assert pids and not any(pid_running(pid) for pid in pids)


def test_started_nodes_are_stopped_when_a_later_node_fails_to_start(keystore, tmp_path):
    cluster = _cluster(keystore, {"sts": 1, "provider": 1}, log_dir=str(tmp_path))
    cluster.options = {"token_lifetime_s": "not a number"}  # every node refuses to start
    with pytest.raises(WssimError, match="sts-0 did not start"), cluster:
        pass
    assert cluster.nodes == []
    assert "token_lifetime_s" in (tmp_path / "sts-0.log").read_text()


def test_a_node_answers_stats_over_http_and_soap_over_tls(keystore):
    with _cluster(keystore, {"provider": 1}) as cluster:
        endpoint = cluster.nodes[0].endpoint
        stats = cluster.stats()["provider-0"]
        assert stats["cpu_s"] > 0 and stats["requests"] == 0 and stats["wait_s"] >= 0

        async def post() -> httpx.Response:
            tls = client_tls_context(keystore.ca.pem)
            async with httpx.AsyncClient(verify=tls) as client:
                return await client.post(endpoint.tls, content=b"<not-soap/>")

        answer = asyncio.run(post())
        # the engine refused the message: a SOAP fault, over a TLS connection the test CA
        # vouched for
        assert answer.status_code == 500
        assert b"Fault" in answer.content
        assert cluster.stats()["provider-0"]["requests"] == 1
