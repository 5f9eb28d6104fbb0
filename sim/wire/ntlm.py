"""NTLMv2 (MS-NLMP) as SPNEGO's fallback mechanism carries it: the NEGOTIATE, CHALLENGE and
AUTHENTICATE messages, the NTLMv2 response (NTOWFv2, NTProofStr, the session base key),
the key exchange (the exported session key under RC4), the MIC over the three messages,
and the server-to-client GSS_WrapEx seal (RC4 with an HMAC-MD5 checksum) that carries the
security context's key back.

Written over hashlib (MD5, HMAC-MD5), pycryptodomex' MD4 (OpenSSL 3 has retired it) and
cryptography's RC4, so that every random part comes from :func:`fresh_bytes` and every
time from the simulated clock: a seed fixes every byte. Builders and readers record their
work in the ledger given (``ntlm_hmac_md5`` per MD4/MD5/HMAC-MD5 pass, ``ntlm_rc4`` per
RC4 pass, sized in bytes). Readers refuse anything malformed, not answering the
challenge, stale, or whose MIC does not verify, with a typed fault."""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from Cryptodome.Hash import MD4
from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher

from sim.errors import FailedAuthentication, FailedCheck, InvalidSecurityToken, MessageExpired
from sim.wire.ledger import Ledger, Op
from sim.wire.xmlutil import EPOCH, fresh_bytes

SIGNATURE = b"NTLMSSP\0"
NEGOTIATE, CHALLENGE, AUTHENTICATE = 1, 2, 3
#: NegotiateFlags (MS-NLMP 2.2.2.5)
UNICODE = 0x00000001
REQUEST_TARGET = 0x00000004
SIGN = 0x00000010
SEAL = 0x00000020
NTLM = 0x00000200
ALWAYS_SIGN = 0x00008000
TARGET_TYPE_DOMAIN = 0x00010000
EXTENDED_SESSION_SECURITY = 0x00080000
TARGET_INFO = 0x00800000
VERSION = 0x02000000
KEY_128 = 0x20000000
KEY_EXCH = 0x40000000
KEY_56 = 0x80000000
#: what the client asks for and the acceptor requires: NTLMv2 with extended session
#: security, 128-bit keys exchanged under RC4, signing and sealing
FLAGS = (
    UNICODE
    | REQUEST_TARGET
    | SIGN
    | SEAL
    | NTLM
    | ALWAYS_SIGN
    | EXTENDED_SESSION_SECURITY
    | VERSION
    | KEY_128
    | KEY_EXCH
    | KEY_56
)
#: AV pair ids (MS-NLMP 2.2.2.1)
AV_EOL, AV_NB_COMPUTER, AV_NB_DOMAIN, AV_DNS_COMPUTER, AV_DNS_DOMAIN = 0, 1, 2, 3, 4
AV_FLAGS, AV_TIMESTAMP = 6, 7
#: MsvAvFlags: the AUTHENTICATE message carries a MIC
AV_FLAG_MIC = 0x2
#: Windows 10 (10.0.19041), NTLM revision 15
PRODUCT_VERSION = bytes([10, 0]) + struct.pack("<H", 19041) + b"\0\0\0\x0f"
#: the realm's NetBIOS domain and the provider's host name (its AV pairs)
DOMAIN = "WSSIM"
SERVER = "PROVIDER"
#: tolerated difference between the NTLMv2 blob's time and the acceptor's clock
SKEW = 300.0
_FILETIME_EPOCH = 11_644_473_600  # seconds from 1601-01-01 to 1970-01-01
_EPOCH_UNIX = EPOCH.timestamp()
_S2C_SEAL = b"session key to server-to-client sealing key magic constant\0"
_S2C_SIGN = b"session key to server-to-client signing key magic constant\0"


def _fault(what: str) -> InvalidSecurityToken:
    return InvalidSecurityToken(f"malformed NTLM {what}", check="ntlm")


def utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def hmac_md5(key: bytes, data: bytes, ledger: Ledger | None = None) -> bytes:
    if ledger is not None:
        ledger.record(Op.NTLM_HMAC_MD5, len(data))
    return hmac.new(key, data, hashlib.md5).digest()


def rc4(key: bytes, data: bytes, ledger: Ledger | None = None) -> bytes:
    """RC4K: one RC4 pass of ``data`` from a new key schedule."""
    if ledger is not None:
        ledger.record(Op.NTLM_RC4, len(data))
    return Cipher(ARC4(key), mode=None).encryptor().update(data)


def nt_hash(password: str, ledger: Ledger | None = None) -> bytes:
    """NTOWFv1: the MD4 of the UTF-16LE password (a KDC or DC keeps it in its database)."""
    data = utf16(password)
    if ledger is not None:
        ledger.record(Op.NTLM_HMAC_MD5, len(data))
    return MD4.new(data).digest()


