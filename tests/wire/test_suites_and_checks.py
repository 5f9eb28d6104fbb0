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
