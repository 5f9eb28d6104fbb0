"""Actors' RSA keys and X.509 certificates under a test CA, made with pyca/cryptography.

RSA key generation is slow, so a :class:`KeyStore` keeps what it made in a directory
(PEM files) and reloads it on the next run. That directory holds private keys a receiver
trusts, so it must be the user's own: by default a per-user cache directory made with mode
0700, and a directory another user owns or that others may read or write is refused (anyone
able to plant a key there could sign as any actor). Certificates are valid for ten years
around the simulation epoch, so simulated time never leaves their validity period.
Processes sharing one directory (parallel runs, a worker pool, test workers) take a lock
file in it while they load or make an identity, so that one of them makes each key and the
others read it (unlocked, two could each make a CA and sign with one the other replaced).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import stat
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from sim.errors import InvalidSecurityToken, ScenarioError
from sim.wire.ledger import Ledger, Op
from sim.wire.xmlutil import EPOCH

DEFAULT_BITS = 2048
ALLOWED_BITS = (1024, 2048, 3072, 4096)
CA_NAME = "wssim-test-ca"
#: the lock file processes sharing a key directory take while they load or make a key
LOCK_NAME = ".lock"


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

    @functools.cached_property
    def der(self) -> bytes:
        # the certificate's DER, serialized once (every X.509 message carries it or its
        # thumbprint); a frozen dataclass still has a __dict__ for cached_property
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @functools.cached_property
    def thumbprint_sha1(self) -> bytes:
        return hashlib.sha1(self.der).digest()

    @property
    def issuer_name(self) -> str:
        return self.certificate.issuer.rfc4514_string()

    @property
    def serial_number(self) -> int:
        return self.certificate.serial_number


def default_key_dir() -> Path:
    """Where keys are cached unless told otherwise: ``WSSIM_KEY_DIR`` if set, else
    ``$XDG_CACHE_HOME/wssim/keys``, else ``~/.cache/wssim/keys`` (a per-user directory)."""
    override = os.environ.get("WSSIM_KEY_DIR")
    if override:
        return Path(override)
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache) if cache and os.path.isabs(cache) else Path.home() / ".cache"
    return base / "wssim" / "keys"


def private_directory(directory: str | os.PathLike) -> Path:
    """``directory``, created with mode 0700 if missing; refused (:class:`ScenarioError`)
    when it is a symbolic link, is not a directory, belongs to another user or grants group
    or other users any permission."""
    path = Path(directory)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise ScenarioError("key_dir", f"{path} is not a directory (a link is refused)")
    if info.st_uid != os.getuid():
        raise ScenarioError("key_dir", f"{path} belongs to another user (uid {info.st_uid})")
    if info.st_mode & 0o077:
        raise ScenarioError(
            "key_dir",
            f"{path} is open to other users (mode {stat.S_IMODE(info.st_mode):o}); "
            "it holds private keys: chmod 700 it",
        )
    return path


class KeyStore:
    """Makes (once) and caches the test CA and every actor's identity in ``directory`` (a
    private directory, see :func:`private_directory`)."""

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        self.directory = private_directory(
            directory if directory is not None else default_key_dir()
        )
        self._identities: dict[tuple[str, int], Identity] = {}
        self._lock = threading.Lock()
        #: DER of a certificate the CA signed -> its validity period (see verify_trusted)
        self._trusted: dict[bytes, tuple] = {}
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
        loaded = _load_valid(name, key_path, cert_path, issuer)
        if loaded is not None:
            return loaded
        with _locked(self.directory / LOCK_NAME):
            # another process may have made it while this one waited for the lock
            loaded = _load_valid(name, key_path, cert_path, issuer)
            if loaded is not None:
                return loaded
            return _make(name, bits, issuer, key_path, cert_path)

    def verify_trusted(
        self, certificate: x509.Certificate, now: float, ledger: Ledger | None = None
    ) -> None:
        """Check that ``certificate`` was issued by the test CA and is valid at ``now``; the
        CA's signature check is recorded in ``ledger`` (an RSA verify with the CA's key).

        The CA's signature is checked over the raw to-be-signed bytes before any field of
        the certificate is read: fields are parsed lazily, and a peer's malformed name or
        date raises whatever the parser raises (ValueError, KeyError); once signed by the
        CA, the certificate is one this store made. The outcome for a certificate the CA
        signed is remembered (its validity period, by its DER): a peer sends the same one in
        every message, and the simulated cost (the ledger's RSA verify) is charged each time."""
        der = certificate.public_bytes(serialization.Encoding.DER)
        period = self._trusted.get(der)
        if period is None:
            if self._ca_subject not in certificate.tbs_certificate_bytes:
                raise InvalidSecurityToken("certificate not issued by a trusted CA", check="trust")
            if ledger is not None:
                ledger.record(Op.RSA_VERIFY, self.ca.public_key.key_size)
            if not _signed_by(certificate, self.ca.public_key):
                raise InvalidSecurityToken("certificate signature invalid", check="trust")
            if certificate.issuer != self.ca.certificate.subject:
                raise InvalidSecurityToken("certificate not issued by a trusted CA", check="trust")
            period = (certificate.not_valid_before_utc, certificate.not_valid_after_utc)
            with self._lock:
                if len(self._trusted) >= _TRUSTED_CACHE:
                    self._trusted.clear()
                self._trusted[der] = period
        elif ledger is not None:
            ledger.record(Op.RSA_VERIFY, self.ca.public_key.key_size)
        instant = EPOCH + timedelta(seconds=now)
        if not period[0] <= instant <= period[1]:
            raise InvalidSecurityToken("certificate outside its validity period", check="trust")

    @functools.cached_property
    def _ca_subject(self) -> bytes:
        return self.ca.certificate.subject.public_bytes()


#: How many certificates a store remembers as signed by its CA before it starts afresh.
_TRUSTED_CACHE = 4096

#: Set in every serial number (which stays below 2**159): 20 bytes in DER, 48 decimal
#: digits, so that a message carrying a certificate or its serial has the same size
#: whatever key set made it (sizes are reproducible from one machine to another).
_SERIAL_TOP_BIT = 1 << 158


def _serial_is_fixed_width(serial: int) -> bool:
    return _SERIAL_TOP_BIT <= serial < 2 * _SERIAL_TOP_BIT


def _serial_of(public_key: rsa.RSAPublicKey) -> int:
    """A certificate's serial number, from its key: unique per key, of one width, and drawn
    from no random source (``x509.random_serial_number`` reads ``os.urandom``, so making a
    key used to shift every id a process drew afterwards: with an empty key cache, the first
    message of a run differed from the same message built with the keys cached)."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return int.from_bytes(hashlib.sha256(spki).digest()[:20], "big") >> 2 | _SERIAL_TOP_BIT


def _load_valid(
    name: str, key_path: Path, cert_path: Path, issuer: Identity | None
) -> Identity | None:
    """The identity in ``key_path`` and ``cert_path`` if both are there, the certificate
    certifies the key, and ``issuer`` (the CA; None: self-signed) issued it; else None."""
    if not (key_path.exists() and cert_path.exists()):
        return None
    loaded = _load_identity(name, key_path, cert_path)
    if (
        _serial_is_fixed_width(loaded.certificate.serial_number)
        and _same_key(loaded)
        and (issuer is None or _issued_by(loaded.certificate, issuer))
    ):
        return loaded
    return None


def _make(
    name: str, bits: int, issuer: Identity | None, key_path: Path, cert_path: Path
) -> Identity:
    """A new key pair and certificate for ``name``, written to ``key_path`` and
    ``cert_path`` (the caller holds the directory's lock)."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    certificate = _certificate(name, private_key, issuer)
    _write_private(
        key_path,
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    _write_private(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
    return Identity(name, private_key, certificate)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (made private if missing; a link is refused) for
    the block. flock locks an open file: every caller opens its own, so that other
    processes and other threads of this one wait."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing it releases the lock


def _same_key(identity: Identity) -> bool:
    """Whether the certificate certifies the private key next to it (two processes making
    the same identity at once could otherwise leave one's key beside the other's cert)."""
    return identity.certificate.public_key().public_numbers() == (
        identity.private_key.public_key().public_numbers()
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.replace(tmp, path)


def _issued_by(certificate: x509.Certificate, issuer: Identity) -> bool:
    """Whether ``issuer`` (its name and key) signed ``certificate``."""
    return certificate.issuer == issuer.certificate.subject and _signed_by(
        certificate, issuer.public_key
    )


def _signed_by(certificate: x509.Certificate, public_key: rsa.RSAPublicKey) -> bool:
    """Whether ``public_key`` signed ``certificate`` as this store's CA signs (RSA PKCS#1
    v1.5 with SHA-256), read from the raw bytes only."""
    if certificate.signature_algorithm_oid != SignatureAlgorithmOID.RSA_WITH_SHA256:
        return False
    try:
        public_key.verify(
            certificate.signature,
            certificate.tbs_certificate_bytes,
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except InvalidSignature:
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
        .serial_number(_serial_of(private_key.public_key()))
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
        # The key is one this store wrote into its private directory, and the caller checks
        # that the certificate beside it certifies it (and that the CA issued that): the
        # RSA consistency checks of loading (primality of p and q, some 37 ms a 2048-bit
        # key, paid by every worker process for every identity it uses) prove nothing more.
        private_key = serialization.load_pem_private_key(
            key_path.read_bytes(), None, unsafe_skip_rsa_key_validation=True
        )
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        identity = _LOADED[version] = Identity(name, private_key, certificate)
    return identity


def load_certificate_der(data: bytes) -> x509.Certificate:
    """A certificate from DER bytes (a BinarySecurityToken), typed fault when it is not one
    (a serial number that is not positive included: RFC 5280 forbids it, and cryptography
    only warns of it for now). A peer sends the same certificate in every message: the
    parsed ones are kept (immutable objects), by their bytes."""
    certificate = _PARSED.get(data)
    if certificate is None:
        certificate = _parse_certificate(data)
        if len(_PARSED) >= _TRUSTED_CACHE:
            _PARSED.clear()
        _PARSED[data] = certificate
    return certificate


#: certificates parsed from peers' tokens, by their DER
_PARSED: dict[bytes, x509.Certificate] = {}


def _parse_certificate(data: bytes) -> x509.Certificate:
    with warnings.catch_warnings():
        warnings.simplefilter("error", CryptographyDeprecationWarning)
        try:
            return x509.load_der_x509_certificate(data)
        except (ValueError, x509.InvalidVersion, CryptographyDeprecationWarning):
            raise InvalidSecurityToken("BinarySecurityToken is not an X.509 certificate") from None
