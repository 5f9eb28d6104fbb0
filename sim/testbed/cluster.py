"""Starting and stopping a testbed's server nodes: one OS process per node (``node.py``),
pinned to the servers' cores, stopped when the ``Cluster`` context ends — normally, on an
exception or on Ctrl-C — and killed if a polite SIGTERM is not enough."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx

from sim.errors import WssimError
from sim.testbed.driver import Endpoint

#: the role started last: it forwards to the others
FORWARDER = "intermediary"
READY_TIMEOUT_S = 60.0


@dataclass
class NodeProcess:
    name: str
    role: str
    process: subprocess.Popen
    endpoint: Endpoint


@dataclass
class Cluster:
    """The server nodes of one strategy (``roles``: role -> node count)."""

    strategy: str
    options: dict
    roles: dict[str, int]
    cores: tuple[int, ...]
    key_dir: str
    t0: float
    shared_cache: dict[str, bool] = field(default_factory=dict)
    empty: bool = False
    #: where each node's stderr goes (``<node>.log``); None: discarded
    log_dir: str | None = None
    nodes: list[NodeProcess] = field(default_factory=list)

    def __enter__(self) -> Cluster:
        try:
            for role in sorted(self.roles, key=lambda role: role == FORWARDER):
                for index in range(self.roles[role]):
                    self._start(role, f"{role}-{index}")
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def endpoints(self) -> dict[str, list[dict]]:
        """Role -> its nodes' endpoints, as JSON-ready dicts."""
        out: dict[str, list[dict]] = {}
        for node in self.nodes:
            out.setdefault(node.role, []).append(node.endpoint.__dict__)
        return out

    def _start(self, role: str, name: str) -> None:
        config = {
            "strategy": self.strategy,
            "options": self.options,
            "role": role,
            "node": name,
            "key_dir": self.key_dir,
            "t0": self.t0,
            "cores": list(self.cores),
            "peers": self.endpoints(),
            "shared_cache": self.shared_cache.get(role, False),
            "empty": self.empty,
        }
        log = subprocess.DEVNULL
        if self.log_dir is not None:
            log = open(f"{self.log_dir}/{name}.log", "w")  # noqa: SIM115 (the child holds it)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "sim.testbed.node", json.dumps(config)],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        node = NodeProcess(name, role, process, Endpoint(name, "", ""))
        self.nodes.append(node)  # stopped by stop() even if it never gets ready
        line = _read_line(process, READY_TIMEOUT_S)
        if not line.startswith("READY "):
            where = f" (see {self.log_dir}/{name}.log)" if self.log_dir else ""
            raise WssimError(f"node {name} did not start{where}: {line or 'no answer'}")
        plain, tls = line.split()[1:3]
        node.endpoint = Endpoint(name, f"http://127.0.0.1:{plain}/", f"https://127.0.0.1:{tls}/")

    def stats(self) -> dict[str, dict]:
        """Each node's ``/stats`` (CPU seconds, requests)."""
        out = {}
        with httpx.Client(timeout=10.0) as client:
            for node in self.nodes:
                out[node.name] = client.get(node.endpoint.plain + "stats").json()
        return out

    def stop(self) -> None:
        """Stop every node: SIGTERM, then SIGKILL after a grace period."""
        for node in self.nodes:
            if node.process.poll() is None:
                node.process.terminate()
        deadline = time.monotonic() + 5.0
        for node in self.nodes:
            try:
                node.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()
            if node.process.stdout is not None:
                node.process.stdout.close()
        self.nodes.clear()


def _read_line(process: subprocess.Popen, timeout: float) -> str:
    """The process's first line of output, or '' when it exits or the time is up."""
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    try:
        if selector.select(timeout):
            return process.stdout.readline().strip()
        return ""
    finally:
        selector.close()


def alive(cluster: Cluster) -> list[int]:
    """The process ids of the cluster's nodes still running (for tests)."""
    return [node.process.pid for node in cluster.nodes if node.process.poll() is None]


def pid_running(pid: int) -> bool:
    """Whether process ``pid`` still exists (and is not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return False
