"""An adversary on a link: the expected outcomes of each attack, per strategy.

Every attack forges real bytes from messages captured in the run and feeds them to the run's
receiving engines; the summary counts each attempt accepted or refused by a named check."""

from __future__ import annotations

import base64
import os

import pytest
from lxml import etree

import sim.crypto as crypto
from sim.engine import load_scenario, simulate
from sim.errors import ScenarioError
from sim.protocol import build_strategy
from sim.protocol.campaigns import PaddingOracle
from sim.protocol.harness import Harness
from sim.wire import ns

CIPHER_VALUE = ns.qname(ns.XENC, "CipherValue")


def simulate_attacks(strategies, key_dir, *, options=None, topology=None, workload=None, **adv):
    """The summary of a short full-fidelity run of ``strategies`` under the adversary."""
    scenario = load_scenario(
        {
            "strategies": strategies,
            "strategy_options": options or {},
            "workload": {"rate": 4.0, "messages_per_session": 2, **(workload or {})},
            "topology": topology or {},
            "run": {"duration_s": 8.0, "warmup_s": 1.0, "fidelity": "full"},
            "adversary": {"probability": 0.5, **adv},
        }
    )
    return simulate(scenario, key_dir=key_dir).summary


def run(strategies, key_dir, **adversary):
    return simulate_attacks(strategies, key_dir, **adversary)["strategies"]


def attack_stats(strategy, attack, key_dir, **kwargs) -> dict:
    kwargs.setdefault("sees_tls", True)
    summary = simulate_attacks([strategy], key_dir, attacks=[attack], **kwargs)
    return summary["strategies"][strategy]["attacks"][attack]


def assert_all_refused(stats: dict) -> None:
    assert stats["attempts"] > 0
    assert stats["accepted"] == 0, stats
    assert sum(stats["refused"].values()) == stats["attempts"]


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


# --- class 7: one replay store for the farm ------------------------------------------------

FARM = {"provider": {"nodes": 2}}
#: sessions that outlive a campaign (the flood, the padding oracle): their context is alive
LONG_SESSIONS = {"messages_per_session": 2, "message_gap_s": 2.0}


@pytest.mark.parametrize("strategy", ["x509", "ut-derived", "hok-symmetric"])
def test_a_farm_wide_replay_store_refuses_a_request_replayed_to_another_node(key_dir, strategy):
    stats = attack_stats(strategy, "cross-node-replay", key_dir, topology=FARM)
    assert stats["attempts"] > 0
    assert stats["refused"] == {"replay": stats["attempts"]} and stats["accepted"] == 0


@pytest.mark.parametrize("strategy", ["x509", "ut-derived", "hok-symmetric"])
def test_with_a_replay_store_per_node_a_request_replayed_to_another_node_goes_through(
    key_dir, strategy
):
    farm = {"provider": {"nodes": 2, "shared_replay_cache": False}}
    stats = attack_stats(strategy, "cross-node-replay", key_dir, topology=farm)
    assert stats["attempts"] > 0 and stats["accepted"] == stats["attempts"]


def test_cross_node_replay_needs_a_farm_of_two_nodes(key_dir):
    stats = attack_stats("x509", "cross-node-replay", key_dir)
    assert stats == {"attempts": 0, "accepted": 0, "refused": {}}


def _lookup_costs(key_dir, shared: bool, fidelity: str, overrides=None) -> dict:
    scenario = load_scenario(
        {
            "strategies": ["x509"],
            "workload": {"rate": 5.0, "messages_per_session": 2},
            "topology": {"provider": {"nodes": 2, "shared_replay_cache": shared}},
            "run": {"duration_s": 6.0, "warmup_s": 1.0, "fidelity": fidelity},
            "profile": {"overrides": overrides or {}},
        }
    )
    return simulate(scenario, key_dir=key_dir).summary["strategies"]["x509"]


