"""The load generator's own CPU (issue 17): its bookkeeping a message back to back, measured
with its own code and charged at saturation; and its window's CPU, which its own
snapshots stay out of."""

from __future__ import annotations

import asyncio
import json

import pytest
import tomllib

from sim.engine import load_scenario
from sim.engine.costs import CostProfile, load_profile
from sim.testbed import loadcost, loadgen, measure, predict, validation
from sim.testbed.run import Settings, predict_strategy
from tests.testbed.conftest import TINY


def _profile(**http) -> CostProfile:
    data = load_profile("default").to_json()
    data["http"] = {"client_request_us": 400.0, **http}
    return CostProfile.from_json(data)


def _busy_beyond_idle_ms(profile: CostProfile, key_dir) -> float:
    """What x509's load generator costs a message more back to back than at low load."""
    options = dict(messages=2, size=1024, key_dir=key_dir)
    busy = predict.client_cpu_ms("x509", {}, profile, busy=True, **options)
    return busy - predict.client_cpu_ms("x509", {}, profile, **options)


def test_the_busy_load_generator_is_charged_its_own_cpu_a_message(keystore):
    profile = _profile(loadgen_message_us=250.0)
    assert _busy_beyond_idle_ms(profile, keystore.directory) == pytest.approx(0.25)
    doubled = profile.with_overrides(2.0, {})
    assert _busy_beyond_idle_ms(doubled, keystore.directory) == pytest.approx(0.5)


def test_the_busy_load_generator_pays_each_request_at_its_own_cost(keystore):
    profile = _profile(loadgen_request_us=900.0)
    # x509: one request a message, 0.9 ms instead of the tight loop's 0.4 ms
    assert _busy_beyond_idle_ms(profile, keystore.directory) == pytest.approx(0.5)
    assert profile.http["client_request_us"] == 400.0  # the profile itself is left alone


def test_the_load_generators_figures_come_from_its_runs_with_and_without_http():
    bare = loadcost.Beyond(seconds=0.2, engine_s=1.0, messages=1000, requests=1000, connections=200)
    full = loadcost.Beyond(seconds=1.5, engine_s=1.0, messages=1000, requests=1000, connections=200)
    tight = {"client_request_us": 550.0, "client_connection_us": 1000.0}
    http = {"client_request_us": 500.0, "client_tls_request_us": 750.0}
    costs = loadcost.loadgen_costs(bare, full, tight, http)
    assert costs["loadgen_message_us"] == pytest.approx(200.0)
    # 1.5 s: 0.2 s of bookkeeping, 0.2 s of connections, 1.1 ms a request: twice the tight
    # loop's 0.55 ms beside it, so twice the profile's figures
    assert costs["loadgen_request_us"] == pytest.approx(1000.0)
    assert costs["loadgen_tls_request_us"] == pytest.approx(1500.0)


def test_a_profile_without_the_figures_prices_the_busy_load_generator_as_before(keystore):
    assert _busy_beyond_idle_ms(_profile(), keystore.directory) == pytest.approx(0.0, abs=1e-9)


def test_the_predicted_saturation_charges_the_load_generators_own_cpu(tmp_path):
    data = tomllib.loads(TINY)
    data["strategies"] = ["x509"]
    data["profile"] = {"variability": "deterministic"}
    scenario = load_scenario(data)
    settings = Settings(duration_s=10.0, warmup_s=2.0, step_s=4.0, users=(8,))
    path = tmp_path / "profile.json"
    profile = load_profile("default").to_json()
    # the load generator's core bounds the saturation: its CPU a message is the cap
    profile["http"] = {"client_request_us": 5000.0, "loadgen_message_us": 1000.0}
    path.write_text(json.dumps(profile))
    predicted = predict_strategy("x509", data, scenario, settings, str(path), None)
    main = predicted["main"]["loadgen"]["cpu_ms_per_message"]
    busy = predicted["saturation_loadgen_cpu_ms_per_message"]
    assert busy - main == pytest.approx(1.0)
    assert predicted["saturation_bound_by"] == predict.LOAD_GENERATOR
    assert predicted["saturation_per_s"] == pytest.approx(1000.0 / busy)


def test_the_load_generators_bookkeeping_is_measured_beyond_its_engines(keystore):
    bare = loadcost.run_mirror(None, str(keystore.directory), 1.2, http=False)
    assert bare.messages > 10
    # x509: one request a message, one connection a session of five (the users' sessions
    # open before the window and end after it)
    assert bare.requests >= bare.messages
    assert abs(bare.connections * 5 - bare.messages) <= 5 * loadcost.USERS
    # the engines' steps are timed and taken out: what is left is a fraction of them
    assert 0 < bare.seconds < bare.engine_s


class _Counted(loadgen.LoadGenerator):
    """A load generator whose servers' /stats cost one second of its CPU."""

    clock_s = 0.0

    async def server_stats(self) -> dict:
        _Counted.clock_s += 1.0
        return {}


def test_the_snapshots_keep_their_own_requests_out_of_the_window(keystore, monkeypatch):
    monkeypatch.setattr(loadgen, "cpu_seconds", lambda: _Counted.clock_s)
    config = {
        "strategy": "x509",
        "options": {},
        "key_dir": str(keystore.directory),
        "endpoints": {},
        "t0": 0.0,
        "seed": 1,
    }
    generator = _Counted(config)

    async def window() -> float:
        opening = await generator.snapshot(opening=True)
        _Counted.clock_s += 0.25  # the load generator's work inside the window
        closing = await generator.snapshot()
        return closing["loadgen_cpu_s"] - opening["loadgen_cpu_s"]

    assert asyncio.run(window()) == pytest.approx(0.25)


def test_the_load_generators_cpu_at_saturation_is_the_best_steps_and_compared():
    steps = [
        {"throughput_per_s": 100.0, "loadgen": {"cpu_ms_per_message": 5.0}},
        {"throughput_per_s": 300.0, "loadgen": {"cpu_ms_per_message": 3.0}},
        {"throughput_per_s": 250.0, "loadgen": {"cpu_ms_per_message": 3.5}},
    ]
    assert measure.loadgen_at_best(steps, 300.0) == 3.0
    assert measure.loadgen_at_best([], None) is None
    metrics = {
        "cpu_ms_per_message": {"provider": 1.0},
        "utilization": {"provider": 0.1},
        "p50_ms": 1.0,
        "p95_ms": 2.0,
        "throughput_per_s": 10.0,
    }
    flat = validation.flatten(metrics, 300.0, 3.0)
    assert flat["saturation_loadgen_cpu_ms_per_message"] == 3.0
    assert "saturation_loadgen_cpu_ms_per_message" not in validation.flatten(metrics, 300.0)


def test_the_diagnosis_command_refuses_bad_input_in_one_line(tmp_path, capsys):
    from sim.testbed.loadcost import main

    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert main([str(tmp_path / "missing.json"), "x509"]) == 2
    assert "no file" in capsys.readouterr().err
    assert main([str(broken), "x509"]) == 2
    assert "is not JSON" in capsys.readouterr().err
    assert main(["default", "x509", "no-such-strategy"]) == 2
    assert "unknown strategy 'no-such-strategy'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main([])
    assert usage.value.code == 2
