"""What a protocol Step costs on the network: how its Send counts in the message's record
(``Bill``), and which of its ledger ops an HSM takes off the cores."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from sim.engine import load_scenario
from sim.engine.costs import load_profile
from sim.engine.network import Bill, Network, bill_of
from sim.protocol.api import AppDone, MessageKind, Send, Step


def _network() -> Network:
    scenario = load_scenario({"strategies": ["sct"], "workload": {"rate": 1.0}})
    return Network(
        simpy.Environment(),
        scenario,
        ("sts", "provider"),
        np.random.default_rng(0),
        load_profile(),
    )


@pytest.mark.parametrize(
    ("send", "role", "bill"),
    [
        (
            Send(to="sts", data=b"x", action="a", kind=MessageKind.RST_SCT, token_service=True),
            "sts",
            Bill.TOKEN_REQUEST,
        ),
        (
            Send(
                to="client-1",
                data=b"x",
                action="a",
                kind=MessageKind.RSTR_SCT,
                reply=True,
                token_service=True,
            ),
            "client",
            Bill.TOKEN_REPLY,
        ),
        (
            Send(to="provider", data=b"x", action="a", kind=MessageKind.APP_REQUEST),
            "provider",
            Bill.APP_REQUEST,
        ),
        # an intermediary answering its client with the request's answer is no new request
        (
            Send(to="client-1", data=b"x", action="a", kind=MessageKind.APP_REQUEST, reply=True),
            "client",
            Bill.NONE,
        ),
        (
            Send(to="client-1", data=b"x", action="a", kind=MessageKind.APP_RESPONSE, reply=True),
            "client",
            Bill.APP_RESPONSE,
        ),
        (
            Send(to="client-1", data=b"x", action="a", kind=MessageKind.FAULT, reply=True),
            "client",
            Bill.NONE,
        ),
    ],
)
def test_each_send_counts_in_its_record_by_what_it_carries(send, role, bill):
    assert bill_of(send, role) is bill


def test_a_step_is_known_by_its_first_send_its_result_and_its_ledger():
    network = _network()
    send = Send(to="provider", data=b"12345", action="a", kind=MessageKind.APP_REQUEST)
    ops = (("rsa_sign", 2048), ("hmac", 100), ("rsa_decrypt", 2048), ("rsa_sign", 2048))
    done = AppDone(ok=True)
    info = network.step_info(
        Step(events=(send, Send(to="sts", data=b"", action="b", kind=MessageKind.RST_SCT)), ops=ops)
    )
    assert info.send is send and info.role == "provider" and info.size == 5
    assert info.bill is Bill.APP_REQUEST
    assert dict(info.counts) == {"rsa_sign": 2, "rsa_decrypt": 1, "hmac": 1}
    assert info.private == 3  # the RSA private-key operations an HSM takes
    profile = network.profile
    assert info.seconds == profile.cost(ops)
    assert info.beside_hsm == profile.cost((("hmac", 100),))
    assert network.step_info(Step(events=(done,))).result is done
    assert network.step_info(Step(events=(done,))).send is None


def test_replayed_steps_are_looked_up_once_and_full_fidelity_steps_never_kept():
    network = _network()
    step = Step(ops=(("hmac", 10),))
    assert network.step_info(step) is network.step_info(step)
    network.memo_steps = False
    assert network.step_info(step) is not network.step_info(step)
