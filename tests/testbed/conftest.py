"""A tiny scenario, a profile and the key cache for short testbed runs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import wssim as cli_wssim

ROOT = Path(__file__).resolve().parents[2]

TINY = """
name = "tiny"
strategies = ["x509", "bearer"]

[workload]
rate = 3.0
messages_per_session = 3
payload_bytes = 512

[links.client-provider]
latency_ms = 20.0
"""


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture
def key_env(keystore, monkeypatch) -> dict:
    """Every process of the run uses the session's test keys, not the user's cache."""
    monkeypatch.setenv("WSSIM_KEY_DIR", str(keystore.directory))
    return {"WSSIM_KEY_DIR": str(keystore.directory)}


def _command(pid: int) -> str:
    return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()


def _parent(pid: int) -> tuple[str, int]:
    """The process's state and its parent's id."""
    fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(") ", 1)[1].split()
    return fields[0], int(fields[1])


def _owner(pid: int) -> str | None:
    """Who holds a process whose parent is ``pid``: "this test" (it descends from this
    process), "running" (a live pytest run or wssim command above it, not this test's:
    another run's or another worker's testbed, still under its parent), or None (orphaned:
    nothing above it but init or a subreaper)."""
    commands = []
    while pid > 1:
        if pid == os.getpid():
            return "this test"
        try:
            commands.append(_command(pid))
            _, pid = _parent(pid)
        except (OSError, IndexError):
            break  # gone meanwhile: what it held is orphaned
    running = any("pytest" in command or "sim.cli" in command for command in commands)
    return "running" if running else None


def leftover_processes(marker: str) -> list[str]:
    """The testbed nodes and load generators left behind holding ``marker`` (the run's key
    directory) in their command line, as "pid: command line": still running under this
    test's process, or orphaned. The key directory is shared by the run's workers, and all
    of tests/testbed runs in one of them, but a testbed process found under another live
    pytest process or wssim command (another run's, or a worker's outside the group) is
    not this test's leftover: the check stays about this test's own processes."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            command = _command(pid)
            state, parent = _parent(pid)
        except (OSError, IndexError):
            continue  # gone meanwhile
        if "sim.testbed." not in command or marker not in command or state == "Z":
            continue
        if _owner(parent) != "running":
            found.append(f"{pid}: {command[:300]}")
    return found


def wssim(*args, env_extra: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    """The CLI tests' ``wssim`` with ``env_extra`` added to the environment."""
    return cli_wssim(*args, timeout=timeout, env={**os.environ, **env_extra})
