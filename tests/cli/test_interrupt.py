"""Ctrl-C during ``wssim run``: what is done is written, marked partial, and nothing is left
running."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.cli.conftest import ROOT, SCENARIOS


@contextmanager
def _endless_run(out: Path, *extra: str) -> Iterator[subprocess.Popen]:
    """``wssim run`` of the flagship scenario for a long simulated time (to interrupt), in a
    process group of its own, its progress bar drawn on stderr although stderr is a pipe.
    Whatever the test does, nothing of it outlives the test."""
    command = [sys.executable, "-m", "sim.cli", "run", str(SCENARIOS / "sct-vs-per-message.toml")]
    command += ["--out", str(out), "--set", "workload.rate=50", *extra]
    env = {**os.environ, "TTY_COMPATIBLE": "1"}
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with suppress(ProcessLookupError):  # unless the group has ended
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def _wait_until_simulating(process: subprocess.Popen, timeout: float = 300.0) -> bytes:
    """Read stderr until the progress bar (of a run in this process: ``--workers 1``)
    counts simulated messages: the run is under way, however loaded the machine is."""
    seen = b""
    deadline = time.monotonic() + timeout
    while b" msgs" not in seen:
        left = deadline - time.monotonic()
        assert left > 0, seen.decode(errors="replace")
        ready, _, _ = select.select([process.stderr], [], [], left)
        if ready:
            chunk = os.read(process.stderr.fileno(), 65536)
            assert chunk, seen.decode(errors="replace")  # stderr closed: the run ended
            seen += chunk
    return seen


@pytest.mark.slow
def test_ctrl_c_writes_what_is_done_marked_partial(tmp_path):
    out = tmp_path / "interrupted"
    # 20,000 s: the bar ticks every 400 simulated seconds, a few wall seconds here
    with _endless_run(out, "--set", "run.duration_s=20000", "--workers", "1") as process:
        _wait_until_simulating(process)
        process.send_signal(signal.SIGINT)  # to the main process only
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr and b"interrupted" in stderr
    summary = json.loads((out / "summary.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert summary["partial"] is True and manifest["partial"] is True


def test_ctrl_c_at_a_terminal_stops_the_workers_too(tmp_path):
    """A terminal's Ctrl-C reaches the whole process group: the workers leave it to the main
    process, which writes what is done and stops them; nothing is left running."""
    out = tmp_path / "interrupted"
    marker = f"run.duration_s=100001.{os.getpid()}"
    with _endless_run(out, "--set", marker, "--workers", "2") as process:
        _wait_until_workers_ignore_interrupts(process, 2)
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        deadline = time.monotonic() + 30
        while (left := _processes_with(marker)) and time.monotonic() < deadline:
            time.sleep(0.1)  # a stopped worker takes a moment to be reaped
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr
    assert json.loads((out / "summary.json").read_text())["partial"] is True
    assert left == []


def _wait_until_workers_ignore_interrupts(
    process: subprocess.Popen, workers: int, timeout: float = 300.0
) -> None:
    """Wait until ``workers`` children of ``process`` ignore SIGINT: the pool is up, its
    workers have run their initializer, and the run is handing them jobs."""
    deadline = time.monotonic() + timeout
    while len(_children_ignoring_sigint(process.pid)) < workers:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)


def _children_ignoring_sigint(parent: int) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = (Path("/proc") / pid / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("PPid", "").strip() == str(parent):
            ignored = int(fields.get("SigIgn", "0").strip(), 16)
            if ignored & (1 << (signal.SIGINT - 1)):
                found.append(pid)
    return found


def _processes_with(marker: str) -> list[str]:
    """The ids of the processes whose command line holds ``marker``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = (Path("/proc") / pid / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in command:
            found.append(pid)
    return found
