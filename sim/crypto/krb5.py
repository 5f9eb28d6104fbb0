"""Kerberos crypto (RFC 3961 profiles, RFC 3962 AES, RFC 4757 RC4-HMAC): a thin adapter
over minikerberos' ``encryption`` module (MIT's Python reference code, as impacket carries
it too), so that the rest of wssim names enctypes, not library classes.

Everything here is a pure function of its arguments: the confounder of an encryption is a
parameter (the wire layer draws it), so a message is reproducible when its random parts
are. Knows nothing of messages, ledgers or time.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from enum import IntEnum

from minikerberos.protocol import encryption as _rfc3961

__all__ = [
    "CONFOUNDER_BYTES",
    "Enctype",
    "IntegrityError",
    "KeyUsage",
    "SessionKey",
    "checksum",
    "decrypt",
    "encrypt",
    "enctype_named",
    "random_key",
    "string_to_key",
    "verify_checksum",
]


class Enctype(IntEnum):
    """The encryption types wssim speaks (RFC 3961 numbers)."""

    AES256_CTS_HMAC_SHA1_96 = 18
    AES128_CTS_HMAC_SHA1_96 = 17
    RC4_HMAC = 23


#: the names a scenario gives an enctype (``strategy_options.<name>.enctype``)
ENCTYPE_NAMES = {
    "aes256-cts-hmac-sha1-96": Enctype.AES256_CTS_HMAC_SHA1_96,
    "aes128-cts-hmac-sha1-96": Enctype.AES128_CTS_HMAC_SHA1_96,
    "rc4-hmac": Enctype.RC4_HMAC,
}
#: each enctype's keyed checksum (RFC 3961 section 4: the "required checksum mechanism")
_CHECKSUM_OF = {
    Enctype.AES256_CTS_HMAC_SHA1_96: 16,  # hmac-sha1-96-aes256
    Enctype.AES128_CTS_HMAC_SHA1_96: 15,  # hmac-sha1-96-aes128
    Enctype.RC4_HMAC: -138,  # hmac-md5 (RFC 4757)
}
#: bytes of random confounder each encryption carries (the cipher's block size)
CONFOUNDER_BYTES = {
    Enctype.AES256_CTS_HMAC_SHA1_96: 16,
    Enctype.AES128_CTS_HMAC_SHA1_96: 16,
    Enctype.RC4_HMAC: 8,
}
#: PBKDF2 iterations of AES string-to-key (RFC 3962's default); RC4's is one MD4
AES_ITERATIONS = 4096


class KeyUsage(IntEnum):
    """Key usage numbers (RFC 4120 section 7.5.1, RFC 4121 section 2)."""

    AS_REQ_PA_ENC_TIMESTAMP = 1
    TICKET = 2
    AS_REP_ENC_PART = 3
    TGS_REQ_AUTH_CKSUM = 6
    TGS_REQ_AUTHENTICATOR = 7
    TGS_REP_ENC_PART = 8
    AP_REQ_AUTH_CKSUM = 10
    AP_REQ_AUTHENTICATOR = 11
    AP_REP_ENC_PART = 12
    ACCEPTOR_SEAL = 22
    INITIATOR_SEAL = 24


class IntegrityError(ValueError):
    """A ciphertext or checksum does not verify under the key (wrong key, or altered)."""


@dataclass(frozen=True, slots=True)
class SessionKey:
    """A Kerberos key: its enctype and its bytes."""

    enctype: Enctype
    value: bytes

    def _key(self) -> _rfc3961.Key:
        return _rfc3961.Key(int(self.enctype), self.value)


def enctype_named(name: str) -> Enctype:
    """The enctype of a scenario name; ValueError naming the known ones."""
    try:
        return ENCTYPE_NAMES[name]
    except KeyError:
        raise ValueError(f"unknown enctype {name!r}; known: {', '.join(ENCTYPE_NAMES)}") from None


def key_bytes(enctype: Enctype) -> int:
    """The length of a key of ``enctype``."""
    return 32 if enctype is Enctype.AES256_CTS_HMAC_SHA1_96 else 16


def string_to_key(
    enctype: Enctype, password: str, salt: str, iterations: int = AES_ITERATIONS
) -> SessionKey:
    """A principal's long-term key from its password (RFC 3962: PBKDF2-HMAC-SHA1 over
    ``iterations``, then the DK function; RFC 4757: MD4 of the UTF-16LE password)."""
    if enctype is Enctype.RC4_HMAC:
        key = _rfc3961.string_to_key(int(enctype), password.encode(), salt.encode(), None)
        return SessionKey(enctype, key.contents)
    # minikerberos' own string-to-key runs PBKDF2 in pure Python (some 25 ms a principal,
    # a tenth of a Kerberos run): hashlib's is OpenSSL's; random-to-key and DK are its own.
    profile = _rfc3961._enctype_table[int(enctype)]
    seed = hashlib.pbkdf2_hmac(
        "sha1", password.encode(), salt.encode(), iterations, profile.seedsize
    )
    key = profile.derive(profile.random_to_key(seed), b"kerberos")
    return SessionKey(enctype, key.contents)


def random_key(enctype: Enctype, seed: bytes | None = None) -> SessionKey:
    """A fresh session key (``seed``: its random bytes, else the OS random source)."""
    seed = os.urandom(key_bytes(enctype)) if seed is None else seed
    return SessionKey(enctype, _rfc3961.random_to_key(int(enctype), seed).contents)


def encrypt(key: SessionKey, usage: KeyUsage, plaintext: bytes, confounder: bytes) -> bytes:
    """RFC 3961 encrypt: confounder, plaintext and integrity check, under ``usage``."""
    if len(confounder) != CONFOUNDER_BYTES[key.enctype]:
        raise ValueError(
            f"the confounder of {key.enctype.name} is {CONFOUNDER_BYTES[key.enctype]} bytes"
        )
    return _rfc3961.encrypt(key._key(), int(usage), plaintext, confounder)


def decrypt(key: SessionKey, usage: KeyUsage, ciphertext: bytes) -> bytes:
    """RFC 3961 decrypt; :class:`IntegrityError` when the integrity check fails."""
    try:
        return _rfc3961.decrypt(key._key(), int(usage), ciphertext)
    except _rfc3961.InvalidChecksum:
        raise IntegrityError("ciphertext integrity check failed") from None
    except (ValueError, IndexError):  # shorter than a confounder and a checksum
        raise IntegrityError("ciphertext too short or malformed") from None


def checksum_type(enctype: Enctype) -> int:
    """The keyed checksum type that goes with ``enctype``."""
    return _CHECKSUM_OF[enctype]


def checksum(key: SessionKey, usage: KeyUsage, data: bytes) -> tuple[int, bytes]:
    """The enctype's keyed checksum of ``data``: (cksumtype, checksum)."""
    kind = _CHECKSUM_OF[key.enctype]
    return kind, _rfc3961.make_checksum(kind, key._key(), int(usage), data)


def verify_checksum(key: SessionKey, usage: KeyUsage, data: bytes, kind: int, value: bytes) -> None:
    """Refuse (:class:`IntegrityError`) a checksum that is not ``key``'s own of ``data``."""
    if kind != _CHECKSUM_OF[key.enctype]:
        raise IntegrityError(f"checksum type {kind} does not go with {key.enctype.name}")
    try:
        _rfc3961.verify_checksum(kind, key._key(), int(usage), data, value)
    except _rfc3961.InvalidChecksum:
        raise IntegrityError("checksum does not verify") from None


def channel_binding_hash(application_data: bytes) -> bytes:
    """MD5 of a gss_channel_bindings_struct with no addresses and ``application_data``
    (RFC 4121 section 4.1.1.2), the ``Bnd`` field of the GSS authenticator checksum."""
    zero = (0).to_bytes(4, "little")
    struct = zero * 4 + len(application_data).to_bytes(4, "little") + application_data
    return hashlib.md5(struct).digest()
