"""Algorithm suites as data, the replay cache, and certificate trust."""

from __future__ import annotations

import pytest

from sim.errors import InvalidSecurity, InvalidSecurityToken, MessageExpired
from sim.wire import suites
from sim.wire.checks import ReplayCache
from sim.wire.ledger import Ledger
from sim.wire.ns import DigestAlg, EncryptionAlg, KeyTransportAlg, SignatureAlg


def test_the_sixteen_ws_securitypolicy_suites():
    assert len(suites.SUITES) == 16
    b256 = suites.suite("Basic256")
    assert b256.encryption is EncryptionAlg.AES256_CBC and b256.digest is DigestAlg.SHA1
    assert (b256.encryption_derived_key_bits, b256.signature_derived_key_bits) == (256, 192)
    assert b256.asymmetric_key_wrap is KeyTransportAlg.RSA_OAEP_MGF1P
    assert suites.suite("Basic128Rsa15").asymmetric_key_wrap is KeyTransportAlg.RSA_1_5
    assert suites.suite("TripleDes").encryption is EncryptionAlg.TRIPLEDES_CBC
    sha256 = suites.suite("Basic256Sha256")
    assert sha256.digest is DigestAlg.SHA256
    assert SignatureAlg.RSA_SHA256 in sha256.signature_algorithms
    assert SignatureAlg.RSA_SHA256 not in b256.signature_algorithms
    assert (b256.min_asymmetric_key_bits, b256.max_asymmetric_key_bits) == (1024, 4096)


@pytest.mark.parametrize("name", sorted(suites.SUITES))
def test_a_receiver_accepts_its_suites_algorithms_and_no_other(name):
    """SignaturePolicy.from_suite: one digest, one symmetric and one asymmetric signature;
    the Sha256 suites sign with HMAC-SHA256 and RSA-SHA256 (as WCF's Basic256Sha256 does)
    and refuse every SHA-1 form, the SHA-1 suites refuse every SHA-256 form."""
    from sim.wire.dsig import SignaturePolicy

    chosen = suites.suite(name)
    policy = SignaturePolicy.from_suite(chosen)
    sha256 = "Sha256" in name
    assert policy.digest_algorithms == {DigestAlg.SHA256 if sha256 else DigestAlg.SHA1}
    assert policy.signature_algorithms == (
        {SignatureAlg.HMAC_SHA256, SignatureAlg.RSA_SHA256}
        if sha256
        else {SignatureAlg.HMAC_SHA1, SignatureAlg.RSA_SHA1}
    )
    assert {chosen.symmetric_signature, chosen.asymmetric_signature} == policy.signature_algorithms
    assert (policy.min_rsa_bits, policy.max_rsa_bits) == (
        chosen.min_asymmetric_key_bits,
        chosen.max_asymmetric_key_bits,
    )


def test_unknown_suite_names_what_exists():
    with pytest.raises(ValueError, match="Basic256"):
        suites.suite("Basic512")


def test_replay_cache_refuses_a_second_sighting_until_it_expires():
    cache = ReplayCache(capacity=10, ttl=60.0, skew=0.0)
    cache.check_and_add("urn:uuid:1", now=0.0)
    with pytest.raises(InvalidSecurity, match="replayed") as refused:
        cache.check_and_add("urn:uuid:1", now=30.0)
    assert refused.value.check == "replay"
    with pytest.raises(InvalidSecurity, match="replayed"):
        cache.check_and_add("urn:uuid:1", now=60.0)  # the last instant it could be fresh
    cache.check_and_add("urn:uuid:1", now=60.5)  # gone: the freshness check refuses it now


# Freshness accepts a message while now - Created <= 600 (max age 300 + skew 300) and
# Created <= now + 300: the store must answer for every such instant, boundaries included.
@pytest.mark.parametrize(
    ("created", "expires", "replayed_at"),
    [
        (0.0, 300.0, 600.0),  # exactly +600 s: Expires + skew, and Created + horizon
        (0.0, None, 600.0),  # no Expires: Created + horizon
        (300.0, 600.0, 900.0),  # Created as far in the future as the skew allows
        (0.0, 10_000.0, 600.0),  # a far Expires does not outlive the horizon
        (0.0, 100.0, 400.0),  # a near Expires: Expires + skew
    ],
)
def test_a_replay_is_refused_at_every_instant_freshness_would_accept_it(
    created, expires, replayed_at
):
    cache = ReplayCache()
    cache.check_and_add(b"sig", 0.0, created=created, expires=expires)
    for now in (1.0, replayed_at - 0.001, replayed_at):
        with pytest.raises(InvalidSecurity, match="replayed"):
            cache.check_and_add(b"sig", now, created=created, expires=expires)


@pytest.mark.parametrize("first_seen", [0.0, 300.0])
def test_without_times_the_entry_outlives_any_message_fresh_when_first_seen(first_seen):
    """A caller that passes no Created: the message may carry one up to the skew ahead,
    fresh until Created + 600, so the entry lives until first sighting + 900."""
    cache = ReplayCache()
    cache.check_and_add("urn:uuid:m", first_seen)
    with pytest.raises(InvalidSecurity, match="replayed"):
        cache.check_and_add("urn:uuid:m", first_seen + 900.0)


