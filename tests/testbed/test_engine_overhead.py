"""The engines' CPU beyond their ledgers: measured per strategy, role and kind of message sent
in the harness, written by ``wssim calibrate``, charged by the simulation; and the testbed's
prediction of the load generator's core and the servers' shared one."""

from __future__ import annotations

import argparse
import json

import pytest

from sim.engine.costs import CostProfile, load_profile
from sim.protocol import build_strategy
from sim.testbed import ledger_gap, predict
from sim.testbed.measure import Load
from tests.testbed.conftest import TINY


def _profile_file(tmp_path, name: str, **extra) -> str:
    data = load_profile("default").to_json()
    data.update(extra)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_engine_overhead_covers_every_step_the_engines_take(keystore):
    strategy = build_strategy("x509", {}, key_dir=keystore.directory)
    overhead = ledger_gap.engine_overhead(
        strategy, load_profile("default"), messages=3, sessions=4, warmup_sessions=1
    )
    assert {role: set(kinds) for role, kinds in overhead.items()} == {
        "client": {"app-request", "none"},
        "provider": {"app-response"},
    }
    # Python around the priced operations costs something on every server step
    assert overhead["provider"]["app-response"] > 0
    assert all(us >= 0 for kinds in overhead.values() for us in kinds.values())


def test_wssim_calibrate_writes_each_strategys_engine_overhead(tmp_path, key_env, monkeypatch):
    import sim.engine
    import sim.protocol
    import sim.testbed.httpcost
    from sim.cli.calibrate import cmd_calibrate

    # the ledger ops and the HTTP layer are tested elsewhere; two strategies keep it short
    monkeypatch.setattr(sim.engine, "calibrate", lambda quick: load_profile("default").to_json())
    monkeypatch.setattr(sim.testbed.httpcost, "measure_http_costs", lambda *a, **k: {})
    monkeypatch.setattr(sim.protocol, "STRATEGY_NAMES", ("x509", "bearer"))
    out = tmp_path / "p.json"
    assert cmd_calibrate(argparse.Namespace(out=str(out), quick=True, force=False)) == 0
    profile = load_profile(str(out))
    assert set(profile.engine_overhead) == {"x509", "bearer"}
    assert set(profile.engine_overhead["bearer"]) == {"client", "sts", "provider"}
    assert profile.overhead_seconds("x509", "provider", "app-response") > 0


def test_a_profile_with_engine_overhead_predicts_more_cpu_by_exactly_the_overhead(tmp_path):
    import tomllib

    data = tomllib.loads(TINY)
    data["profile"] = {"variability": "deterministic"}
    load = Load(rate=3.0, duration_s=20.0, warmup_s=2.0)
    plain = _profile_file(tmp_path, "plain")
    heavier = _profile_file(
        tmp_path, "heavier", engine_overhead_us={"x509": {"provider": {"app-response": 700.0}}}
    )
    before = predict.predicted_metrics(data, "x509", plain, load, seed=3)
    after = predict.predicted_metrics(data, "x509", heavier, load, seed=3)
    assert before["completed"] == after["completed"] > 100
    # one provider step (its app-response) per message; window edges aside, exactly 0.7 ms
    grown = after["cpu_ms_per_message"]["provider"] - before["cpu_ms_per_message"]["provider"]
    assert grown == pytest.approx(0.7, abs=0.01)


def test_the_load_generators_cpu_counts_a_new_connection_per_session(keystore):
    base = load_profile("default").to_json()
    costs = dict(base, http={"client_request_us": 100.0})
    with_connection = dict(base, http={"client_request_us": 100.0, "client_connection_us": 900.0})
    figures = [
        predict.client_cpu_ms(
            "x509",
            {},
            CostProfile.from_json(data),
            messages=3,
            size=512,
            key_dir=str(keystore.directory),
        )
        for data in (base, costs, with_connection)
    ]
    # x509's client sends one request a message (plus nothing on close), over one
    # plain connection a session
    assert figures[1] - figures[0] == pytest.approx(0.1)
    assert figures[2] - figures[1] == pytest.approx(0.9 / 3)


def test_the_predicted_saturation_is_capped_by_the_shared_cores():
    # the load generator's one core: 1000 / 5 ms = 200 messages/s
    assert predict.capped_saturation(800.0, 5.0, {"provider": 1.0}) == (200.0, "load generator")
    # every server process shares one core: 1000 / (2 + 3) ms
    assert predict.capped_saturation(800.0, 1.0, {"sts": 2.0, "provider": 3.0}) == (
        200.0,
        "servers",
    )
    assert predict.capped_saturation(50.0, 1.0, {"provider": 1.0}) == (50.0, "simulated")
    assert predict.capped_saturation(None, 1.0, {"provider": 1.0}) == (None, "simulated")


def test_the_prediction_scales_with_the_machines_speed(tmp_path):
    import tomllib

    from sim.testbed.speed import speed_factor

    data = tomllib.loads(TINY)
    data["profile"] = {"variability": "deterministic"}
    load = Load(rate=3.0, duration_s=20.0, warmup_s=2.0)
    path = _profile_file(
        tmp_path, "p", engine_overhead_us={"x509": {"provider": {"app-response": 700.0}}}
    )
    normal = predict.predicted_metrics(data, "x509", path, load, seed=3)
    slower = predict.predicted_metrics(data, "x509", path, load, seed=3, scale=1.5)
    assert slower["cpu_ms_per_message"]["provider"] == pytest.approx(
        1.5 * normal["cpu_ms_per_message"]["provider"], rel=0.01
    )
    # the factor: the reference work's CPU time now over the calibration's
    assert speed_factor({"reference_ms": 2.0}, 3.0) == 1.5
    assert speed_factor({}, 3.0) == 1.0


def test_a_new_tls_connection_costs_each_server_its_measured_figure_once_a_session(tmp_path):
    import tomllib

    from sim.engine.costs import TLS_BITS

    data = tomllib.loads(TINY)  # bearer: the STS and the provider over TLS, 3 messages
    data["profile"] = {"variability": "deterministic"}
    load = Load(rate=3.0, duration_s=20.0, warmup_s=2.0)
    plain = _profile_file(tmp_path, "plain")
    tls = _profile_file(tmp_path, "tls", http={"server_tls_connection_us": 6000.0})
    before = predict.predicted_metrics(data, "bearer", plain, load, seed=3)
    after = predict.predicted_metrics(data, "bearer", tls, load, seed=3)
    handshake = load_profile(plain).ops["tls_handshake"].seconds(TLS_BITS) * 1000
    # one connection a session to each, three messages a session
    for role in ("sts", "provider"):
        grown = after["cpu_ms_per_message"][role] - before["cpu_ms_per_message"][role]
        assert grown == pytest.approx((6.0 - handshake) / 3, rel=0.05), role
