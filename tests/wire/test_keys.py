"""The key cache: a private per-user directory, and keys made the same way whatever the
cache holds."""

from __future__ import annotations

import os
import stat

import pytest

from sim.errors import ScenarioError
from sim.wire import keys
from sim.wire.keys import KeyStore, default_key_dir


def test_keys_are_cached_per_user_unless_told_otherwise(monkeypatch, tmp_path):
    monkeypatch.delenv("WSSIM_KEY_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_key_dir() == tmp_path / "home" / ".cache" / "wssim" / "keys"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_key_dir() == tmp_path / "xdg" / "wssim" / "keys"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # ignored, as the spec says
    assert default_key_dir() == tmp_path / "home" / ".cache" / "wssim" / "keys"
    monkeypatch.setenv("WSSIM_KEY_DIR", str(tmp_path / "chosen"))
    assert default_key_dir() == tmp_path / "chosen"


def test_the_cache_is_made_private_and_its_keys_readable_by_the_owner_only(tmp_path):
    store = KeyStore(tmp_path / "cache" / "keys")
    store.identity("client-0")
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700
    files = list(store.directory.iterdir())
    # the CA's and the client's key and certificate, and the lock file of their making
    assert {f.name for f in files} == {
        "wssim-test-ca-2048.key.pem",
        "wssim-test-ca-2048.pem",
        "client-0-2048.key.pem",
        "client-0-2048.pem",
        keys.LOCK_NAME,
    }
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o770, 0o777, 0o701])
def test_a_cache_open_to_other_users_is_refused(tmp_path, mode):
    directory = tmp_path / "keys"
    directory.mkdir()
    directory.chmod(mode)
    with pytest.raises(ScenarioError, match="open to other users"):
        KeyStore(directory)


def test_a_cache_that_is_a_link_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (tmp_path / "keys").symlink_to(target)
    with pytest.raises(ScenarioError, match="not a directory"):
        KeyStore(tmp_path / "keys")


@pytest.mark.skipif(os.getuid() != 0, reason="only root can give a directory to another user")
def test_a_cache_owned_by_another_user_is_refused(tmp_path):
    directory = tmp_path / "keys"
    directory.mkdir(mode=0o700)
    os.chown(directory, 4321, -1)
    with pytest.raises(ScenarioError, match="another user"):
        KeyStore(directory)


def test_making_keys_draws_nothing_from_the_processes_random_bytes(tmp_path, monkeypatch):
    """Ids and nonces come from os.urandom; a key store that drew from it while making a
    certificate shifted every id drawn afterwards, so the first run on a fresh machine sent
    other bytes than the next ones."""

    def refuse(count):
        raise AssertionError("key generation read os.urandom")

    monkeypatch.setattr(os, "urandom", refuse)
    store = KeyStore(tmp_path / "keys")
    identity = store.identity("client-0")
    assert keys._serial_is_fixed_width(identity.serial_number)
    assert identity.serial_number != store.ca.serial_number


def test_a_key_beside_another_keys_certificate_is_made_again(tmp_path):
    """Two processes making one identity at once could leave one's key with the other's
    certificate (both issued by the CA): such a pair is not loaded."""
    store = KeyStore(tmp_path / "keys")
    store.identity("client-0")
    other = store.identity("client-1")
    (tmp_path / "keys" / "client-0-2048.pem").write_bytes(other.pem)
    again = KeyStore(tmp_path / "keys").identity("client-0")
    assert again.der != other.der
    assert again.certificate.public_key().public_numbers() == (
        again.private_key.public_key().public_numbers()
    )


def test_a_mangled_certificate_is_refused_with_a_typed_fault_only(tmp_path):
    """Fields of a certificate are parsed lazily: a malformed issuer raised ValueError or
    KeyError, a bad version InvalidVersion, out of load_certificate_der or verify_trusted."""
    import random

    from sim.errors import InvalidSecurityToken
    from sim.wire.keys import load_certificate_der

    store = KeyStore(tmp_path / "keys")
    der = store.identity("client-0").der
    rng = random.Random(1)
    refused = 0
    for _ in range(4000):
        mangled = bytearray(der)
        for _ in range(rng.randint(1, 3)):
            mangled[rng.randrange(len(mangled))] = rng.randrange(256)
        try:
            store.verify_trusted(load_certificate_der(bytes(mangled)), now=0.0)
        except InvalidSecurityToken:
            refused += 1
    assert refused > 3900  # a few flips land where nothing is read (the validity's seconds)


