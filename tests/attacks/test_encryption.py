"""Encryption attacked from outside, through live sessions.

Each test runs real engines (the in-memory harness), takes the bytes of a real message the
client sends or receives, forges them as an attacker on the wire would and feeds them to a
live receiver engine:

* the decryption oracle (Jager and Somorovsky, "How to break XML Encryption", CCS 2011):
  ciphertext blocks of a request changed as the CBC padding-oracle attack changes them
  (the last byte of the preceding block, the IV, one block alone behind a chosen IV); every
  variant must get the same fault and cost the receiver the same work, and a real
  padding-oracle attacker must learn nothing (it does learn the byte from a receiver that
  tells padding failures apart, which shows the attacker works);
* AES-GCM (``data_encryption = "aes-gcm"``): a changed ciphertext fails authentication,
  with the same one fault;
* directional keys: a response reflected to the service as a request, and a request
  reflected to the client as its reply, are refused; their DerivedKeyTokens are of the
  other direction, refused before anything is decrypted even by a reader that has the
  secret;
* DerivedKeyToken limits: offsets, generations and lengths a peer writes are bounded and
  read whole, refused with a typed fault before any key is derived.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from lxml import etree

from sim.protocol import build_strategy
from sim.protocol import protection as p
from sim.protocol.api import AppDone, Send
from sim.protocol.harness import Harness
from sim.wire import checks, ns, sc, soap, wss, xenc
from sim.wire.ledger import Ledger

CLIENT, PROVIDER = "client-0", "provider-0"
CIPHER_VALUE = ns.qname(ns.XENC, "CipherValue")
ENCRYPTED_DATA = ns.qname(ns.XENC, "EncryptedData")
DKT = ns.qname(ns.WSC, "DerivedKeyToken")
BODY = ns.qname(ns.SOAP12, "Body")
#: every strategy whose client encrypts its requests to the provider, with each encryption
ENCRYPTING = ("sct", "sct-tlsnego", "ut-derived", "hok-symmetric", "x509")
DERIVED = ("sct", "sct-tlsnego", "ut-derived", "hok-symmetric")


class KeyRecorder:
    """The key log (as ``wssim trace`` writes it): only the tests' controls read it."""

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {}

    def log(self, kind: str, key_id: str, key: bytes) -> None:
        self.keys[key_id] = key


@pytest.fixture
def make(key_dir):
    def factory(name, options=None, keylog=None):
        return build_strategy(name, options, key_dir=key_dir, keylog=keylog)

    return factory


# --- the attacker's tools -------------------------------------------------------------------


def _intercepted(make, name, options=None, keylog=None):
    """A live session (one application message done), and the next request the client
    sends, intercepted: the provider has not seen it. (harness, request bytes, time)"""
    harness = Harness(make(name, options, keylog))
    assert harness.request(b"warm-up", 0.0).results[-1].ok
    step = harness.client.request(b"the secret order: buy 1000 shares", now=5.0)
    [send] = [event for event in step.events if isinstance(event, Send)]
    assert send.kind == "app-request"
    return harness, send.data, 5.0


def _body_cipher(data: bytes) -> bytes:
    root = etree.fromstring(data)
    return base64.b64decode(root.find(f"{BODY}/{ENCRYPTED_DATA}").findtext(f".//{CIPHER_VALUE}"))


def _with_body_cipher(data: bytes, cipher: bytes) -> bytes:
    root = etree.fromstring(data)
    root.find(f"{BODY}/{ENCRYPTED_DATA}").find(f".//{CIPHER_VALUE}").text = base64.b64encode(
        cipher
    ).decode()
    return etree.tostring(root)


def _answer(harness, data: bytes, now: float):
    """What the live provider answers, and what it cost it: (fault code, fault text, the
    check that refused, the provider's step ledger)."""
    provider = harness.servers[PROVIDER]
    step = provider.receive(data, sender=CLIENT, now=now)
    [reply] = step.events
    assert isinstance(reply, Send)
    if not reply.fault:
        return ("accepted",)
    fault = soap.read_fault(soap.read_envelope(reply.data))
    return (reply.fault, fault.reason, provider.last_refusal, step.ops)


def _flip(data: bytes, index: int, mask: int) -> bytes:
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


