"""Costs at low load: a calibrated profile's ``low_load`` section (request and engine costs
measured with an idle pause before each request and step) prices the testbed's main step;
its saturation steps, run back to back, keep the profile's own figures."""

from __future__ import annotations

import json

import pytest
import tomllib

from sim.engine import load_scenario
from sim.engine.costs import load_profile
from sim.errors import ScenarioError
from sim.protocol import build_strategy
from sim.testbed import ledger_gap, predict
from sim.testbed.run import Settings, _low_load_profile_file, predict_strategy
from tests.testbed.conftest import TINY


def _calibrated(**low) -> dict:
    data = load_profile("default").to_json()
    data["http"] = {"server_request_us": 100.0, "client_request_us": 200.0}
    data["engine_overhead_us"] = {"x509": {"provider": {"app-response": 300.0}}}
    if low:
        data["low_load"] = {"pause_s": 0.03, **low}
    return data


def test_the_low_load_profile_takes_the_sections_figures_and_keeps_the_others():
    data = _calibrated(
        http={"server_request_us": 400.0},
        engine_overhead_us={"x509": {"provider": {"app-response": 900.0}}},
    )
    low = predict.low_load_profile(data)
    assert low["http"] == {"server_request_us": 400.0, "client_request_us": 200.0}
    assert low["engine_overhead_us"]["x509"]["provider"]["app-response"] == 900.0
    assert "low_load" not in low and low["ops"] == data["ops"]
    # the profile it came from is left as it was
    assert data["http"]["server_request_us"] == 100.0
    assert predict.low_load_profile(_calibrated()) is None


@pytest.mark.parametrize(
    "section",
    [[1, 2], {"http": [1]}, {"engine_overhead_us": {"x509": 3}}, {"http": {"a": "fast"}}],
)
def test_a_malformed_low_load_section_is_refused_naming_the_profile(section):
    data = load_profile("default").to_json()
    data["low_load"] = section
    with pytest.raises(ScenarioError, match="low_load"):
        predict.low_load_profile(data)


def test_a_profile_without_the_section_prices_the_main_step_back_to_back(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(_calibrated()))
    assert _low_load_profile_file(str(plain), tmp_path) is None
    assert _low_load_profile_file("default", tmp_path) is None


def test_the_main_step_is_predicted_at_low_load_and_saturation_back_to_back(tmp_path):
    data = tomllib.loads(TINY)
    data["strategies"] = ["x509"]
    data["profile"] = {"variability": "deterministic"}
    scenario = load_scenario(data)
    settings = Settings(duration_s=20.0, warmup_s=2.0, step_s=4.0, users=(1, 2))
    profile = tmp_path / "profile.json"
    profile.write_text(
        json.dumps(_calibrated(engine_overhead_us={"x509": {"provider": {"app-response": 1300.0}}}))
    )
    low = _low_load_profile_file(str(profile), tmp_path)
    assert low is not None

    def predicted(main_profile):
        return predict_strategy(
            "x509", data, scenario, settings, str(profile), None, 1.0, main_profile
        )

    back_to_back, low_load = predicted(None), predicted(low)
    grown = (
        low_load["main"]["cpu_ms_per_message"]["provider"]
        - back_to_back["main"]["cpu_ms_per_message"]["provider"]
    )
    # one provider step a message, 1.3 ms instead of 0.3 ms of engine overhead
    assert grown == pytest.approx(1.0, abs=0.02)
    assert low_load["steps"] == back_to_back["steps"]
    assert low_load["saturation_per_s"] == back_to_back["saturation_per_s"]


def test_every_step_is_paused_before_and_timed_without_the_pause(keystore):
    import time

    strategy = build_strategy("x509", {}, key_dir=keystore.directory)
    profile = load_profile("default")
    started = time.perf_counter()
    paused = ledger_gap.time_steps(
        strategy, profile, messages=2, sessions=2, warmup_sessions=1, pause_s=0.1
    )
    elapsed = time.perf_counter() - started
    # 2 sessions of 2 messages: 4 provider steps; each timed step slept 0.1 s before it
    assert paused.steps["provider", "app-response"] == 4
    timed = sum(paused.steps.values())
    assert elapsed >= timed * 0.1
    # the CPU clock leaves the sleep out: x509's provider step is far below the pause
    assert paused.spent["provider", "app-response"] / 4 < 0.1