def test_a_trusted_certificate_is_charged_and_its_validity_checked_every_time(keystore, tmp_path):
    """The CA's signature over a certificate is verified once per store (a peer sends the
    same certificate in every message) but charged in every ledger, and the validity period
    is checked at each message's instant."""
    from sim.errors import InvalidSecurityToken
    from sim.wire.keys import load_certificate_der
    from sim.wire.ledger import Ledger

    client = keystore.identity("client-0")
    for now in (10.0, 20.0):
        ledger = Ledger()
        keystore.verify_trusted(load_certificate_der(client.der), now, ledger)
        assert ledger.entries == [("rsa_verify", keystore.ca.public_key.key_size)]
    with pytest.raises(InvalidSecurityToken) as refused:
        keystore.verify_trusted(load_certificate_der(client.der), 20 * 365 * 86400.0)
    assert refused.value.check == "trust"
    other = KeyStore(tmp_path / "keys").identity("client-0")
    with pytest.raises(InvalidSecurityToken):  # another CA's: not trusted, however often
        keystore.verify_trusted(other.certificate, 10.0)


def test_a_peers_certificate_is_parsed_once_and_junk_is_refused_every_time(keystore):
    """A peer sends the same certificate in every message: parsed once, by its bytes."""
    from sim.errors import InvalidSecurityToken
    from sim.wire.keys import load_certificate_der

    der = keystore.identity("client-0").der
    assert load_certificate_der(der) is load_certificate_der(bytes(bytearray(der)))
    assert load_certificate_der(der) == keystore.identity("client-0").certificate
    for _ in range(2):
        with pytest.raises(InvalidSecurityToken):
            load_certificate_der(b"\x30\x03\x02\x01\x01")


def test_identities_read_from_the_store_sign_what_their_certificate_verifies(tmp_path):
    """Keys are read without pyca's RSA consistency checks (the store wrote them, and the
    certificate beside each is checked to certify it): they still sign correctly."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    KeyStore(tmp_path / "keys").identity("client-0")
    keys._LOADED.clear()
    again = KeyStore(tmp_path / "keys").identity("client-0")
    signature = again.private_key.sign(b"data", padding.PKCS1v15(), hashes.SHA256())
    again.public_key.verify(signature, b"data", padding.PKCS1v15(), hashes.SHA256())


def _make_keys_at_once(directory: str, barrier, results) -> None:
    """One process of the race below: wait for the others, then open the store and make two
    identities (the CA first)."""
    barrier.wait(timeout=60)
    store = KeyStore(directory)
    made = [store.identity(name, bits=1024).der for name in ("client-0", "provider")]
    results.put((store.ca.der, made))


def test_processes_making_keys_at_once_in_an_empty_directory_share_one_ca(tmp_path):
    """Test workers and worker pools open one key directory at once: without a lock, each
    made a CA of its own, kept it in memory and signed with it while another's replaced it
    on disk, so that a receiver loading the directory refused the sender's certificate."""
    import multiprocessing

    from cryptography import x509

    context = multiprocessing.get_context("fork")
    count = 4
    barrier, results = context.Barrier(count), context.Queue()
    directory = str(tmp_path / "keys")
    processes = [
        context.Process(target=_make_keys_at_once, args=(directory, barrier, results))
        for _ in range(count)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    keys._LOADED.clear()
    on_disk = KeyStore(directory)
    assert {ca for ca, _ in outcomes} == {on_disk.ca.der}
    for index, name in enumerate(("client-0", "provider")):
        assert {made[index] for _, made in outcomes} == {on_disk.identity(name, bits=1024).der}
        on_disk.verify_trusted(x509.load_der_x509_certificate(outcomes[0][1][index]), now=0.0)