def ntowfv2(user: str, password_hash: bytes, domain: str, ledger: Ledger | None = None) -> bytes:
    """NTOWFv2: HMAC-MD5 keyed by the NT hash over the upper-cased user and the domain."""
    return hmac_md5(password_hash, utf16(user.upper() + domain), ledger)


def filetime(now: float) -> int:
    """Simulated time ``now`` as a FILETIME (100 ns since 1601)."""
    return round((_EPOCH_UNIX + _FILETIME_EPOCH + now) * 10_000_000)


def seconds_of(value: int) -> float:
    """Simulated seconds of a FILETIME."""
    return value / 10_000_000 - _FILETIME_EPOCH - _EPOCH_UNIX


def pack_av(pairs: list[tuple[int, bytes]]) -> bytes:
    """AV pairs, MsvAvEOL appended."""
    out = b"".join(struct.pack("<HH", av, len(value)) + value for av, value in pairs)
    return out + struct.pack("<HH", AV_EOL, 0)


def unpack_av(data: bytes) -> list[tuple[int, bytes]]:
    """The AV pairs of ``data`` up to MsvAvEOL (a list ending elsewhere is malformed)."""
    pairs, offset = [], 0
    while offset + 4 <= len(data):
        av, length = struct.unpack_from("<HH", data, offset)
        offset += 4
        if av == AV_EOL:
            return pairs
        if offset + length > len(data) or any(av == seen for seen, _ in pairs):
            break
        pairs.append((av, bytes(data[offset : offset + length])))
        offset += length
    raise _fault("AV pair list")


def _fields(payload: bytes, offset: int) -> bytes:
    return struct.pack("<HHI", len(payload), len(payload), offset)


def _read_field(data: bytes, at: int) -> bytes:
    length, _, offset = struct.unpack_from("<HHI", data, at)
    if offset + length > len(data):
        raise _fault("message field")
    return bytes(data[offset : offset + length])


def _header(data: bytes, kind: int, minimum: int, what: str) -> None:
    if len(data) < minimum or data[:8] != SIGNATURE or struct.unpack_from("<I", data, 8)[0] != kind:
        raise _fault(what)


# --- NEGOTIATE -------------------------------------------------------------------------------


def build_negotiate() -> bytes:
    """The NEGOTIATE message: the flags wanted, no domain or workstation, the version."""
    return (
        SIGNATURE
        + struct.pack("<II", NEGOTIATE, FLAGS)
        + _fields(b"", 40)
        + _fields(b"", 40)
        + PRODUCT_VERSION
    )


def read_negotiate(data: bytes) -> int:
    """The flags of a NEGOTIATE message; it must ask for everything :data:`FLAGS` holds."""
    try:
        _header(data, NEGOTIATE, 32, "NEGOTIATE")
        flags = struct.unpack_from("<I", data, 12)[0]
    except struct.error:
        raise _fault("NEGOTIATE") from None
    if flags & FLAGS != FLAGS:
        raise FailedCheck(
            "the NTLM NEGOTIATE does not ask for NTLMv2 session security", check="ntlm"
        )
    return flags


# --- CHALLENGE -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Challenge:
    flags: int
    server_challenge: bytes
    target_info: bytes
    #: the server's MsvAvTimestamp (a FILETIME)
    timestamp: int


def build_challenge(server_challenge: bytes, now: float) -> bytes:
    """The CHALLENGE message: the 8-byte ``server_challenge``, the domain as target name,
    the target info with the server's names and its time (MsvAvTimestamp)."""
    name = utf16(DOMAIN)
    info = pack_av(
        [
            (AV_NB_DOMAIN, utf16(DOMAIN)),
            (AV_NB_COMPUTER, utf16(SERVER)),
            (AV_TIMESTAMP, struct.pack("<Q", filetime(now))),
        ]
    )
    flags = FLAGS | TARGET_TYPE_DOMAIN | TARGET_INFO
    head = 56
    return (
        SIGNATURE
        + struct.pack("<I", CHALLENGE)
        + _fields(name, head)
        + struct.pack("<I", flags)
        + server_challenge
        + b"\0" * 8
        + _fields(info, head + len(name))
        + PRODUCT_VERSION
        + name
        + info
    )


