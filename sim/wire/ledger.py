"""The operation ledger: every real operation a message costs, in one fixed vocabulary.

The wire layer records into a ``Ledger`` while it builds, signs, encrypts, parses and
verifies; the protocol engines hand each ledger to the simulation engine, whose cost
profile turns ``(op, size)`` entries into simulated CPU time.

``size`` is the number of bytes processed, except: RSA operations and ``tls_handshake``
carry the RSA key size in bits, ``ut_derive`` carries the iteration count, ``p_sha1`` the
number of output bytes, ``replay_lookup`` the network round trips the replay store took
(0: a store in the node's memory, 1: a farm-wide shared store), ``cache_lookup`` and
``rsa_keygen`` (key bits) as noted, ``krb_string_to_key`` the PBKDF2 iterations.
"""

from __future__ import annotations

from enum import Enum


class Op(str, Enum):
    """The ledger vocabulary; values are the names used in cost profiles and outputs."""

    # A member equals its name string, so it must hash like it (Enum's own hash is of the
    # member name, in Python); this also keeps ``record`` off a Python-level hash.
    __hash__ = str.__hash__

    RSA_SIGN = "rsa_sign"
    RSA_VERIFY = "rsa_verify"
    RSA_ENCRYPT = "rsa_encrypt"
    RSA_DECRYPT = "rsa_decrypt"
    RSA_KEYGEN = "rsa_keygen"
    HMAC = "hmac"
    DIGEST = "digest"
    C14N = "c14n"
    P_SHA1 = "p_sha1"
    UT_DERIVE = "ut_derive"
    AES_ENCRYPT = "aes_encrypt"
    AES_DECRYPT = "aes_decrypt"
    AES_GCM_ENCRYPT = "aes_gcm_encrypt"
    AES_GCM_DECRYPT = "aes_gcm_decrypt"
    XML_PARSE = "xml_parse"
    XML_SERIALIZE = "xml_serialize"
    TLS_HANDSHAKE = "tls_handshake"
    TLS_RECORD = "tls_record"
    CACHE_LOOKUP = "cache_lookup"
    #: one look-up-and-insert in a replay store (per message, per nonce)
    REPLAY_LOOKUP = "replay_lookup"
    #: Kerberos (RFC 3961): a password to a key (size: PBKDF2 iterations), an encryption or
    #: decryption with its integrity check (size: bytes), a keyed checksum (size: bytes)
    KRB_STRING_TO_KEY = "krb_string_to_key"
    KRB_ENCRYPT = "krb_encrypt"
    KRB_DECRYPT = "krb_decrypt"
    KRB_CHECKSUM = "krb_checksum"
    #: NTLM (MS-NLMP): an MD4, MD5 or HMAC-MD5 pass, an RC4 pass (size: bytes)
    NTLM_HMAC_MD5 = "ntlm_hmac_md5"
    NTLM_RC4 = "ntlm_rc4"


OPS: frozenset[str] = frozenset(op.value for op in Op)
#: An op (member or name) to its name.
_NAMES: dict[Op | str, str] = {op.value: op.value for op in Op}


class Ledger:
    """An append-only list of ``(op, size)`` entries, drained by whoever charges for them."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list[tuple[str, int]] = []

    def record(self, op: Op | str, size: int = 0) -> None:
        """Add one operation; ``op`` must be in the vocabulary."""
        try:
            name = _NAMES[op]
        except (KeyError, TypeError):
            raise ValueError(f"unknown ledger op {op!r}; known: {', '.join(sorted(OPS))}") from None
        self.entries.append((name, int(size)))

    def extend(self, entries: list[tuple[str, int]]) -> None:
        for op, size in entries:
            self.record(op, size)

    def drain(self) -> tuple[tuple[str, int], ...]:
        """Return every entry recorded since the last drain and forget them."""
        out = tuple(self.entries)
        self.entries.clear()
        return out

    def counts(self) -> dict[str, int]:
        """How many times each op was recorded (not drained)."""
        result: dict[str, int] = {}
        for op, _ in self.entries:
            result[op] = result.get(op, 0) + 1
        return result

    def __len__(self) -> int:
        return len(self.entries)


class NullLedger(Ledger):
    """A ledger that records nothing, for callers that do not account."""

    __slots__ = ()

    def record(self, op: Op | str, size: int = 0) -> None:
        return None
