"""Actors' RSA keys and X.509 certificates under a test CA, made with pyca/cryptography.

RSA key generation is slow, so a :class:`KeyStore` keeps what it made in a directory
(PEM files) and reloads it on the next run. Certificates are valid for ten years around the
simulation epoch, so simulated time never leaves their validity period.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from sim.errors import InvalidSecurityToken
from sim.wire.ledger import Ledger, Op
from sim.wire.xmlutil import EPOCH

DEFAULT_BITS = 2048
ALLOWED_BITS = (1024, 2048, 3072, 4096)
CA_NAME = "wssim-test-ca"


@dataclass(frozen=True)
class Identity:
    """An actor's key pair and certificate."""

    name: str
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.certificate.public_key()

    @property
    def bits(self) -> int:
        return self.private_key.key_size

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def thumbprint_sha1(self) -> bytes:
        return hashlib.sha1(self.der).digest()

    @property
    def issuer_name(self) -> str:
        return self.certificate.issuer.rfc4514_string()

    @property
    def serial_number(self) -> int:
        return self.certificate.serial_number


def default_key_dir() -> Path:
    """Where keys are cached unless told otherwise (``WSSIM_KEY_DIR`` overrides)."""
    return Path(os.environ.get("WSSIM_KEY_DIR") or Path(tempfile.gettempdir()) / "wssim-keys")


class KeyStore:
    """Makes (once) and caches the test CA and every actor's identity in ``directory``."""

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_key_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._identities: dict[tuple[str, int], Identity] = {}
        self._lock = threading.Lock()
        self.ca = self._load_or_make(CA_NAME, DEFAULT_BITS, issuer=None)

    def identity(self, name: str, bits: int = DEFAULT_BITS) -> Identity:
        """The identity of actor ``name`` with an RSA key of ``bits`` bits."""
        if bits not in ALLOWED_BITS:
            raise ValueError(f"bits must be one of {ALLOWED_BITS}, got {bits}")
        key = (name, bits)
        with self._lock:
            if key not in self._identities:
                self._identities[key] = self._load_or_make(name, bits, issuer=self.ca)
            return self._identities[key]

    def _load_or_make(self, name: str, bits: int, issuer: Identity | None) -> Identity:
        stem = self.directory / f"{name}-{bits}"
        key_path, cert_path = stem.with_suffix(".key.pem"), stem.with_suffix(".pem")
        if key_path.exists() and cert_path.exists():
            loaded = _load_identity(name, key_path, cert_path)
            if _serial_is_fixed_width(loaded.certificate.serial_number) and (
                issuer is None or _issued_by(loaded.certificate, issuer)
            ):
                return loaded
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        certificate = _certificate(name, private_key, issuer)
        tmp = stem.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(
            private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        os.replace(tmp, key_path)
        tmp.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        os.replace(tmp, cert_path)
        return Identity(name, private_key, certificate)

    def verify_trusted(
        self, certificate: x509.Certificate, now: float, ledger: Ledger | None = None
    ) -> None:
        """Check that ``certificate`` was issued by the test CA and is valid at ``now``; the
        CA's signature check is recorded in ``ledger`` (an RSA verify with the CA's key)."""
        if certificate.issuer != self.ca.certificate.subject:
            raise InvalidSecurityToken("certificate not issued by a trusted CA", check="trust")
        if ledger is not None:
            ledger.record(Op.RSA_VERIFY, self.ca.public_key.key_size)
        if not _signed_by(certificate, self.ca.public_key):
            raise InvalidSecurityToken("certificate signature invalid", check="trust")
        instant = EPOCH + timedelta(seconds=now)
        if not certificate.not_valid_before_utc <= instant <= certificate.not_valid_after_utc:
            raise InvalidSecurityToken("certificate outside its validity period", check="trust")


#: Set in every serial number (which stays below 2**159): 20 bytes in DER, 48 decimal
#: digits, so that a message carrying a certificate or its serial has the same size
#: whatever key set made it (sizes are reproducible from one machine to another).
_SERIAL_TOP_BIT = 1 << 158


def _serial_is_fixed_width(serial: int) -> bool:
    return _SERIAL_TOP_BIT <= serial < 2 * _SERIAL_TOP_BIT


def _issued_by(certificate: x509.Certificate, issuer: Identity) -> bool:
    """Whether ``issuer`` (its name and key) signed ``certificate``."""
    return certificate.issuer == issuer.certificate.subject and _signed_by(
        certificate, issuer.public_key
    )


def _signed_by(certificate: x509.Certificate, public_key: rsa.RSAPublicKey) -> bool:
    try:
        public_key.verify(
            certificate.signature,
            certificate.tbs_certificate_bytes,
            padding.PKCS1v15(),
            certificate.signature_hash_algorithm,
        )
    except Exception:
        return False
    return True


def _certificate(
    name: str, private_key: rsa.RSAPrivateKey, issuer: Identity | None
) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wssim"),
        ]
    )
    issuer_name = issuer.certificate.subject if issuer else subject
    signer = issuer.private_key if issuer else private_key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number() | _SERIAL_TOP_BIT)
        .not_valid_before(EPOCH - timedelta(days=3650))
        .not_valid_after(EPOCH + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    return builder.sign(signer, hashes.SHA256())


#: Identities read from disk in this process, by file and version: loading an RSA key
#: (with its consistency checks) costs tens of milliseconds, paid once per process.
_LOADED: dict[tuple, Identity] = {}


def _load_identity(name: str, key_path: Path, cert_path: Path) -> Identity:
    key_stat, cert_stat = key_path.stat(), cert_path.stat()
    version = (
        name,
        str(key_path.resolve()),
        key_stat.st_mtime_ns,
        key_stat.st_size,
        cert_stat.st_mtime_ns,
        cert_stat.st_size,
    )
    identity = _LOADED.get(version)
    if identity is None:
        private_key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        identity = _LOADED[version] = Identity(name, private_key, certificate)
    return identity


def load_certificate_der(data: bytes) -> x509.Certificate:
    """A certificate from DER bytes (a BinarySecurityToken), typed fault when it is not one."""
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise InvalidSecurityToken("BinarySecurityToken is not an X.509 certificate") from None