@pytest.mark.parametrize("fidelity", ["full", "replay"])
def test_a_shared_replay_store_costs_a_round_trip_a_lookup(key_dir, fidelity):
    shared = _lookup_costs(key_dir, True, fidelity)
    local = _lookup_costs(key_dir, False, fidelity)
    # one lookup a message: the provider's for the request (the shared store's is a round
    # trip), the client's own for the reply
    assert shared["crypto_ops_per_app_message"]["replay_lookup"] == pytest.approx(2.0)
    assert local["crypto_ops_per_app_message"]["replay_lookup"] == pytest.approx(2.0)
    waited = shared["latency_ms"]["mean"] - local["latency_ms"]["mean"]
    assert waited == pytest.approx(0.3, abs=0.02)  # the default round trip, 300 µs
    service = shared["roles"]["provider"]["mean_service_ms"]
    assert service > local["roles"]["provider"]["mean_service_ms"]  # the cache call's CPU
    slower = _lookup_costs(key_dir, True, fidelity, {"replay_lookup": {"wait_us": 1300.0}})
    assert slower["latency_ms"]["mean"] - shared["latency_ms"]["mean"] == pytest.approx(
        1.0, abs=0.02
    )


# --- the attack classes of issue 14 ---------------------------------------------------------


@pytest.mark.parametrize("version", ["1.1", "2.0"])
@pytest.mark.parametrize(
    "strategy", ["bearer", "bearer-per-message", "hok-symmetric", "hok-public"]
)
def test_a_subject_injected_into_the_assertions_signature_is_refused(key_dir, strategy, version):
    stats = attack_stats(
        strategy, "saml-injection", key_dir, options={strategy: {"saml_version": version}}
    )
    assert_all_refused(stats)


def test_a_subject_injected_into_a_vouched_for_assertion_is_refused(key_dir):
    stats = attack_stats("sender-vouches", "saml-injection", key_dir, link="intermediary-provider")
    assert_all_refused(stats)


@pytest.mark.parametrize("strategy", ["x509", "sct", "sct-tlsnego", "hok-symmetric", "ut-derived"])
def test_comments_in_signed_values_are_refused(key_dir, strategy):
    stats = attack_stats(strategy, "comment-truncation", key_dir)
    assert_all_refused(stats)


@pytest.mark.parametrize("strategy", ["bearer", "hok-public"])
def test_a_comment_in_a_payload_sent_in_clear_is_refused(key_dir, strategy):
    stats = attack_stats(strategy, "comment-truncation", key_dir)
    assert_all_refused(stats)


@pytest.mark.parametrize(
    "strategy",
    ["x509", "bearer", "hok-symmetric", "hok-public", "sct", "sct-tlsnego", "ut-derived"],
)
def test_reflected_requests_and_responses_are_refused(key_dir, strategy):
    stats = attack_stats(strategy, "reflection", key_dir)
    assert_all_refused(stats)
    # both directions: the request back to its client, the response on to the provider
    assert stats["attempts"] % 2 == 0


@pytest.mark.parametrize("strategy", ["bearer", "x509", "sct"])
def test_a_replay_after_flooding_the_replay_store_is_refused(key_dir, strategy):
    stats = attack_stats(
        strategy, "replay-flood", key_dir, flood_messages=600, workload=LONG_SESSIONS
    )
    assert stats["attempts"] == 1 and stats["flood_messages"] == 600
    assert stats["refused"] == {"replay": 1}


def test_campaigns_are_bounded_per_run(key_dir):
    stats = attack_stats(
        "ut-derived", "replay-flood", key_dir, flood_messages=50, campaigns=3, probability=1.0
    )
    assert stats["attempts"] == 3 and stats["flood_messages"] == 150


# --- the CBC padding oracle ------------------------------------------------------------------


@pytest.mark.parametrize("encryption", ["aes-cbc", "aes-gcm"])
@pytest.mark.parametrize("strategy", ["x509", "sct", "sct-tlsnego", "hok-symmetric", "ut-derived"])
def test_the_padding_oracle_gets_no_block_out_of_the_receivers(key_dir, strategy, encryption):
    stats = attack_stats(
        strategy,
        "padding-oracle",
        key_dir,
        options={strategy: {"data_encryption": encryption}},
        workload=LONG_SESSIONS,
    )
    algorithm = "aes256-gcm" if encryption == "aes-gcm" else "aes256-cbc"
    assert stats["attempts"] == 1 and stats["encryption"] == {algorithm: 1}
    assert stats["accepted"] == 0 and stats["blocks"] == 0
    # one answer whatever the padding: the attacker gives up after the last byte's 256
    assert stats["queries"] == 256
    assert list(stats["refused"]) == ["decryption"]


