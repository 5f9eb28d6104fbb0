"""NTLMv2 (MS-NLMP): the known answers of section 4.2.4, pyspnego (an implementation this
project did not write) accepting our AUTHENTICATE and unsealing our key and we its, and
the acceptor's refusals."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from sim.errors import FailedAuthentication, FailedCheck, InvalidSecurityToken, MessageExpired
from sim.wire import ntlm
from sim.wire.ledger import Ledger
from sim.wire.xmlutil import EPOCH

VECTORS = json.loads((Path(__file__).parent.parent / "data" / "ms_nlmp_4_2_4.json").read_text())
USERS = {"user-001": "secret-1"}


def h(name: str) -> bytes:
    return bytes.fromhex(VECTORS[name])


def test_ntlmv2_matches_the_ms_nlmp_4_2_4_known_answers():
    v = VECTORS
    assert ntlm.nt_hash(v["password"]) == h("ntowfv1")
    ntowf = ntlm.ntowfv2(v["user"], h("ntowfv1"), v["domain"])
    assert ntowf == h("ntowfv2")
    nt, lm, base = ntlm.responses(
        ntowf, h("server_challenge"), h("client_challenge"), v["time"], h("av_pairs")
    )
    assert nt == h("nt_proof_str") + h("temp")
    assert lm == h("lmv2_response")
    assert base == h("session_base_key")
    assert ntlm.rc4(base, h("random_session_key")) == h("encrypted_session_key")


def _exchange(now: float = 100.0, password: str = "secret-1"):
    negotiate = ntlm.build_negotiate()
    challenge = ntlm.build_challenge(b"\x42" * 8, now)
    authenticate, key = ntlm.build_authenticate(
        negotiate, challenge, "user-001", password, ledger=Ledger()
    )
    return negotiate, challenge, authenticate, key


def test_our_acceptor_accepts_our_initiator_and_they_share_the_session_key():
    negotiate, challenge, authenticate, key = _exchange()
    ledger = Ledger()
    accepted = ntlm.accept_authenticate(
        negotiate, challenge, authenticate, USERS, now=101.0, ledger=ledger
    )
    assert accepted == ntlm.Authenticated("user-001", key)
    assert {op for op, _ in ledger.entries} >= {"ntlm_hmac_md5", "ntlm_rc4"}
    secret = b"k" * 32
    assert ntlm.unwrap(key, ntlm.wrap(key, secret, Ledger()), Ledger()) == secret


def test_a_tampered_authenticate_fails_its_mic():
    negotiate, challenge, authenticate, _ = _exchange()
    # the domain name's case (the payload starts with it): covered by the MIC only
    assert authenticate[88:90] == b"W\0"
    tampered = authenticate[:88] + b"w" + authenticate[89:]
    with pytest.raises(FailedCheck) as refused:
        ntlm.accept_authenticate(negotiate, challenge, tampered, USERS, now=101.0, ledger=Ledger())
    assert refused.value.check == "ntlm-mic"


def test_a_response_to_another_challenge_or_with_a_wrong_password_is_refused():
    negotiate, _, authenticate, _ = _exchange()
    other = ntlm.build_challenge(b"\x43" * 8, 100.0)
    with pytest.raises(FailedAuthentication):
        ntlm.accept_authenticate(negotiate, other, authenticate, USERS, now=101.0, ledger=Ledger())
    negotiate, challenge, authenticate, _ = _exchange(password="wrong")
    with pytest.raises(FailedAuthentication):
        ntlm.accept_authenticate(
            negotiate, challenge, authenticate, USERS, now=101.0, ledger=Ledger()
        )


def test_a_stale_response_is_refused_as_expired():
    negotiate, challenge, authenticate, _ = _exchange(now=0.0)
    with pytest.raises(MessageExpired):
        ntlm.accept_authenticate(
            negotiate, challenge, authenticate, USERS, now=ntlm.SKEW + 1.0, ledger=Ledger()
        )


def test_malformed_messages_are_typed_faults():
    negotiate, challenge, authenticate, _ = _exchange()
    for garbage in (b"", authenticate[:40], challenge, b"NTLMSSP\0" + struct.pack("<I", 3)):
        with pytest.raises(InvalidSecurityToken):
            ntlm.accept_authenticate(
                negotiate, challenge, garbage, USERS, now=101.0, ledger=Ledger()
            )
    with pytest.raises(InvalidSecurityToken):
        ntlm.read_challenge(negotiate)
    with pytest.raises(InvalidSecurityToken):
        ntlm.unwrap(b"k" * 16, b"short", Ledger())


@pytest.fixture
def pyspnego(tmp_path, monkeypatch):
    import spnego as library  # pyspnego, from the test extra: a missing one fails, never skips

    users = tmp_path / "ntlm-users"
    users.write_text(f"{ntlm.DOMAIN}:user-001:secret-1\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(users))
    return library


def test_pyspnego_accepts_our_authenticate_and_unseals_with_our_key(pyspnego):
    server = pyspnego.server(protocol="ntlm")
    negotiate = ntlm.build_negotiate()
    challenge = server.step(negotiate)
    authenticate, key = ntlm.build_authenticate(
        negotiate, challenge, "user-001", "secret-1", ledger=Ledger()
    )
    server.step(authenticate)
    assert server.complete and server.session_key == key
    sealed = server.wrap(b"the context key, 32 bytes long..", encrypt=True).data
    assert ntlm.unwrap(key, sealed, Ledger()) == b"the context key, 32 bytes long.."


def test_we_accept_pyspnegos_authenticate_and_it_unseals_our_key(pyspnego):
    client = pyspnego.client(f"{ntlm.DOMAIN}\\user-001", "secret-1", protocol="ntlm")
    negotiate = client.step()
    now = 1000.0
    challenge = ntlm.build_challenge(b"\x07" * 8, now)
    authenticate = client.step(challenge)
    accepted = ntlm.accept_authenticate(
        negotiate, challenge, authenticate, USERS, now=now, ledger=Ledger()
    )
    assert accepted.user == "user-001" and accepted.session_key == client.session_key
    assert client.unwrap(ntlm.wrap(accepted.session_key, b"key", Ledger())).data == b"key"


def test_filetime_round_trips_simulated_time():
    assert ntlm.seconds_of(ntlm.filetime(12.5)) == pytest.approx(12.5)
    assert ntlm.filetime(0.0) == round((EPOCH.timestamp() + 11_644_473_600) * 1e7)
