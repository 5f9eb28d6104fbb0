"""The HTTP layer's cost: measured on a real uvicorn node (empty requests, and a body echoed
for the cost per byte), carried by a profile, and charged by the model per message (a reply
to the server, a request to its client) and per byte of each message its sender sends."""

from __future__ import annotations

import json

import numpy as np
import pytest
import simpy

from sim.engine.costs import CostProfile, load_profile
from sim.engine.network import Network
from sim.engine.scenario import load_scenario
from sim.protocol.api import MessageKind, Send, Step
from sim.testbed import predict

HTTP = {"server_request_us": 300.0, "client_request_us": 400.0}
BYTES = {**HTTP, "server_byte_ns": 10.0, "client_byte_ns": 20.0}


def _profile(**http) -> CostProfile:
    data = load_profile("default").to_json()
    data["http"] = http
    return CostProfile.from_json(data)


def test_a_profile_charges_a_reply_to_the_server_and_a_request_to_the_client():
    profile = _profile(**HTTP)
    assert profile.http_seconds(reply=True) == pytest.approx(300e-6)
    assert profile.http_seconds(reply=False) == pytest.approx(400e-6)
    assert profile.with_overrides(2.0, {}).http_seconds(reply=True) == pytest.approx(600e-6)


def test_the_shipped_profile_has_no_http_cost():
    assert load_profile("default").http_seconds(reply=True) == 0.0


def test_http_costs_survive_the_json_round_trip(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(_profile(**HTTP).to_json()))
    assert load_profile(str(path)).http == HTTP


def _send(reply: bool, size: int = 100) -> Send:
    return Send(
        to="client-0" if reply else "provider",
        data=b"x" * size,
        action="a",
        kind=MessageKind.APP_RESPONSE if reply else MessageKind.APP_REQUEST,
        reply=reply,
    )


def _network(profile: CostProfile) -> Network:
    scenario = load_scenario({"strategies": ["x509"], "workload": {"rate": 1.0}})
    return Network(simpy.Environment(), scenario, ("provider",), np.random.default_rng(1), profile)


def test_the_network_adds_the_http_cost_to_each_step_that_sends():
    network = _network(_profile(**HTTP))
    ops = (("digest", 100),)
    base = network.ledger_info(ops)[1]
    reply = network.step_info(Step(events=(_send(True),), ops=ops))
    request = network.step_info(Step(events=(_send(False),), ops=ops))
    silent = network.step_info(Step(events=(), ops=ops))
    assert reply.seconds == pytest.approx(base + 300e-6)
    assert reply.beside_hsm == pytest.approx(network.ledger_info(ops)[2] + 300e-6)
    assert request.seconds == pytest.approx(base + 400e-6)
    assert silent.seconds == pytest.approx(base)


def test_an_empty_request_costs_the_server_and_the_client_cpu(calibrated_profile):
    # wssim calibrate's http section is measure_http_costs(quick=True), as it returned it
    costs = json.loads(calibrated_profile.read_text())["http"]
    assert set(costs) == {
        "server_request_us",
        "client_request_us",
        "server_connection_us",
        "client_connection_us",
        "server_idle_us_per_s",
        "server_tls_request_us",
        "client_tls_request_us",
        "server_tls_connection_us",
        "client_tls_connection_us",
        "server_byte_ns",
        "client_byte_ns",
        "loadgen_message_us",
        "loadgen_request_us",
        "loadgen_tls_request_us",
    }
    # a 16 KiB body echoed costs something more than an empty one, far from a ms a KiB
    assert 0 <= costs["server_byte_ns"] < 100_000 and 0 <= costs["client_byte_ns"] < 100_000
    # uvicorn and httpx are Python: tens of microseconds at the very least, not seconds
    assert 10 < costs["server_request_us"] < 100_000
    assert 10 < costs["client_request_us"] < 100_000
    assert costs["server_connection_us"] >= 0 and costs["client_connection_us"] >= 0
    # uvicorn's timers tick while idle: some CPU, far from a whole core
    assert 0 < costs["server_idle_us_per_s"] < 200_000
    # a TLS connection costs its handshake on top of a plain one's
    assert costs["server_tls_connection_us"] > costs["server_connection_us"]
    # the load generator's own bookkeeping a message: some CPU, far below a millisecond's
    # tens (the asyncio tasks, the row, the bill)
    assert 1 < costs["loadgen_message_us"] < 20_000
    # a request as the load generator makes it: the HTTP client's Python, as in a tight loop
    assert 10 < costs["loadgen_request_us"] < 100_000


def test_wssim_calibrate_writes_the_http_costs_into_the_profile(calibrated_profile):
    http = load_profile(str(calibrated_profile)).http
    assert set(http) >= {"server_request_us", "client_request_us"}
    assert http["server_request_us"] > 0 and http["client_request_us"] > 0


def test_a_message_costs_its_sender_the_request_and_each_byte():
    profile = _profile(**BYTES)
    assert profile.http_seconds(reply=True, size=1000) == pytest.approx(300e-6 + 10e-6)
    assert profile.http_seconds(reply=False, size=1000) == pytest.approx(400e-6 + 20e-6)
    assert profile.with_overrides(2.0, {}).http_seconds(reply=True, size=1000) == pytest.approx(
        2 * 310e-6
    )
    assert _profile(server_request_us=300.0).http_seconds(reply=True, size=1000) == 300e-6


def test_the_network_charges_the_bytes_of_the_message_a_step_sends():
    network = _network(_profile(**BYTES))
    ops = (("digest", 100),)
    base = network.ledger_info(ops)[1]
    small = network.step_info(Step(events=(_send(True),), ops=ops)).seconds
    big = network.step_info(Step(events=(_send(True, size=5100),), ops=ops)).seconds
    assert big - small == pytest.approx(5000 * 10e-9)
    assert small == pytest.approx(base + 300e-6 + 100 * 10e-9)


def test_the_load_generators_predicted_cpu_counts_the_bytes_it_sends(keystore):
    without = _profile(client_request_us=400.0)
    with_bytes = _profile(client_request_us=400.0, client_byte_ns=50.0)
    options = dict(messages=2, size=1024, key_dir=keystore.directory)
    base = predict.client_cpu_ms("x509", {}, without, **options)
    grown = predict.client_cpu_ms("x509", {}, with_bytes, **options) - base
    # an x509 request with a 1 KiB payload is several KiB: 50 ns a byte is a few tenths of a ms
    assert 0.1 < grown < 1.0
