"""An adversary on a link: the expected outcomes of each attack, per strategy."""

from __future__ import annotations

import pytest

from sim.engine import load_scenario, simulate
from sim.errors import ScenarioError


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("attack-keys")


def run(strategies, key_dir, **adversary):
    scenario = load_scenario(
        {
            "strategies": strategies,
            "workload": {"rate": 4.0, "messages_per_session": 2},
            "run": {"duration_s": 8.0, "warmup_s": 1.0, "fidelity": "full"},
            "adversary": {"probability": 0.5, **adversary},
        }
    )
    return simulate(scenario, key_dir=key_dir).summary["strategies"]


def test_a_stolen_bearer_token_is_accepted_over_a_link_without_transport_protection(key_dir):
    stats = run(["bearer"], key_dir, sees_tls=True, attacks=["steal-token"])
    steal = stats["bearer"]["attacks"]["steal-token"]
    assert steal["attempts"] > 0 and steal["accepted"] == steal["attempts"]


def test_tls_protects_the_bearer_token_from_an_attacker_who_cannot_read_it(key_dir):
    steal = run(["bearer"], key_dir, attacks=["steal-token"])["bearer"]["attacks"]["steal-token"]
    assert steal["accepted"] == 0 and steal["refused"] == {"tls": steal["attempts"]}


@pytest.mark.parametrize("strategy", ["hok-symmetric", "hok-public", "sct"])
def test_a_stolen_token_without_its_key_is_refused(key_dir, strategy):
    steal = run([strategy], key_dir, sees_tls=True, attacks=["steal-token"])[strategy]["attacks"][
        "steal-token"
    ]
    assert steal["attempts"] > 0 and steal["accepted"] == 0


def test_a_replayed_sct_message_is_refused_by_the_replay_cache(key_dir):
    replay = run(["sct"], key_dir, attacks=["replay"])["sct"]["attacks"]["replay"]
    assert replay["attempts"] > 0 and replay["refused"] == {"replay": replay["attempts"]}


@pytest.mark.parametrize("strategy", ["x509", "sct", "hok-symmetric", "ut-derived", "sct-tlsnego"])
def test_signature_wrapping_and_tampering_are_refused(key_dir, strategy):
    attacks = run([strategy], key_dir, attacks=["wrap", "tamper"])[strategy]["attacks"]
    for name in ("wrap", "tamper"):
        assert attacks[name]["attempts"] > 0 and attacks[name]["accepted"] == 0, name
    assert set(attacks["wrap"]["refused"]) == {"wrapping"}


def test_the_adversary_on_the_intermediary_link_attacks_sender_vouches(key_dir):
    attacks = run(
        ["sender-vouches"], key_dir, link="intermediary-provider", attacks=["wrap", "replay"]
    )["sender-vouches"]["attacks"]
    assert attacks["wrap"]["attempts"] > 0 and attacks["wrap"]["accepted"] == 0
    assert attacks["replay"]["accepted"] == 0


def test_attacks_need_full_fidelity():
    scenario = load_scenario({"strategies": ["sct"], "workload": {"rate": 1.0}, "adversary": {}})
    with pytest.raises(ScenarioError, match="full"):
        simulate(scenario, fidelity="replay")