def _cbc_variants(cipher: bytes):
    """(name, ciphertext) as the padding-oracle attack on XML Encryption builds them."""
    iv, blocks = cipher[:16], [cipher[i : i + 16] for i in range(16, len(cipher), 16)]
    last_two = len(cipher) - 32
    for g in range(1, 256, 7):  # the padding byte's mask, through the preceding block
        yield f"padding^{g}", _flip(cipher, last_two + 15, g)
    for g in range(0, 256, 9):  # one block decrypted alone behind a chosen IV (J&S)
        yield f"block1-iv15={g}", iv[:15] + bytes([g]) + blocks[0]
        yield f"block2-iv15={g}", blocks[0][:15] + bytes([g]) + blocks[1]
    for k in range(16):  # the first plaintext block changed through the IV
        yield f"iv{k}^1", _flip(cipher, k, 0x01)
    yield "one-block-less", cipher[:-16]
    yield "middle-byte", _flip(cipher, len(cipher) // 2, 0x40)
    yield "blocks-swapped", iv + blocks[1] + blocks[0] + b"".join(blocks[2:])


def _gcm_variants(cipher: bytes):
    yield "tag", _flip(cipher, -1, 0x01)
    yield "iv", _flip(cipher, 0, 0x80)
    yield "middle-byte", _flip(cipher, len(cipher) // 2, 0x40)
    yield "one-byte-less", cipher[:-1]
    yield "tag-dropped", cipher[:-16] + bytes(16)


class PaddingOracleAttacker:
    """Vaudenay's CBC padding-oracle attack as Jager and Somorovsky run it on XML
    Encryption, after one plaintext byte: the last byte of block ``i``.

    It sends the block alone behind a chosen IV whose last byte is each of the 256 values
    ``g`` (the other IV bytes those of the block before). The decrypted block ends with
    ``D(C_i)[15] ^ g``; XML Encryption's padding is valid when that byte is 1 to 16, for
    exactly 16 values of ``g``. A receiver that answers those differently gives them away,
    and with them ``D(C_i)[15]``: the plaintext byte is ``D(C_i)[15] ^ C_(i-1)[15]``."""

    def __init__(self, oracle) -> None:
        self.oracle = oracle
        self.queries = 0

    def answers(self, previous: bytes, block: bytes) -> dict[int, object]:
        out = {}
        for g in range(256):
            out[g] = self.oracle(previous[:15] + bytes([g]) + block)
            self.queries += 1
        return out

    def last_byte(self, previous: bytes, block: bytes) -> int | None:
        """The plaintext's last byte, or None when the answers tell nothing."""
        answers = self.answers(previous, block)
        groups: dict[object, list[int]] = {}
        for g, answer in answers.items():
            groups.setdefault(answer, []).append(g)
        candidates = [
            x
            for x in range(256)
            if any(set(gs) == {x ^ pad for pad in range(1, 17)} for gs in groups.values())
        ]
        if len(candidates) != 1:
            return None
        return candidates[0] ^ previous[15]


def _leaky_oracle(key: bytes):
    """A receiver that tells a bad padding apart (the behaviour the attack exploits)."""

    def oracle(cipher: bytes) -> str:
        decryptor = Cipher(algorithms.AES(key), modes.CBC(cipher[:16])).decryptor()
        padded = decryptor.update(cipher[16:]) + decryptor.finalize()
        return "bad padding" if not 1 <= padded[-1] <= 16 else "something later"

    return oracle


def _data_key(data: bytes, keys: dict[str, bytes]) -> bytes:
    """The Body's encryption key, from the key log (the test's control only)."""
    root = etree.fromstring(data)
    encrypted = root.find(f"{BODY}/{ENCRYPTED_DATA}")
    reference = encrypted.find(f".//{ns.qname(ns.WSSE, 'Reference')}")
    if reference is not None:
        return keys[reference.get("URI").lstrip("#")]
    data_id = f"#{encrypted.get('Id')}"
    for key in root.iter(xenc.ENCRYPTED_KEY):
        if data_id in [r.get("URI") for r in key.iter(ns.qname(ns.XENC, "DataReference"))]:
            return keys[key.get("Id")]
    raise AssertionError("no key for the Body")


# --- class 4: the decryption oracle ---------------------------------------------------------


@pytest.mark.parametrize("encryption", ["aes-cbc", "aes-gcm"])
@pytest.mark.parametrize("name", ENCRYPTING)
def test_every_changed_ciphertext_gets_one_fault_and_costs_the_same(make, name, encryption):
    """Padding failures, plaintext that is not well-formed, a wrong digest of what decrypted,
    a failed GCM tag: the live provider answers every variant with the same fault (code,
    text, check) and the same step ledger — nothing that tells them apart, not even the
    simulated time the ledger becomes."""
    options = {"data_encryption": encryption} if encryption == "aes-gcm" else None
    harness, data, now = _intercepted(make, name, options)
    cipher = _body_cipher(data)
    variants = _gcm_variants(cipher) if encryption == "aes-gcm" else _cbc_variants(cipher)
    by_size: dict[int, set] = {}
    for _, forged in variants:
        answer = _answer(harness, _with_body_cipher(data, forged), now)
        by_size.setdefault(len(forged), set()).add(answer)
    # the same answer for every variant of a size; only the size, which the attacker chose,
    # changes the work (its message is longer or shorter), never what failed
    assert all(len(answers) == 1 for answers in by_size.values()), by_size
    assert len(by_size[len(cipher)]) == 1 and len(by_size) >= 2
    faults = {answer[:3] for answers in by_size.values() for answer in answers}
    assert faults == {("wsse:FailedCheck", xenc.DECRYPTION_FAILED, "decryption")}
    decrypt = "aes_gcm_decrypt" if encryption == "aes-gcm" else "aes_decrypt"
    for (answer,) in by_size.values():
        assert decrypt in {op for op, _ in answer[3]}  # refused after decryption started
    # and the message itself was sound: the provider accepts it untouched
    assert _answer(harness, data, now) == ("accepted",)


@pytest.mark.parametrize("name", ENCRYPTING)
def test_a_padding_oracle_attacker_learns_nothing(make, name):
    """A real padding-oracle attacker, after the last byte of the request's first
    plaintext block: against the live provider all 256 answers are the same and it learns
    nothing. Against a receiver that tells bad padding apart, the same attacker finds the
    byte in those 256 queries."""
    keylog = KeyRecorder()
    harness, data, now = _intercepted(make, name, keylog=keylog)
    cipher = _body_cipher(data)
    iv, first = cipher[:16], cipher[16:32]

    def live(forged: bytes):
        return _answer(harness, _with_body_cipher(data, forged), now)

    attacker = PaddingOracleAttacker(live)
    assert len(set(attacker.answers(iv, first).values())) == 1
    assert attacker.last_byte(iv, first) is None
    # the control: the same attack on a leaky receiver recovers the byte
    key = _data_key(data, keylog.keys)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    plaintext = decryptor.update(cipher[16:]) + decryptor.finalize()
    leaky = PaddingOracleAttacker(_leaky_oracle(key))
    assert leaky.last_byte(iv, first) == plaintext[15]
    assert leaky.queries == 256


def test_aes_gcm_sessions_send_and_charge_gcm(make):
    """With data_encryption = "aes-gcm" the messages carry the XML Encryption 1.1 URI and
    the ledgers charge GCM; the provider accepts no CBC then (the one algorithm its
    configuration names)."""
    harness = Harness(make("sct", {"data_encryption": "aes-gcm"}))
    outcome = harness.request(b"payload", 0.0)
    assert outcome.results[-1].ok
    app = [d for d in outcome.deliveries if d.send.kind == "app-request"][-1]
    assert ns.EncryptionAlg.AES256_GCM.value.encode() in app.send.data
    ops = {op for _, steps in outcome.ops.items() for _, entries in steps for op, _ in entries}
    assert {"aes_gcm_encrypt", "aes_gcm_decrypt"} <= ops and not ops & {"aes_encrypt"}


@pytest.mark.parametrize(("encryption", "claimed"), [("aes-gcm", "CBC"), ("aes-cbc", "GCM")])
def test_a_receiver_accepts_only_the_data_encryption_it_is_configured_with(
    make, encryption, claimed
):
    """An attacker downgrading a GCM message to CBC (or the reverse) by its
    EncryptionMethod: refused by name, before anything is decrypted."""
    harness, data, now = _intercepted(make, "sct", {"data_encryption": encryption})
    other = getattr(ns.EncryptionAlg, f"AES256_{claimed}").value
    root = etree.fromstring(data)
    root.find(f"{BODY}/{ENCRYPTED_DATA}/{ns.qname(ns.XENC, 'EncryptionMethod')}").set(
        "Algorithm", other
    )
    code, _, check, ops = _answer(harness, etree.tostring(root), now)
    assert (code, check) == ("wsse:UnsupportedAlgorithm", "algorithm")
    assert not {op for op, _ in ops} & {"aes_decrypt", "aes_gcm_decrypt"}


# --- class 3: reflection, and keys of one direction -----------------------------------------


def _reader_with_the_secret(keys: dict[str, bytes]):
    """``secret_for`` of a reader holding every secret of the session (the key log)."""

    def secret_for(reference: wss.TokenReference) -> bytes:
        name = reference.uri or reference.key_identifier or ""
        name = name.lstrip("#") if isinstance(name, str) else name.decode()
        return keys[name.rsplit("?ID=", 1)[-1]]  # an assertion named by its URI: by its ID

    return secret_for


def _read(data: bytes, keys, direction: sc.Direction, now: float):
    return p.unprotect_symmetric(
        soap.read_envelope(data),
        secret_for=_reader_with_the_secret(keys),
        now=now,
        ledger=Ledger(),
        replay=checks.ReplayCache(),
        direction=direction,
    )


SECURITY = ns.qname(ns.WSSE, "Security")
#: tokens a request carries that an attacker copies into the reflected response
TOKENS = {
    ns.qname(ns.WSSE, "UsernameToken"),
    ns.qname(ns.SAML1, "Assertion"),
    ns.qname(ns.SAML2, "Assertion"),
}


def _with_tokens_of(response: bytes, request: bytes) -> bytes:
    """The response with the request's tokens (UsernameToken, assertion) copied into its
    Security header, after the Timestamp: the keys of the response derive from them."""
    root, sent = etree.fromstring(response), etree.fromstring(request)
    security = next(root.iter(SECURITY))
    for token in [el for el in next(sent.iter(SECURITY)) if el.tag in TOKENS]:
        security.insert(1, token)
    return etree.tostring(root)


@pytest.mark.parametrize("name", DERIVED)
def test_a_response_reflected_to_the_provider_as_a_request_is_refused(make, name):
    keylog = KeyRecorder()
    harness = Harness(make(name, keylog=keylog))
    assert harness.request(b"warm-up", 0.0).results[-1].ok
    outcome = harness.request(b"payload", 5.0)
    [request] = [d.send.data for d in outcome.deliveries if d.send.kind == "app-request"]
    [response] = [d.send.data for d in outcome.deliveries if d.send.kind == "app-response"]
    for reflected in (response, _with_tokens_of(response, request)):
        assert _answer(harness, reflected, 6.0)[0] != "accepted"
    # its keys are the service-to-client ones: a reader of requests that has the secret
    # refuses them, before decrypting anything
    ledger_free = _read(response, keylog.keys, sc.Direction.REPLY, 6.0)  # as the client reads
    assert p.get_payload(ledger_free.envelope)
    with pytest.raises(p.InvalidSecurityToken) as raised:
        _read(response, keylog.keys, sc.Direction.REQUEST, 6.0)
    assert raised.value.check == "key-direction"


@pytest.mark.parametrize("name", DERIVED)
def test_a_request_reflected_to_the_client_as_its_reply_is_refused(make, name):
    keylog = KeyRecorder()
    state = {"request": None}

    def reflect(delivery):
        if delivery.sender == CLIENT and delivery.send.kind == "app-request":
            state["request"] = delivery.send.data
        if delivery.receiver == CLIENT and delivery.send.kind == "app-response":
            return state["request"]
        return None

    harness = Harness(make(name, keylog=keylog), tamper=reflect)
    outcome = harness.request(b"payload", 0.0)
    [result] = [r for r in outcome.results if isinstance(r, AppDone)]
    assert not result.ok and harness.client.last_refusal is not None
    request = state["request"]
    assert p.get_payload(_read(request, keylog.keys, sc.Direction.REQUEST, 1.0).envelope)
    with pytest.raises(p.InvalidSecurityToken) as raised:
        _read(request, keylog.keys, sc.Direction.REPLY, 1.0)
    assert raised.value.check == "key-direction"


# --- class 8: DerivedKeyToken limits --------------------------------------------------------


def _with_dkt_field(data: bytes, local: str, value: str, replace: str = "Offset") -> bytes:
    """The request with both DerivedKeyTokens' ``replace`` child renamed ``local`` and set
    to ``value`` (a DerivedKeyToken is not signed: anyone on the wire can do this)."""
    root = etree.fromstring(data)
    for token in root.iter(DKT):
        field = token.find(ns.qname(ns.WSC, replace))
        field.tag = ns.qname(ns.WSC, local)
        field.text = value
    return etree.tostring(root)


@pytest.mark.parametrize(
    ("local", "value", "replace"),
    [
        ("Offset", "999999999", "Offset"),
        ("Offset", "1048000", "Offset"),  # within P_SHA-1's 1 MiB: a MiB of HMAC per key
        pytest.param("Offset", "1" * 5000, "Offset", id="Offset-5000-digits"),
        pytest.param("Offset", "\u00b2", "Offset", id="Offset-superscript"),  # isdigit(): yes
        pytest.param("Offset", "\uff11\uff12", "Offset", id="Offset-fullwidth"),
        ("Generation", "100000000", "Offset"),
        ("Length", "1000000", "Length"),
        ("Length", "0", "Length"),
    ],
)
@pytest.mark.parametrize("name", ["sct", "ut-derived"])
def test_derived_key_token_numbers_are_bounded_before_any_key_is_derived(
    make, name, local, value, replace
):
    harness, data, now = _intercepted(make, name)
    answer = _answer(harness, _with_dkt_field(data, local, value, replace), now)
    code, _, check, ops = answer
    assert (code, check) == ("wsse:InvalidSecurityToken", "derived-key")
    assert "p_sha1" not in {op for op, _ in ops}
