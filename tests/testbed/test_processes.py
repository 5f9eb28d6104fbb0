"""Every process a testbed starts is stopped: when the run ends, when it fails, when a node
fails to start; and the nodes answer over real HTTP and TLS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sim.errors import WssimError
from sim.testbed.cluster import Cluster, pid_running
from sim.testbed.driver import client_tls_context
from tests.testbed.conftest import _command, _parent, leftover_processes


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


def _holding(marker: str) -> dict[int, int]:
    """pid -> parent pid of the processes whose command line holds ``marker``."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in _command(int(entry.name)):
                found[int(entry.name)] = _parent(int(entry.name))[1]
        except (OSError, IndexError):
            continue
    return found


def test_a_leftover_is_this_tests_process_or_an_orphan_not_another_runs_live_testbed(tmp_path):
    """What the "no process outlives the run" checks count: a testbed process holding the
    key directory still under this test's process, or orphaned; not one another live pytest
    run or wssim command still holds (the key directory is shared by the workers)."""
    marker = str(tmp_path / "keys")
    fake = [sys.executable, "-c", "import time; time.sleep(60)", "sim.testbed.node", marker]
    mine = subprocess.Popen(fake)
    # started by a shell that exits at once: init adopts them. The second is a "pytest"
    # process (its command line says so) starting a testbed process of its own.
    spawner = (
        "import json, os, subprocess, time; "
        "subprocess.Popen(json.loads(os.environ['FAKE_TESTBED'])); time.sleep(60)"
    )
    started = subprocess.run(
        [
            "sh",
            "-c",
            f"{shlex.join(fake)} >/dev/null 2>&1 & echo $!; "
            f"{shlex.join([sys.executable, '-c', spawner, 'pytest'])} >/dev/null 2>&1 & echo $!",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "FAKE_TESTBED": json.dumps(fake)},
    )
    orphan, another = map(int, started.stdout.split())
    others = [orphan, another]
    try:
        deadline = time.monotonic() + 30
        while another not in _holding(marker).values():
            assert time.monotonic() < deadline, "the other run's testbed did not start"
            time.sleep(0.05)
        theirs = [pid for pid, parent in _holding(marker).items() if parent == another]
        others += theirs
        reported = {int(line.split(":")[0]) for line in leftover_processes(marker)}
        assert reported == {mine.pid, orphan}
        assert theirs and not reported & set(theirs)
    finally:
        mine.kill()
        mine.wait()
        for pid in others:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