@pytest.mark.parametrize(
    ("created", "now", "reason"),
    [
        (300.001, 0.0, "future"),
        (1000.0, 0.0, "future"),
        (0.0, 600.001, "horizon"),
        (-5000.0, 0.0, "horizon"),
    ],
)
def test_the_store_refuses_what_lies_outside_its_window(created, now, reason):
    cache = ReplayCache()
    with pytest.raises(MessageExpired, match=reason) as refused:
        cache.check_and_add(b"k", now, created=created)
    assert refused.value.check == "replay"
    assert len(cache) == 0


def test_the_store_edges_of_its_window_are_accepted():
    cache = ReplayCache()
    cache.check_and_add(b"future", 0.0, created=300.0)
    cache.check_and_add(b"old", 600.0, created=0.0)
    assert len(cache) == 2


def test_entries_go_by_time_not_by_count():
    cache = ReplayCache(capacity=1_000_000)
    for i in range(150_000):  # more than the old store's flush at 100,000
        cache.check_and_add(i.to_bytes(4, "big"), float(i) * 1e-3, created=float(i) * 1e-3)
    with pytest.raises(InvalidSecurity, match="replayed"):
        cache.check_and_add((0).to_bytes(4, "big"), 150.0, created=0.0)
    cache.check_and_add(b"late", 10_000.0, created=10_000.0)  # everything older expired
    assert len(cache) == 1


def test_a_flooded_store_refuses_new_messages_and_still_refuses_replays():
    cache = ReplayCache(capacity=100)
    cache.check_and_add(b"victim", 0.0, created=0.0)
    for i in range(99):
        cache.check_and_add(b"flood-%d" % i, 1.0, created=1.0)
    with pytest.raises(InvalidSecurity, match="full") as full:
        cache.check_and_add(b"new", 2.0, created=2.0)
    assert full.value.check == "replay_store_full"
    with pytest.raises(InvalidSecurity, match="replayed"):
        cache.check_and_add(b"victim", 2.0, created=0.0)
    cache.check_and_add(b"new", 1201.5, created=1201.5)  # room again once the flood expired


def test_one_store_shared_by_two_nodes_refuses_a_replay_to_the_other():
    shared = ReplayCache(remote=True)
    node_a, node_b = Ledger(), Ledger()
    shared.check_and_add(b"sig", 10.0, created=9.0, expires=309.0, ledger=node_a)
    with pytest.raises(InvalidSecurity, match="replayed"):
        shared.check_and_add(b"sig", 12.0, created=9.0, expires=309.0, ledger=node_b)
    # a node whose clock runs behind still finds the entry after a faster node moved on
    shared.check_and_add(b"other", 609.0 + 299.0, created=609.0, ledger=node_a)
    with pytest.raises(InvalidSecurity, match="replayed"):
        shared.check_and_add(b"sig", 309.0 + 300.0, created=9.0, expires=309.0, ledger=node_b)
    assert node_a.entries == [("replay_lookup", 1)] * 2
    assert node_b.entries == [("replay_lookup", 1)] * 2


def test_a_nodes_own_store_charges_a_lookup_without_a_round_trip():
    ledger = Ledger()
    ReplayCache().check_and_add("urn:uuid:x", 0.0, ledger=ledger)
    assert ledger.entries == [("replay_lookup", 0)]


def test_certificates_from_another_ca_are_not_trusted(keystore, tmp_path):
    from sim.wire.keys import KeyStore

    stranger = KeyStore(tmp_path / "other").identity("mallory")
    keystore.verify_trusted(keystore.identity("client-0").certificate, now=0.0)
    with pytest.raises(InvalidSecurityToken, match=r"trusted CA|signature invalid"):
        keystore.verify_trusted(stranger.certificate, now=0.0)
    with pytest.raises(InvalidSecurityToken, match="validity"):
        keystore.verify_trusted(keystore.identity("client-0").certificate, now=4000 * 86400.0)


def test_checking_a_certificate_charges_the_cas_signature_check(keystore):
    from sim.wire.ledger import Ledger

    ledger = Ledger()
    keystore.verify_trusted(keystore.identity("client-0").certificate, now=0.0, ledger=ledger)
    assert ledger.entries == [("rsa_verify", keystore.ca.public_key.key_size)]


def test_certificates_have_serials_of_one_width_whatever_the_key_set(tmp_path):
    """So a message carrying a certificate or its serial has one size on every machine."""
    from cryptography.hazmat.primitives import serialization

    from sim.wire.keys import KeyStore

    stores = [KeyStore(tmp_path / str(i)) for i in range(3)]
    identities = [store.identity("client-0") for store in stores] + [s.ca for s in stores]
    assert len({len(str(i.serial_number)) for i in identities}) == 1
    der = serialization.Encoding.DER
    assert len({len(i.certificate.public_bytes(der)) for i in identities[:3]}) == 1


def test_a_key_set_made_before_fixed_width_serials_is_made_anew(tmp_path, monkeypatch):
    from sim.wire import keys

    # serials as they were: any width (here a short one)
    monkeypatch.setattr(keys, "_SERIAL_TOP_BIT", 0)
    monkeypatch.setattr(keys.x509, "random_serial_number", lambda: 12345)
    old = keys.KeyStore(tmp_path)
    old_serial = old.identity("client-0").serial_number
    monkeypatch.undo()
    store = keys.KeyStore(tmp_path)
    client = store.identity("client-0")
    assert client.serial_number != old_serial
    assert keys._serial_is_fixed_width(client.serial_number)
    store.verify_trusted(client.certificate, now=0.0)  # signed by the CA made anew
