"""How fast this machine runs the implementation now: the CPU time of a fixed piece of work
(x509 sessions, client and provider engines, in the in-memory harness), the median of a few
short samples.

The machine is a shared VM: the same work took from 1.3 to 2.4 ms of CPU within minutes as
the neighbours' load changed (docs/validation.md), so CPU time is not load-independent
here. ``wssim calibrate`` records the reference in the profile (``meta.reference_ms``);
``wssim testbed`` measures it again beside each strategy's main step, on the servers'
core, and predicts with the profile scaled by their ratio (``profile.scale``)."""

from __future__ import annotations

import os
import statistics

#: the fixed work: sessions of this many messages of this size, this many times
SESSIONS, MESSAGES, SIZE, SAMPLES = 3, 3, 1024, 7


def reference_ms(key_dir: str | None = None, cores: tuple[int, ...] | None = None) -> float:
    """CPU milliseconds per application message of the reference work, run here (on
    ``cores`` when given: the process's affinity is restored after)."""
    from sim.engine.costs import load_profile
    from sim.protocol import build_strategy
    from sim.testbed.ledger_gap import time_steps

    previous = os.sched_getaffinity(0)
    if cores:
        os.sched_setaffinity(0, set(cores))
    try:
        strategy = build_strategy("x509", {}, key_dir=key_dir)
        profile = load_profile("default")  # the prices do not matter, only the time spent
        samples = []
        for _ in range(SAMPLES):
            times = time_steps(
                strategy,
                profile,
                messages=MESSAGES,
                size=SIZE,
                sessions=SESSIONS,
                warmup_sessions=1,
            )
            samples.append(sum(times.spent.values()) / times.messages * 1000)
    finally:
        os.sched_setaffinity(0, previous)
    return statistics.median(samples)


def speed_factor(profile_meta: dict, now_ms: float) -> float:
    """How much slower the machine is now than when the profile was calibrated (1 when the
    profile records no reference)."""
    reference = profile_meta.get("reference_ms")
    return now_ms / float(reference) if reference else 1.0
