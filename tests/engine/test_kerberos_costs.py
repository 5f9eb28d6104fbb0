"""The Kerberos ops in the cost model: measured by calibration, priced by the default
profile, charged from the ledgers the Kerberos engines write."""

from __future__ import annotations

from sim.engine.calibration import _kerberos_ops
from sim.engine.costs import load_profile
from sim.protocol import build_strategy
from sim.protocol.harness import Harness

KRB_OPS = ("krb_string_to_key", "krb_encrypt", "krb_decrypt", "krb_checksum")


def test_calibration_measures_every_kerberos_op():
    ops = _kerberos_ops(3, (256, 4096))
    assert set(ops) == set(KRB_OPS)
    assert ops["krb_string_to_key"].per_byte_ns > 0  # per PBKDF2 iteration
    assert ops["krb_encrypt"] == ops["krb_decrypt"]  # the same AES-CBC and HMAC work
    assert ops["krb_encrypt"].seconds(4096) > ops["krb_checksum"].seconds(4096) > 0


def test_a_password_costs_more_than_the_messages_a_ticket_serves():
    profile = load_profile()
    string_to_key = profile.cost((("krb_string_to_key", 4096),))
    authenticator = profile.cost((("krb_encrypt", 150),))
    assert string_to_key > 50 * authenticator


def test_the_kdc_exchanges_are_charged_from_their_ledgers(key_dir):
    outcome = Harness(build_strategy("kerberos", key_dir=key_dir)).request(b"x", 0.0)
    profile = load_profile()
    kdc = [d for d in outcome.deliveries if d.receiver == "kdc-0"]
    assert [str(d.send.kind) for d in kdc] == ["krb-as-req", "krb-tgs-req"]
    for delivery in kdc:
        assert any(op.startswith("krb_") for op, _ in delivery.handled_ops)
        assert profile.cost(delivery.handled_ops) > 0
