"""Whether this machine can give the testbed's client the scenario's client links: a
network namespace joined to the host by a veth pair with ``tc netem`` delay and rate on
both ends. ``probe`` tries it on throw-away names, removes what it made, and says why not
when it cannot (not root, no ``ip``/``tc``, no netem in the kernel)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

#: the longest network interface name Linux takes (IFNAMSIZ - 1)
IFNAME_MAX = 15


def probe_names(pid: int) -> tuple[str, tuple[str, str]]:
    """The throw-away namespace and veth pair names of process ``pid``'s probe: two
    testbed runs on one machine probe at once without meeting."""
    return f"wssim-probe-{pid}", (f"wsp{pid}a", f"wsp{pid}b")


@dataclass(frozen=True)
class LinkSupport:
    netem: bool
    reason: str


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)


def probe() -> LinkSupport:
    """Try a namespace, a veth pair and a netem qdisc; clean up; say what worked."""
    if os.geteuid() != 0:
        return LinkSupport(False, "not root: network namespaces and tc need CAP_NET_ADMIN")
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return LinkSupport(False, f"no '{tool}' command (Debian package iproute2)")
    namespace, veth = probe_names(os.getpid())
    steps = [
        ("ip", "netns", "add", namespace),
        ("ip", "link", "add", veth[0], "type", "veth", "peer", "name", veth[1]),
        ("ip", "link", "set", veth[1], "netns", namespace),
        ("tc", "qdisc", "add", "dev", veth[0], "root", "netem", "delay", "1ms", "rate", "1gbit"),
    ]
    try:
        for step in steps:
            done = _run(*step)
            if done.returncode != 0:
                error = (done.stderr or done.stdout).strip().splitlines()
                what = " ".join(step[:3])
                text = error[-1] if error else f"status {done.returncode}"
                if step[0] == "tc":
                    text += " (the kernel has no sch_netem: this container cannot delay packets)"
                return LinkSupport(False, f"'{what} ...' failed: {text}")
        return LinkSupport(True, "network namespace, veth and netem available")
    finally:
        _run("ip", "link", "del", veth[0])
        _run("ip", "netns", "del", namespace)