def test_the_padding_oracle_does_not_apply_without_encryption(key_dir):
    stats = attack_stats("bearer", "padding-oracle", key_dir)
    assert stats["attempts"] == 0 and stats["queries"] == 0


def _captured_request(key_dir) -> bytes:
    harness = Harness(build_strategy("sct", key_dir=key_dir))
    seen = []
    harness.tamper = lambda d: seen.append(d.send.data) if d.send.kind == "app-request" else None
    assert harness.request(b"A" * 100, 10.0).results[0].ok
    return seen[-1]


def test_the_padding_oracle_recovers_a_block_from_a_receiver_that_tells_its_failures_apart(
    key_dir,
):
    """The attacker itself, against the receiver of Jager & Somorovsky's paper: AES-CBC with a
    real key, XML Encryption's padding check, then the plaintext parsed in place, and three
    answers (padding, well-formedness, what follows) told apart, as ours were."""
    captured = _captured_request(key_dir)
    key, iv = os.urandom(32), os.urandom(16)
    plaintext = b'<app:Request xmlns:app="urn:wssim:app"><app:Payload>UEFZ</app:Payload>'
    pad = 16 - len(plaintext) % 16
    padded = plaintext + os.urandom(pad - 1) + bytes([pad])
    cipher = iv + crypto.aes_cbc_encrypt(key, iv, padded)
    root = etree.fromstring(captured)
    value = next(root.iter(CIPHER_VALUE))  # the Body's: the only EncryptedData
    message = captured.replace(value.text.encode(), base64.b64encode(cipher))

    def leaky(query: bytes) -> tuple[str, str, float]:
        data = base64.b64decode(next(etree.fromstring(query).iter(CIPHER_VALUE)).text)
        decrypted = crypto.aes_cbc_decrypt(key, data[:16], data[16:])
        if not 1 <= decrypted[-1] <= 16:
            return ("wsse:FailedCheck", "CBC padding is invalid", 0.0)
        try:
            etree.fromstring(b"<w>" + decrypted[: -decrypted[-1]] + b"</w>")
        except etree.XMLSyntaxError:
            return ("wsse:FailedCheck", "not well-formed after decryption", 0.0)
        return ("wsse:FailedCheck", "digest mismatch", 0.0)

    oracle = PaddingOracle(message)
    attack = oracle.run()
    query = next(attack)
    while True:
        try:
            query = attack.send(leaky(query))
        except StopIteration:
            break
    assert oracle.recovered == plaintext[:16]
    assert oracle.queries < 600


def test_the_padding_oracle_learns_nothing_from_timing_alone_when_the_work_is_the_same(key_dir):
    oracle = PaddingOracle(_captured_request(key_dir))
    attack = oracle.run()
    next(attack)
    with pytest.raises(StopIteration):
        while True:
            attack.send(("wsse:FailedCheck", "decryption failed", 0.000120))
    assert oracle.recovered is None and oracle.queries == 256


# --- what the user reads -----------------------------------------------------------------


def test_the_summary_holds_the_security_table_per_strategy(key_dir):
    summary = simulate_attacks(
        ["bearer", "ut-derived"],
        key_dir,
        sees_tls=True,
        attacks=["steal-token", "reflection", "padding-oracle"],
        workload=LONG_SESSIONS,
    )
    security = summary["security"]
    assert set(security) == {"bearer", "ut-derived"}
    assert security["bearer"]["steal-token"].startswith("ACCEPTED")
    assert security["ut-derived"]["steal-token"] == "n/a"
    assert security["ut-derived"]["reflection"].startswith("refused")
    assert security["ut-derived"]["padding-oracle"].startswith("refused: no block in 256 queries")
    assert security["bearer"]["padding-oracle"] == "n/a"
