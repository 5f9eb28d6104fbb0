"""The probe for emulated client links: throw-away names of its own per process, nothing
left behind, and a reason when the machine cannot delay packets."""

from __future__ import annotations

import os
import subprocess

from sim.testbed import links


def test_each_process_probes_on_names_of_its_own_that_linux_takes():
    first, second = links.probe_names(1234), links.probe_names(1235)
    assert first[0] != second[0] and set(first[1]).isdisjoint(second[1])
    # the largest pid Linux hands out (pid_max's ceiling, 2**22)
    _, veth = links.probe_names(4_194_304)
    assert all(len(name) <= links.IFNAME_MAX for name in veth)


def test_the_probe_says_why_or_succeeds_and_leaves_nothing_behind():
    support = links.probe()
    assert support.reason
    if not support.netem:
        assert (
            "failed" in support.reason or "not root" in support.reason or "no '" in support.reason
        )
    namespace, veth = links.probe_names(os.getpid())
    if os.geteuid() == 0:
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
        interfaces = subprocess.run(["ip", "link", "show"], capture_output=True, text=True)
        assert namespace not in namespaces.stdout
        assert veth[0] not in interfaces.stdout
