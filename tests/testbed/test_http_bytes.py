"""The HTTP layer's cost per byte: measured on echoed bodies, carried by a profile
(``*_byte_ns``), charged by the model per byte of each message a side sends, and priced into
the load generator's predicted CPU."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from sim.engine.costs import CostProfile, load_profile
from sim.engine.network import Network
from sim.engine.scenario import load_scenario
from sim.protocol.api import MessageKind, Send, Step
from sim.testbed import predict

HTTP = {
    "server_request_us": 300.0,
    "client_request_us": 400.0,
    "server_byte_ns": 10.0,
    "client_byte_ns": 20.0,
}


def _profile(**http) -> CostProfile:
    data = load_profile("default").to_json()
    data["http"] = http
    return CostProfile.from_json(data)


def test_a_message_costs_its_sender_the_request_and_each_byte():
    profile = _profile(**HTTP)
    assert profile.http_seconds(reply=True, size=1000) == pytest.approx(300e-6 + 10e-6)
    assert profile.http_seconds(reply=False, size=1000) == pytest.approx(400e-6 + 20e-6)
    assert profile.with_overrides(2.0, {}).http_seconds(reply=True, size=1000) == pytest.approx(
        2 * 310e-6
    )
    assert _profile(server_request_us=300.0).http_seconds(reply=True, size=1000) == 300e-6


def test_the_network_charges_the_bytes_of_the_message_a_step_sends():
    scenario = load_scenario({"strategies": ["x509"], "workload": {"rate": 1.0}})
    network = Network(
        simpy.Environment(), scenario, ("provider",), np.random.default_rng(1), _profile(**HTTP)
    )
    ops = (("digest", 100),)
    base = network.ledger_info(ops)[1]
    small = Send(
        to="client-0", data=b"x" * 100, action="a", kind=MessageKind.APP_RESPONSE, reply=True
    )
    big = Send(
        to="client-0", data=b"x" * 5100, action="a", kind=MessageKind.APP_RESPONSE, reply=True
    )
    grown = (
        network.step_info(Step(events=(big,), ops=ops)).seconds
        - network.step_info(Step(events=(small,), ops=ops)).seconds
    )
    assert grown == pytest.approx(5000 * 10e-9)
    assert network.step_info(Step(events=(small,), ops=ops)).seconds == pytest.approx(
        base + 300e-6 + 100 * 10e-9
    )


def test_the_load_generators_predicted_cpu_counts_the_bytes_it_sends(keystore):
    without = _profile(client_request_us=400.0)
    with_bytes = _profile(client_request_us=400.0, client_byte_ns=50.0)
    options = dict(messages=2, size=1024, key_dir=keystore.directory)
    base = predict.client_cpu_ms("x509", {}, without, **options)
    grown = predict.client_cpu_ms("x509", {}, with_bytes, **options) - base
    # an x509 request with a 1 KiB payload is several KiB: 50 ns a byte is a few tenths of a ms
    assert 0.1 < grown < 1.0
