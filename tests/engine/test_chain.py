"""The chain's shortcut against what it replaces: client deliveries folded into the client's
CPU time against one event per delivery."""

from __future__ import annotations

import pytest

from sim.engine import load_scenario, simulate
from sim.engine import replication as replication_module
from sim.engine.network import Network


class _Unfolded(Network):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        assert self.fold  # nothing in the scenario below turns it off
        self.fold = False


@pytest.mark.parametrize("variability", ["deterministic", "exponential"])
def test_folding_client_deliveries_leaves_the_summary_as_it_is(key_dir, monkeypatch, variability):
    """Folded or not, a replay run measures the same (with random service times the draws
    are made in another order: the same distribution, close figures)."""
    s = load_scenario(
        {
            "strategies": ["sct"],
            "workload": {"rate": 40.0, "messages_per_session": 5},
            "run": {"duration_s": 20.0, "warmup_s": 2.0},
            "profile": {"variability": variability},
            "topology": {"provider": {"nodes": 1, "cores": 1}},
        }
    )
    folded = simulate(s, fidelity="replay", key_dir=key_dir).summary["strategies"]["sct"]
    monkeypatch.setattr(replication_module, "Network", _Unfolded)
    unfolded = simulate(s, fidelity="replay", key_dir=key_dir).summary["strategies"]["sct"]
    if variability == "deterministic":
        assert folded["app_messages"] == unfolded["app_messages"]
        flat = [  # the figures, not the nested confidence intervals
            {k: v for k, v in run["latency_ms"].items() if not isinstance(v, dict)}
            for run in (folded, unfolded)
        ]
        assert flat[0] == pytest.approx(flat[1], rel=1e-9)
        for role, figures in folded["roles"].items():
            assert figures == pytest.approx(unfolded["roles"][role], rel=1e-9)
    else:
        assert folded["latency_ms"]["mean"] == pytest.approx(
            unfolded["latency_ms"]["mean"], rel=0.05
        )
