"""Cost profiles and service-time variability."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from sim.engine import load_scenario
from sim.engine.costs import load_profile
from sim.engine.network import Network


def _network(variability: str, cv: float = 0.5) -> Network:
    scenario = load_scenario(
        {
            "strategies": ["sct"],
            "workload": {"rate": 1.0},
            "profile": {"variability": variability, "cv": cv},
        }
    )
    return Network(
        simpy.Environment(), scenario, ("provider",), np.random.default_rng(4), load_profile()
    )


@pytest.mark.parametrize(
    ("variability", "cv"), [("deterministic", 0.0), ("exponential", 1.0), ("lognormal", 0.5)]
)
def test_service_time_multiplier_has_mean_one_and_the_requested_spread(variability, cv):
    network = _network(variability, cv)
    ops = (("rsa_sign", 2048), ("c14n", 3000))
    base = network.profile.cost(ops)
    node = network.nodes["provider-0"]
    samples = np.array([network.cpu(node, ops) for _ in range(40_000)]) / base
    assert samples.mean() == pytest.approx(1.0, abs=0.02)
    assert samples.std() / samples.mean() == pytest.approx(cv, abs=0.03)


def test_scale_and_overrides_change_the_cost_of_a_ledger():
    profile = load_profile()
    ops = (("rsa_sign", 2048),)
    base = profile.cost(ops)
    slower = profile.with_overrides(3.0, {})
    assert slower.cost(ops) == pytest.approx(3 * base)
    hsm = profile.with_overrides(1.0, {"rsa_sign": {"fixed_us": 2000.0}})
    assert hsm.cost(ops) == pytest.approx(0.002)
    # RSA cost grows with the key size between measured points
    assert profile.cost((("rsa_sign", 3072),)) > base > profile.cost((("rsa_sign", 1024),))


def test_a_replay_store_lookup_costs_cpu_and_a_farm_wide_one_a_round_trip_of_waiting():
    profile = load_profile()
    local, remote = (("replay_lookup", 0),), (("replay_lookup", 1),)
    assert 0 < profile.cost(local) < 10e-6  # a lookup in the node's memory
    assert profile.cost(remote) > profile.cost(local)  # plus the cache call's socket work
    assert profile.wait(local) == 0.0
    assert profile.wait(remote) == pytest.approx(300e-6)  # the data-centre round trip
    slower = profile.with_overrides(1.0, {"replay_lookup": {"wait_us": 1000.0}})
    assert slower.wait(remote) == pytest.approx(1e-3)
    assert slower.cost(remote) == profile.cost(remote)  # waiting holds no core


def test_calibration_measures_the_replay_lookup_and_keeps_the_round_trip():
    from sim.engine.calibration import calibrate
    from sim.engine.costs import REPLAY_ROUND_TRIP_US, CostProfile

    measured = calibrate(quick=True, repetitions=3)["ops"]["replay_lookup"]
    assert 0 < measured["fixed_us"] < 100 and 0 < measured["per_byte_ns"] < 1e6
    assert measured["wait_us"] == REPLAY_ROUND_TRIP_US
    profile = CostProfile.from_json(
        {"ops": {**load_profile().to_json()["ops"], "replay_lookup": measured}}
    )
    assert profile.wait((("replay_lookup", 1),)) == pytest.approx(REPLAY_ROUND_TRIP_US * 1e-6)


def test_a_profile_written_before_an_op_existed_takes_the_default_cost_for_it(tmp_path):
    import json

    data = load_profile().to_json()
    del data["ops"]["replay_lookup"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    profile = load_profile(str(path))
    assert profile.ops["replay_lookup"] == load_profile().ops["replay_lookup"]
    assert profile.meta["default_costs_for"] == ["replay_lookup"]


OVERHEAD = {"x509": {"provider": {"app-response": 500.0}, "client": {"none": 40.0}}}


def _with_overhead(overhead=OVERHEAD):
    from sim.engine.costs import CostProfile

    data = load_profile().to_json()
    data["engine_overhead_us"] = overhead
    return CostProfile.from_json(data)


def test_engine_overhead_is_looked_up_by_strategy_role_and_kind_sent():
    profile = _with_overhead()
    assert profile.overhead_seconds("x509", "provider", "app-response") == pytest.approx(500e-6)
    # a step sending nothing is kind "none"; unknown strategies, roles and kinds cost nothing
    assert profile.overhead_seconds("x509", "client", None) == pytest.approx(40e-6)
    assert profile.overhead_seconds("x509", "provider", "fault") == 0.0
    assert profile.overhead_seconds("sct", "provider", "app-response") == 0.0
    assert profile.with_overrides(2.0, {}).overhead_seconds(
        "x509", "provider", "app-response"
    ) == pytest.approx(1e-3)


def test_the_shipped_profile_has_no_engine_overhead():
    profile = load_profile()
    assert profile.engine_overhead == {}
    assert "engine_overhead_us" not in profile.to_json()
    assert profile.overhead_seconds("x509", "provider", "app-response") == 0.0


def test_engine_overhead_survives_the_json_round_trip(tmp_path):
    import json

    path = tmp_path / "p.json"
    path.write_text(json.dumps(_with_overhead().to_json()))
    assert load_profile(str(path)).engine_overhead == OVERHEAD


def test_a_malformed_engine_overhead_is_a_scenario_error(tmp_path):
    import json

    from sim.errors import ScenarioError

    data = load_profile().to_json()
    data["engine_overhead_us"] = {"x509": {"provider": 3}}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ScenarioError, match="not a cost profile"):
        load_profile(str(path))


def test_the_network_charges_the_overhead_of_the_role_and_strategy_taking_the_step():
    from sim.protocol.api import MessageKind, Send, Step

    scenario = load_scenario({"strategies": ["x509"], "workload": {"rate": 1.0}})
    network = Network(
        simpy.Environment(), scenario, ("provider",), np.random.default_rng(1), _with_overhead()
    )
    ops = (("digest", 100),)
    reply = Send(to="client-0", data=b"x", action="a", kind=MessageKind.APP_RESPONSE, reply=True)
    base = network.ledger_info(ops)[1]
    step = Step(events=(reply,), ops=ops)
    info = network.step_info(step, "provider", "x509")
    assert info.seconds == pytest.approx(base + 500e-6)
    assert info.beside_hsm == pytest.approx(network.ledger_info(ops)[2] + 500e-6)
    silent = network.step_info(Step(ops=ops), "client", "x509")
    assert silent.seconds == pytest.approx(base + 40e-6)
    # another strategy's step, or a caller naming no role, costs its ledger alone
    assert network.step_info(Step(events=(reply,), ops=ops), "provider", "sct").seconds == base
    assert network.step_info(Step(events=(reply,), ops=ops)).seconds == base


def test_tls_requests_and_connections_cost_their_own_measured_figures():
    from sim.engine.costs import TLS_BITS, CostProfile

    data = load_profile().to_json()
    data["http"] = {
        "server_request_us": 300.0,
        "server_tls_request_us": 350.0,
        "server_connection_us": 400.0,
        "server_tls_connection_us": 5000.0,
    }
    profile = CostProfile.from_json(data)
    assert profile.http_seconds(reply=True, tls=True) == pytest.approx(350e-6)
    assert profile.http_seconds(reply=True) == pytest.approx(300e-6)
    # no TLS figure for the client: its plain one, and no client connection cost at all
    assert profile.http_seconds(reply=False, tls=True) == 0.0
    assert profile.connection_seconds(server=True) == pytest.approx(400e-6)
    # a TLS connection: what it costs beyond the handshake op charged with it
    handshake = profile.ops["tls_handshake"].seconds(TLS_BITS)
    assert profile.connection_seconds(server=True, tls=True) == pytest.approx(5e-3 - handshake)
    assert profile.connection_seconds(server=False, tls=True) == 0.0
    assert load_profile().connection_seconds(server=True, tls=True) == 0.0
