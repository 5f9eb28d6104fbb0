"""``wssim serve``: the nodes of one strategy answer on the endpoints it prints, and stop
when it ends."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx

from tests.testbed.conftest import ROOT, leftover_processes, wssim


def test_serve_prints_endpoints_that_answer_and_stops_its_nodes(tiny, key_env):
    process = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "serve", tiny, "--strategy", "bearer", "--duration", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, **key_env},
    )
    try:
        urls = {}
        for line in process.stdout:
            found = re.match(r"(\w+-\d+): (http://\S+) \(HTTP\)\s+(https://\S+) \(HTTPS\)", line)
            if found:
                urls[found[1]] = found[2]
            if line.startswith("TLS:"):
                break
        assert set(urls) == {"sts-0", "provider-0"}
        for url in urls.values():
            stats = httpx.get(url + "stats", timeout=10).json()
            assert stats["requests"] == 0 and stats["cpu_s"] > 0
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()
    assert leftover_processes(key_env["WSSIM_KEY_DIR"]) == []


def test_serve_refuses_a_strategy_the_scenario_lacks(tiny, key_env):
    result = wssim("serve", tiny, "--strategy", "sct", env_extra=key_env)
    assert result.returncode == 2 and "--strategy" in result.stderr
