"""The receivers' shared rules, each written once and used by the general readers
(``dsig``, ``sc``, ``xenc``) and the fast reader (``plain_shape``): which algorithm a URI
names and whether the policy allows it, how a number of a token is read, how a received
element is digested and a SignatureValue checked (every step charged to the ledger).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

import sim.crypto as crypto
from sim.errors import FailedCheck, InvalidSecurity, InvalidSecurityToken, UnsupportedAlgorithm
from sim.wire.ledger import Ledger, Op
from sim.wire.ns import DigestAlg, EncryptionAlg, SignatureAlg

DIGEST_NAMES = {DigestAlg.SHA1: "sha1", DigestAlg.SHA256: "sha256"}
RSA_HASHES = {SignatureAlg.RSA_SHA1: hashes.SHA1, SignatureAlg.RSA_SHA256: hashes.SHA256}
HMAC_ALGORITHMS = (SignatureAlg.HMAC_SHA1, SignatureAlg.HMAC_SHA256)
HMAC_NAMES = {SignatureAlg.HMAC_SHA1: "sha1", SignatureAlg.HMAC_SHA256: "sha256"}
BY_URI = {
    enum: {member.value: member for member in enum}
    for enum in (SignatureAlg, DigestAlg, EncryptionAlg)
}
ENCRYPTION_BY_URI: dict[str, EncryptionAlg] = BY_URI[EncryptionAlg]
#: The key length of each data encryption algorithm, in bytes.
KEY_BYTES = {
    EncryptionAlg.AES128_CBC: 16,
    EncryptionAlg.AES192_CBC: 24,
    EncryptionAlg.AES256_CBC: 32,
    EncryptionAlg.TRIPLEDES_CBC: 24,
    EncryptionAlg.AES128_GCM: 16,
    EncryptionAlg.AES192_GCM: 24,
    EncryptionAlg.AES256_GCM: 32,
}
_NUMBER = re.compile(r"[0-9]{1,9}")

A = TypeVar("A", bound=Enum)


def accepted(enum: type[A], uri: str | None, allowed: Iterable[A]) -> A:
    """The algorithm of ``enum`` that ``uri`` names, when the policy ``allowed`` it; an
    unknown or disallowed one is refused (UnsupportedAlgorithm)."""
    value = BY_URI[enum].get(uri)
    if value is None:
        raise UnsupportedAlgorithm(f"algorithm {uri!r} is not supported", check="algorithm")
    if value not in allowed:
        raise UnsupportedAlgorithm(
            f"algorithm {uri} is not allowed by the policy", check="algorithm"
        )
    return value


def token_number(value: str | None, what: str) -> int | None:
    """A non-negative xs:unsignedLong of a token read whole: ASCII digits only (not
    ``int()``'s Unicode digits, signs or underscores), at most nine of them, so that no
    peer's number reaches a computation unbounded; None stays None."""
    if value is None:
        return None
    if not _NUMBER.fullmatch(value):
        raise InvalidSecurityToken(
            f"{what} must be a non-negative integer of at most 9 digits", check="derived-key"
        )
    return int(value)


def element_digest(
    element: etree._Element, digest: DigestAlg, prefixes: Sequence[str], ledger: Ledger | None
) -> bytes:
    """The digest of ``element``'s exclusive canonical form (C14N and digest charged); a
    subtree without a canonical form is refused with a typed fault."""
    try:
        value, size = crypto.c14n_digest_sized(
            element, DIGEST_NAMES[digest], inclusive_prefixes=prefixes
        )
    except crypto.C14NError as exc:
        raise InvalidSecurity(str(exc), check="c14n") from None
    if ledger is not None:
        ledger.record(Op.C14N, size)
        ledger.record(Op.DIGEST, size)
    return value


def _hmac(algorithm: SignatureAlg, key: bytes, data: bytes) -> bytes:
    # HMAC-SHA1 (what derived keys sign with) from the kernel's cached key schedule
    if algorithm is SignatureAlg.HMAC_SHA1:
        return crypto.hmac_sha1(key, data)
    return hmac.digest(key, data, HMAC_NAMES[algorithm])


def sign_value(algorithm: SignatureAlg, key, data: bytes, ledger: Ledger | None) -> bytes:
    """The SignatureValue of ``data`` (HMAC or RSA PKCS#1 v1.5), charged."""
    if algorithm in HMAC_ALGORITHMS:
        if ledger is not None:
            ledger.record(Op.HMAC, len(data))
        return _hmac(algorithm, key, data)
    if ledger is not None:
        ledger.record(Op.RSA_SIGN, key.key_size)
    return key.sign(data, padding.PKCS1v15(), RSA_HASHES[algorithm]())


def verify_value(
    algorithm: SignatureAlg, key, data: bytes, value: bytes, ledger: Ledger | None
) -> None:
    """Check the SignatureValue ``value`` of ``data`` (charged); FailedCheck when it does
    not verify."""
    if algorithm in HMAC_ALGORITHMS:
        if ledger is not None:
            ledger.record(Op.HMAC, len(data))
        expected = _hmac(algorithm, key, data)
        if len(value) != len(expected) or not hmac.compare_digest(value, expected):
            raise FailedCheck("signature value does not verify", check="signature")
        return
    if ledger is not None:
        ledger.record(Op.RSA_VERIFY, key.key_size)
    try:
        key.verify(value, data, padding.PKCS1v15(), RSA_HASHES[algorithm]())
    except InvalidSignature:
        raise FailedCheck("signature value does not verify", check="signature") from None
