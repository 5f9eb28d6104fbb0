"""What a run prepares before its replications: the strategies built and, for replay
fidelity, their scripts recorded from the real engines; and the application payloads both
fidelities send."""

from __future__ import annotations

import os

from sim.engine.fidelity import SCRIPTED_MESSAGES, Fidelity, record_scripts
from sim.engine.scenario import Scenario
from sim.protocol import build_strategy
from sim.protocol.api import KeyLog


def payload(size: int, session: int, index: int) -> bytes:
    """The application payload of message ``index`` of ``session``: ``size`` bytes."""
    seed = f"{session}:{index}:".encode()
    return (seed * (size // len(seed) + 1))[:size]


def prepare(
    scenario: Scenario,
    group: list[str] | tuple[str, ...],
    fidelity: Fidelity,
    key_dir: str | os.PathLike,
    keylog: KeyLog | None = None,
) -> tuple[dict, dict | None]:
    """The strategies of ``group`` built and, for replay fidelity, their scripts recorded."""
    built = {
        name: build_strategy(
            name, scenario.strategy_options.get(name, {}), keylog=keylog, key_dir=key_dir
        )
        for name in group
    }
    scripts = None
    if fidelity is Fidelity.REPLAY:
        scripts = {name: _record(scenario, strategy) for name, strategy in built.items()}
    return built, scripts


def _record(scenario: Scenario, strategy) -> dict:
    """Replay fidelity: the scripts of ``strategy``, per payload size the workload draws."""
    workload = scenario.workload
    geometric = workload.session_length == "geometric"
    longest = max(workload.all_values("messages_per_session"))
    topology = scenario.topology
    shared = {r for r in strategy.roles if getattr(topology, r).shared_cache}
    replay = {r for r in strategy.roles if getattr(topology, r).shared_replay_cache}
    return {
        size: record_scripts(
            strategy,
            SCRIPTED_MESSAGES if geometric else longest,
            payload(size, 0, 0),
            shared,
            replay,
        )
        for size in workload.all_values("payload_bytes")
    }
