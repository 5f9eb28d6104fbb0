"""Algorithm suites as data, the replay cache, and certificate trust."""

from __future__ import annotations

import pytest

from sim.errors import InvalidSecurity, InvalidSecurityToken
from sim.wire import suites
from sim.wire.checks import ReplayCache
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


def test_unknown_suite_names_what_exists():
    with pytest.raises(ValueError, match="Basic256"):
        suites.suite("Basic512")


def test_replay_cache_refuses_a_second_sighting_until_it_expires():
    cache = ReplayCache(capacity=10, ttl=60.0)
    cache.check_and_add("urn:uuid:1", now=0.0)
    with pytest.raises(InvalidSecurity, match="replayed") as refused:
        cache.check_and_add("urn:uuid:1", now=30.0)
    assert refused.value.check == "replay"
    cache.check_and_add("urn:uuid:1", now=61.0)  # expired entry: freshness guards that case


def test_replay_cache_is_bounded():
    cache = ReplayCache(capacity=100, ttl=1e9)
    for i in range(1000):
        cache.check_and_add(i.to_bytes(4, "big"), now=float(i))
    assert len(cache) == 100


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
