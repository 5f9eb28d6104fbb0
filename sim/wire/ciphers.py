"""The ciphers of XML Encryption: AES-CBC, AES-GCM and 3DES over bytes (IV, ciphertext and
tag laid out as XML Encryption lays them), RSA-OAEP's padding, what a receiver accepts
(:class:`EncryptionPolicy`), and the one fault of a refused decryption.

``sim.wire.xenc`` writes EncryptedData and EncryptedKey with them, ``sim.wire.decryption``
reads them back.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import sim.crypto as crypto
from sim.errors import FailedCheck, InvalidSecurity
from sim.wire import ns, rules
from sim.wire.ledger import Ledger, Op
from sim.wire.ns import EncryptionAlg, KeyTransportAlg
from sim.wire.xmlutil import fresh_bytes

KEY_BYTES = rules.KEY_BYTES
GCM = (EncryptionAlg.AES128_GCM, EncryptionAlg.AES192_GCM, EncryptionAlg.AES256_GCM)
#: XML Encryption 1.1 section 5.2.4: a 96-bit IV before the ciphertext, a 128-bit tag after
GCM_IV_BYTES, GCM_TAG_BYTES = 12, 16
#: The digests of rsa-oaep-mgf1p's ds:DigestMethod (XML Encryption section 5.4.2; SHA-1
#: when absent); the mask generation function of rsa-oaep-mgf1p is MGF1 with SHA-1.
OAEP_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    ns.DigestAlg.SHA1.value: hashes.SHA1,
    ns.DigestAlg.SHA256.value: hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmlenc#sha512": hashes.SHA512,
}
#: The one fault of a refused decryption (see ``sim.wire.decryption.DecryptionStage``).
DECRYPTION_FAILED = "the encrypted data does not decrypt to content the signature covers"


@dataclass(frozen=True)
class EncryptionPolicy:
    """Algorithms a receiver accepts for data encryption and key transport."""

    data_algorithms: frozenset[EncryptionAlg] = frozenset(KEY_BYTES)
    key_transport: frozenset[KeyTransportAlg] = frozenset({KeyTransportAlg.RSA_OAEP_MGF1P})
    oaep_digests: frozenset[str] = frozenset(OAEP_DIGESTS)
    min_rsa_bits: int = 1024


def decryption_fault() -> FailedCheck:
    """The fault of every failure after decryption starts: one type, text and check."""
    return FailedCheck(DECRYPTION_FAILED, check="decryption")


def oaep(digest: str = ns.DigestAlg.SHA1.value, label: bytes | None = None) -> padding.OAEP:
    """rsa-oaep-mgf1p's padding with ``digest`` (a URI of :data:`OAEP_DIGESTS`)."""
    return padding.OAEP(
        mgf=padding.MGF1(hashes.SHA1()), algorithm=OAEP_DIGESTS[digest](), label=label or None
    )


def encrypt_bytes(
    algorithm: EncryptionAlg, key: bytes, data: bytes, ledger: Ledger | None
) -> bytes:
    """IV || ciphertext (|| tag for GCM), as XML Encryption lays them out."""
    _check_key(algorithm, key)
    if algorithm in GCM:
        if ledger is not None:
            ledger.record(Op.AES_GCM_ENCRYPT, len(data))
        iv = fresh_bytes(GCM_IV_BYTES)
        return iv + AESGCM(key).encrypt(iv, data, None)
    if ledger is not None:
        ledger.record(Op.AES_ENCRYPT, len(data))
    block = _block(algorithm)
    pad = block - len(data) % block
    padded = data + fresh_bytes(pad - 1) + bytes([pad])
    iv = fresh_bytes(block)
    if block == 16:
        return iv + crypto.aes_cbc_encrypt(key, iv, padded)
    encryptor = Cipher(_triple_des(key), modes.CBC(iv)).encryptor()
    return iv + encryptor.update(padded) + encryptor.finalize()


def check_cipher_length(algorithm: EncryptionAlg, cipher: bytes) -> None:
    """Refuse a CipherValue too short, or not of whole blocks, for ``algorithm`` (public
    facts about the ciphertext, checked before anything is decrypted)."""
    if algorithm in GCM:
        if len(cipher) < GCM_IV_BYTES + GCM_TAG_BYTES:
            raise InvalidSecurity("GCM ciphertext too short", check="cipher-length")
        return
    block = _block(algorithm)
    if len(cipher) < 2 * block or len(cipher) % block:
        raise InvalidSecurity("CBC ciphertext has a wrong length", check="cipher-length")


def plaintext_bound(algorithm: EncryptionAlg, cipher: bytes) -> int:
    """The length of the (padded) plaintext a ciphertext holds: all that its size tells."""
    overhead = GCM_IV_BYTES + GCM_TAG_BYTES if algorithm in GCM else _block(algorithm)
    return max(len(cipher) - overhead, 0)


def _block(algorithm: EncryptionAlg) -> int:
    return 8 if algorithm is EncryptionAlg.TRIPLEDES_CBC else 16


def decrypt_checked(
    algorithm: EncryptionAlg, key: bytes, data: bytes, ledger: Ledger | None
) -> tuple[bytes, bool]:
    """(plaintext, valid): the padding or tag is checked without raising, and a CBC
    plaintext with bad padding comes back whole (the same length to parse as a good one)."""
    _check_key(algorithm, key)
    check_cipher_length(algorithm, data)
    if algorithm in GCM:
        if ledger is not None:
            ledger.record(Op.AES_GCM_DECRYPT, len(data))
        try:
            return AESGCM(key).decrypt(data[:GCM_IV_BYTES], data[GCM_IV_BYTES:], None), True
        except InvalidTag:
            return b"", False
    if ledger is not None:
        ledger.record(Op.AES_DECRYPT, len(data))
    block = _block(algorithm)
    if block == 16:
        padded = crypto.aes_cbc_decrypt(key, data[:block], data[block:])
    else:
        decryptor = Cipher(_triple_des(key), modes.CBC(data[:block])).decryptor()
        padded = decryptor.update(data[block:]) + decryptor.finalize()
    pad = padded[-1]
    if 1 <= pad <= block:
        return padded[:-pad], True
    return padded, False


def decrypt_bytes(
    algorithm: EncryptionAlg, key: bytes, data: bytes, ledger: Ledger | None
) -> bytes:
    """Inverse of :func:`encrypt_bytes`; a wrong key, tag or padding is the one
    :func:`decryption_fault`."""
    plaintext, valid = decrypt_checked(algorithm, key, data, ledger)
    if not valid:
        raise decryption_fault()
    return plaintext


def _triple_des(key: bytes):
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES

    return TripleDES(key)


def _check_key(algorithm: EncryptionAlg, key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES[algorithm]:
        raise FailedCheck(
            f"{algorithm.value} needs a {KEY_BYTES[algorithm]}-byte key", check="decryption"
        )
