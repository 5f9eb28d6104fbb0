"""A tiny scenario, a profile and the key cache for short testbed runs."""

from __future__ import annotations

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


def _command(pid: str) -> str:
    return (Path("/proc") / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode()


def leftover_processes(marker: str) -> list[int]:
    """Process ids of orphaned testbed nodes or load generators whose command line holds
    ``marker``: their parent is no wssim command, no testbed process and no test worker any
    more (the key directory is shared by the run's workers: another worker's testbed, still
    running under its own parent, is not a leftover)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = _command(entry.name)
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        state, parent = fields[0], fields[1]
        if "sim.testbed." not in command or marker not in command or state == "Z":
            continue
        try:
            owner = _command(parent)
        except OSError:
            owner = ""
        if not any(word in owner for word in ("sim.cli", "sim.testbed.", "pytest", "xdist")):
            found.append(int(entry.name))
    return found


def wssim(*args, env_extra: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    """The CLI tests' ``wssim`` with ``env_extra`` added to the environment."""
    import os

    return cli_wssim(*args, timeout=timeout, env={**os.environ, **env_extra})
