"""The WS-SecurityPolicy 1.2 algorithm suites (section 6.1) as data.

Each suite fixes the digest, the data encryption, the symmetric and asymmetric key wrap,
the derived-key lengths for encryption and signature, and key size bounds. The signature
algorithms are HMAC-SHA1 (symmetric) and RSA-SHA1 (asymmetric) for the SHA-1 suites, as the
specification states; the ``Sha256`` suites sign with HMAC-SHA256 and RSA-SHA256, as WCF's
and OPC UA's Basic256Sha256 do. A receiver accepts a suite's own algorithms only (one digest,
one symmetric and one asymmetric signature): a Basic256Sha256 receiver refuses SHA-1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sim.wire.ns import DigestAlg, EncryptionAlg, KeyTransportAlg, KeyWrapAlg, SignatureAlg
from sim.wire.rules import KEY_BYTES


@dataclass(frozen=True)
class AlgorithmSuite:
    name: str
    digest: DigestAlg
    encryption: EncryptionAlg
    symmetric_key_wrap: KeyWrapAlg
    asymmetric_key_wrap: KeyTransportAlg
    encryption_derived_key_bits: int
    signature_derived_key_bits: int
    min_symmetric_key_bits: int
    max_symmetric_key_bits: int = 256
    min_asymmetric_key_bits: int = 1024
    max_asymmetric_key_bits: int = 4096
    symmetric_signature: SignatureAlg = SignatureAlg.HMAC_SHA1
    asymmetric_signature: SignatureAlg = SignatureAlg.RSA_SHA1

    @property
    def signature_algorithms(self) -> frozenset[SignatureAlg]:
        """Signature algorithms a receiver under this suite accepts: the suite's own two."""
        return frozenset({self.symmetric_signature, self.asymmetric_signature})

    @property
    def digest_algorithms(self) -> frozenset[DigestAlg]:
        """Digest algorithms a receiver under this suite accepts: the suite's own."""
        return frozenset({self.digest})

    @property
    def encryption_key_bytes(self) -> int:
        return KEY_BYTES[self.encryption]


#: XML Encryption 1.1 AES-GCM in place of a suite's AES-CBC, same key size
_GCM_OF = {
    EncryptionAlg.AES128_CBC: EncryptionAlg.AES128_GCM,
    EncryptionAlg.AES192_CBC: EncryptionAlg.AES192_GCM,
    EncryptionAlg.AES256_CBC: EncryptionAlg.AES256_GCM,
}
DATA_ENCRYPTIONS = ("aes-cbc", "aes-gcm")

_BASES = {
    # name: (encryption, symmetric key wrap, encryption DK bits, signature DK bits, min key bits)
    "Basic256": (EncryptionAlg.AES256_CBC, KeyWrapAlg.AES256_KW, 256, 192, 256),
    "Basic192": (EncryptionAlg.AES192_CBC, KeyWrapAlg.AES192_KW, 192, 192, 192),
    "Basic128": (EncryptionAlg.AES128_CBC, KeyWrapAlg.AES128_KW, 128, 128, 128),
    "TripleDes": (EncryptionAlg.TRIPLEDES_CBC, KeyWrapAlg.TRIPLEDES_KW, 192, 192, 192),
}


def _all_suites() -> dict[str, AlgorithmSuite]:
    suites = {}
    for base, (enc, wrap, enc_dk, sig_dk, min_bits) in _BASES.items():
        for sha, digest, symmetric, asymmetric in (
            ("", DigestAlg.SHA1, SignatureAlg.HMAC_SHA1, SignatureAlg.RSA_SHA1),
            ("Sha256", DigestAlg.SHA256, SignatureAlg.HMAC_SHA256, SignatureAlg.RSA_SHA256),
        ):
            for rsa15, transport in (
                ("", KeyTransportAlg.RSA_OAEP_MGF1P),
                ("Rsa15", KeyTransportAlg.RSA_1_5),
            ):
                name = f"{base}{sha}{rsa15}"
                suites[name] = AlgorithmSuite(
                    name=name,
                    digest=digest,
                    encryption=enc,
                    symmetric_key_wrap=wrap,
                    asymmetric_key_wrap=transport,
                    encryption_derived_key_bits=enc_dk,
                    signature_derived_key_bits=sig_dk,
                    min_symmetric_key_bits=min_bits,
                    symmetric_signature=symmetric,
                    asymmetric_signature=asymmetric,
                )
    return suites


SUITES: dict[str, AlgorithmSuite] = _all_suites()


def with_data_encryption(chosen: AlgorithmSuite, mode: str) -> AlgorithmSuite:
    """``chosen`` encrypting data with ``mode`` (one of DATA_ENCRYPTIONS): ``aes-cbc`` is
    the suite as WS-SecurityPolicy defines it, ``aes-gcm`` its AES-CBC replaced by XML
    Encryption 1.1 AES-GCM of the same key size (a ValueError for a suite without AES)."""
    if mode == "aes-cbc":
        return chosen
    if mode != "aes-gcm":
        raise ValueError(f"data encryption must be one of {', '.join(DATA_ENCRYPTIONS)}")
    gcm = _GCM_OF.get(chosen.encryption)
    if gcm is None:
        raise ValueError(
            f"{chosen.name} encrypts with {chosen.encryption.name}: it has no AES-GCM form"
        )
    return dataclasses.replace(chosen, encryption=gcm)


def suite(name: str) -> AlgorithmSuite:
    """The suite called ``name`` (``Basic256``, ``Basic128Sha256Rsa15``...)."""
    try:
        return SUITES[name]
    except KeyError:
        raise ValueError(
            f"unknown algorithm suite {name!r}; known: {', '.join(sorted(SUITES))}"
        ) from None
