"""The soak scenario, shortened: under STS crashes, a provider restart, link loss and an
outage, every application message is accounted for. The full run is
``wssim run scenarios/soak.toml --out soak/`` (one million messages, replay fidelity)."""

from __future__ import annotations

from pathlib import Path

from sim.engine import apply_overrides, load_scenario, simulate
from sim.engine.scenario import read_scenario_file

SOAK = Path(__file__).resolve().parents[2] / "scenarios" / "soak.toml"


def test_a_short_soak_accounts_for_every_message(key_dir):
    data = apply_overrides(
        read_scenario_file(SOAK),
        [
            "run.duration_s=60",
            "run.warmup_s=2",
            "run.max_messages=15000",
            "faults=[{kind='sts_crash', node='sts-0', at_s=3.0, duration_s=5.0},"
            " {kind='provider_restart', node='provider-1', at_s=6.0, duration_s=2.0},"
            " {kind='link_outage', link='client-provider', at_s=9.0, duration_s=6.0}]",
            "links.client-provider.loss=0.01",
        ],
    )
    result = simulate(load_scenario(data), key_dir=key_dir)
    for name, stats in result.summary["strategies"].items():
        assert stats["app_messages"] > 5000, name
        assert stats["app_messages"] == stats["completed"] + stats["failed"], name
        failures = {k: v for k, v in stats["faults"].items() if k != "recovered"}
        assert sum(failures.values()) == stats["failed"], name
        assert "wssim:Timeout" in failures or "wssim:NodeDown" in failures, name