def read_challenge(data: bytes) -> Challenge:
    """A CHALLENGE message, which must carry target info with a timestamp."""
    try:
        _header(data, CHALLENGE, 48, "CHALLENGE")
        flags = struct.unpack_from("<I", data, 20)[0]
        info = _read_field(data, 40)
        pairs = dict(unpack_av(info))
        stamp = pairs.get(AV_TIMESTAMP)
        if stamp is None or len(stamp) != 8:
            raise _fault("CHALLENGE (no MsvAvTimestamp)")
        return Challenge(flags, bytes(data[24:32]), info, struct.unpack("<Q", stamp)[0])
    except struct.error:
        raise _fault("CHALLENGE") from None


# --- AUTHENTICATE ----------------------------------------------------------------------------

_AUTH_HEAD = 88
_MIC_AT = 72


def responses(
    ntowf: bytes,
    server_challenge: bytes,
    client_challenge: bytes,
    timestamp: int,
    target_info: bytes,
    ledger: Ledger | None = None,
) -> tuple[bytes, bytes, bytes]:
    """The NTLMv2 NtChallengeResponse, LmChallengeResponse and session base key (MS-NLMP
    3.3.2; ``target_info`` the AV pairs as the client sends them, MsvAvEOL included)."""
    temp = (
        b"\x01\x01"
        + b"\0" * 6
        + struct.pack("<Q", timestamp)
        + client_challenge
        + b"\0" * 4
        + target_info
        + b"\0" * 4
    )
    proof = hmac_md5(ntowf, server_challenge + temp, ledger)
    lm = hmac_md5(ntowf, server_challenge + client_challenge, ledger) + client_challenge
    return proof + temp, lm, hmac_md5(ntowf, proof, ledger)


def _mic(key: bytes, negotiate: bytes, challenge: bytes, authenticate: bytes, ledger) -> bytes:
    zeroed = authenticate[:_MIC_AT] + b"\0" * 16 + authenticate[_MIC_AT + 16 :]
    return hmac_md5(key, negotiate + challenge + zeroed, ledger)


def build_authenticate(
    negotiate: bytes,
    challenge: bytes,
    user: str,
    password: str,
    *,
    ledger: Ledger,
    workstation: str = "CLIENT",
) -> tuple[bytes, bytes]:
    """The AUTHENTICATE message answering ``challenge`` (after our ``negotiate``), and the
    exported session key: an NTLMv2 response over the server's target info (its timestamp
    the blob's time, MsvAvFlags announcing the MIC), a random session key exchanged under
    the session base key, and the MIC over the three messages."""
    offer = read_challenge(challenge)
    ntowf = ntowfv2(user, nt_hash(password, ledger), DOMAIN, ledger)
    pairs = [pair for pair in unpack_av(offer.target_info) if pair[0] != AV_FLAGS]
    info = pack_av([*pairs, (AV_FLAGS, struct.pack("<I", AV_FLAG_MIC))])
    nt, _, base = responses(
        ntowf, offer.server_challenge, fresh_bytes(8), offer.timestamp, info, ledger
    )
    lm = b"\0" * 24  # with MsvAvTimestamp, the client sends no LMv2 response
    exported = fresh_bytes(16)
    encrypted = rc4(base, exported, ledger)
    parts = {
        "domain": utf16(DOMAIN),
        "user": utf16(user),
        "host": utf16(workstation),
        "lm": lm,
        "nt": nt,
        "key": encrypted,
    }
    # the payload in the order Windows writes it; the fields in the header's order
    payload, offsets = b"", {}
    for name, part in parts.items():
        offsets[name] = _AUTH_HEAD + len(payload)
        payload += part
    head = SIGNATURE + struct.pack("<I", AUTHENTICATE)
    for name in ("lm", "nt", "domain", "user", "host", "key"):
        head += _fields(parts[name], offsets[name])
    head += struct.pack("<I", offer.flags & FLAGS) + PRODUCT_VERSION
    message = head + b"\0" * 16 + payload
    mic = _mic(exported, negotiate, challenge, message, ledger)
    return message[:_MIC_AT] + mic + message[_MIC_AT + 16 :], exported


@dataclass(frozen=True, slots=True)
class Authenticated:
    """What an accepted AUTHENTICATE proves: the user and the exported session key."""

    user: str
    session_key: bytes


