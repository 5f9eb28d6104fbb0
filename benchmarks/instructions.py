"""Instructions per application message of ``simulate()`` at issue 15's workload, counted by
valgrind's cachegrind (which a loaded machine does not disturb, unlike a clock).

Run: ``python benchmarks/instructions.py [--nodes N] [--messages M]``. It runs the engine
under ``valgrind --tool=cachegrind --cache-sim=no`` for 1 and 6 simulated seconds (``sct``,
replay, 300 sessions a second, the WAN at 1 Gbit/s, ``PYTHONHASHSEED=0``), the metered share
of sessions set to a 150 s run's, one BLAS thread, and prints the difference of the two counts over the
difference of their messages (start-up, scripts and the summary cancel out) and the fixed
part. ``--child`` is the run being counted. Needs the Debian package ``valgrind``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
DURATIONS = (1.0, 6.0)


def child(duration: float, nodes: int, messages: int) -> None:
    """The counted run: prints its application messages."""
    from sim.engine import capacity
    from sim.engine.run import simulate
    from sim.engine.scenario import apply_overrides, load_scenario

    # the share of sessions a 150 s run meters (``SessionSample``), whatever the duration
    capacity.SessionSample.__init__.__defaults__ = (capacity.METERED_SESSIONS * duration / 150,)
    data = tomllib.loads((ROOT / "scenarios" / "sct.toml").read_text())
    sets = [
        f"workload.messages_per_session={messages}",
        "workload.rate=300.0",
        f"run.duration_s={duration}",
        "run.warmup_s=0.0",
        f"topology.sts.nodes={nodes}",
        f"topology.provider.nodes={nodes}",
        "links.client-provider.bandwidth_mbps=1000.0",
    ]
    result = simulate(load_scenario(apply_overrides(data, sets)))
    print(result.summary["strategies"]["sct"]["app_messages"])


def count(duration: float, nodes: int, messages: int, work: Path) -> tuple[int, int]:
    """(instructions, application messages) of one counted run."""
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        f"--cachegrind-out-file={work / 'cachegrind.out'}",
        os.path.realpath(sys.executable),  # not a shim script: valgrind would count the shell
        __file__,
        "--child",
        str(duration),
        "--nodes",
        str(nodes),
        "--messages",
        str(messages),
    ]
    # one BLAS thread: numpy's idle OpenBLAS threads spin, and valgrind counts their spinning
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:  # the run's own error, not valgrind's command line
        sys.exit(f"the counted run failed:\n{done.stderr[-2000:]}")
    refs = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    return int(refs.group(1).replace(",", "")), int(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=2, help="nodes per role (STS, provider)")
    parser.add_argument("--messages", type=int, default=5, help="messages a session")
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not (1 <= args.nodes <= 10_000 and 1 <= args.messages <= 1_000):
        parser.error("--nodes must be 1 to 10000 and --messages 1 to 1000")
    if args.child is not None:
        child(args.child, args.nodes, args.messages)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is missing: apt-get install valgrind")
    with tempfile.TemporaryDirectory() as work:
        (i1, m1), (i6, m6) = (count(d, args.nodes, args.messages, Path(work)) for d in DURATIONS)
    per = (i6 - i1) / (m6 - m1)
    print(
        f"{per:,.0f} instructions per application message ({args.messages} a session, "
        f"{args.nodes} nodes per role); fixed {i1 - per * m1:,.0f}; messages {m1:,} and {m6:,}"
    )


if __name__ == "__main__":
    main()