def accept_authenticate(
    negotiate: bytes,
    challenge: bytes,
    authenticate: bytes,
    passwords: Mapping[str, str],
    *,
    now: float,
    ledger: Ledger,
) -> Authenticated:
    """Accept an AUTHENTICATE answering our ``challenge`` (after the client's
    ``negotiate``): a known user of our domain, an NTLMv2 response to this challenge whose
    blob carries our MsvAvTimestamp and a time within :data:`SKEW`, the session security
    flags, and a MIC over the three messages under the exchanged key."""
    offer = read_challenge(challenge)
    try:
        _header(authenticate, AUTHENTICATE, _AUTH_HEAD, "AUTHENTICATE")
        nt = _read_field(authenticate, 20)
        domain = _read_field(authenticate, 28).decode("utf-16-le")
        user = _read_field(authenticate, 36).decode("utf-16-le")
        encrypted = _read_field(authenticate, 52)
        flags = struct.unpack_from("<I", authenticate, 60)[0]
    except (struct.error, UnicodeDecodeError):
        raise _fault("AUTHENTICATE") from None
    if flags & FLAGS != FLAGS:
        raise FailedCheck("the NTLM session security flags are missing", check="ntlm")
    if len(nt) < 48 or nt[16:18] != b"\x01\x01" or len(encrypted) != 16:
        raise _fault("NTLMv2 response")
    password = passwords.get(user)
    if password is None or domain.upper() != DOMAIN:
        raise FailedAuthentication("unknown NTLM user", check="ntlm")
    ledger.record(Op.CACHE_LOOKUP, 0)  # the account database
    ntowf = ntowfv2(user, nt_hash(password), DOMAIN, ledger)
    proof, temp = nt[:16], nt[16:]
    expected = hmac_md5(ntowf, offer.server_challenge + temp, ledger)
    if not hmac.compare_digest(proof, expected):
        raise FailedAuthentication(
            "the NTLMv2 response does not answer the challenge", check="ntlm"
        )
    pairs = dict(unpack_av(temp[28:]))
    if pairs.get(AV_TIMESTAMP) != struct.pack("<Q", offer.timestamp):
        raise FailedCheck("the NTLMv2 response is for another challenge", check="ntlm")
    if abs(seconds_of(struct.unpack_from("<Q", temp, 8)[0]) - now) > SKEW:
        raise MessageExpired("the NTLMv2 response is outside the clock skew", check="freshness")
    av_flags = pairs.get(AV_FLAGS, b"\0\0\0\0")
    if len(av_flags) != 4 or not struct.unpack("<I", av_flags)[0] & AV_FLAG_MIC:
        raise FailedCheck("the NTLM AUTHENTICATE carries no MIC", check="ntlm-mic")
    exported = rc4(hmac_md5(ntowf, proof, ledger), encrypted, ledger)
    mic = _mic(exported, negotiate, challenge, authenticate, ledger)
    if not hmac.compare_digest(mic, authenticate[_MIC_AT : _MIC_AT + 16]):
        raise FailedCheck("the NTLM MIC does not verify", check="ntlm-mic")
    return Authenticated(user, exported)


# --- GSS_WrapEx, server to client ------------------------------------------------------------


def _server_keys(session_key: bytes, ledger: Ledger | None) -> tuple[bytes, bytes]:
    if ledger is not None:
        ledger.record(Op.NTLM_HMAC_MD5, len(session_key) + len(_S2C_SEAL))
        ledger.record(Op.NTLM_HMAC_MD5, len(session_key) + len(_S2C_SIGN))
    return (
        hashlib.md5(session_key + _S2C_SEAL).digest(),
        hashlib.md5(session_key + _S2C_SIGN).digest(),
    )


def wrap(session_key: bytes, data: bytes, ledger: Ledger, seq: int = 0) -> bytes:
    """The acceptor's sealed message ``seq`` (the first of its RC4 stream): the 16-byte
    signature (version, RC4-sealed HMAC-MD5 checksum, sequence number), then ``data``
    under RC4 (MS-NLMP 3.4.3, extended session security with key exchange)."""
    seal_key, sign_key = _server_keys(session_key, ledger)
    number = struct.pack("<I", seq)
    ledger.record(Op.NTLM_RC4, len(data) + 8)
    stream = Cipher(ARC4(seal_key), mode=None).encryptor()
    sealed = stream.update(data)
    checksum = stream.update(hmac_md5(sign_key, number + data, ledger)[:8])
    return b"\x01\0\0\0" + checksum + number + sealed


def unwrap(session_key: bytes, token: bytes, ledger: Ledger, seq: int = 0) -> bytes:
    """The data of the acceptor's sealed message ``seq``, or a typed fault."""
    if len(token) < 16 or token[:4] != b"\x01\0\0\0" or token[12:16] != struct.pack("<I", seq):
        raise _fault("sealed message")
    seal_key, sign_key = _server_keys(session_key, ledger)
    ledger.record(Op.NTLM_RC4, len(token) - 8)
    stream = Cipher(ARC4(seal_key), mode=None).decryptor()
    data = stream.update(token[16:])
    checksum = stream.update(hmac_md5(sign_key, token[12:16] + data, ledger)[:8])
    if not hmac.compare_digest(checksum, token[4:12]):
        raise FailedCheck("the NTLM sealed message does not verify", check="ntlm")
    return data
