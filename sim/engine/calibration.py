"""``calibrate``: every ledger op of a cost profile measured on this machine with the real
implementations (the cryptography library, lxml, the project's kernels), returned as a profile
dict (``sim.engine.costs``). The HTTP layer and the engines' own CPU are measured by
``wssim calibrate`` with the testbed's parts (``sim.testbed.httpcost``,
``sim.testbed.ledger_gap``)."""

from __future__ import annotations

import os
import platform
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sim.engine.costs import BY_BITS, REPLAY_ROUND_TRIP_US, CostProfile, OpCost


def _median_seconds(function: Callable[[], object], repetitions: int, inner: int = 1) -> float:
    samples = []
    for _ in range(repetitions):
        start = time.perf_counter()
        for _ in range(inner):
            function()
        samples.append((time.perf_counter() - start) / inner)
    return float(np.median(samples))


def _mean_seconds(function: Callable[[], object], repetitions: int) -> float:
    start = time.perf_counter()
    for _ in range(repetitions):
        function()
    return (time.perf_counter() - start) / repetitions


#: key pairs generated per size for ``rsa_keygen``'s mean (a few seconds in all)
KEYGEN_SAMPLES = {1024: 20, 2048: 20, 3072: 6, 4096: 3}


def _linear(measure: Callable[[int], float], sizes: tuple[int, ...]) -> OpCost:
    """Least-squares fixed + per-byte cost over several sizes."""
    times = np.array([measure(size) for size in sizes])
    slope, intercept = np.polyfit(np.array(sizes, dtype=float), times, 1)
    return OpCost(fixed_us=max(intercept, 0.0) * 1e6, per_byte_ns=max(slope, 0.0) * 1e9)


def calibrate(*, repetitions: int = 15, quick: bool = False) -> dict:
    """Measure every ledger op on this machine with the real code; returns a profile dict."""
    import hashlib
    import hmac as hmac_module

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from lxml import etree

    import sim.crypto as crypto

    reps = max(3, repetitions // 3) if quick else repetitions
    sizes = (256, 4096, 32768)
    key = os.urandom(32)
    ops: dict[str, OpCost] = {}
    ops["digest"] = _linear(
        lambda n: _median_seconds(lambda: hashlib.sha1(b"x" * n).digest(), reps, 20), sizes
    )
    ops["hmac"] = _linear(
        lambda n: _median_seconds(
            lambda: hmac_module.new(key, b"x" * n, hashlib.sha1).digest(), reps, 20
        ),
        sizes,
    )

    def aes(n: int) -> float:
        def run():
            encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
            encryptor.update(b"x" * n)
            encryptor.finalize()

        return _median_seconds(run, reps, 20)

    ops["aes_encrypt"] = ops["aes_decrypt"] = ops["tls_record"] = _linear(aes, sizes)

    def aes_gcm(n: int, *, decrypt: bool) -> float:
        # as the wire layer does it: a cipher object per message, 96-bit IV, tag checked
        iv, data = key[:12], b"x" * n
        sealed = AESGCM(key).encrypt(iv, data, None)
        if decrypt:
            return _median_seconds(lambda: AESGCM(key).decrypt(iv, sealed, None), reps, 20)
        return _median_seconds(lambda: AESGCM(key).encrypt(iv, data, None), reps, 20)

    ops["aes_gcm_encrypt"] = _linear(lambda n: aes_gcm(n, decrypt=False), sizes)
    ops["aes_gcm_decrypt"] = _linear(lambda n: aes_gcm(n, decrypt=True), sizes)

    def document(n: int):
        item = b'<app:Item xmlns:app="urn:app" n="1">' + b"x" * 40 + b"</app:Item>"
        return b"<root>" + item * max(1, n // len(item)) + b"</root>"

    ops["xml_parse"] = _linear(
        lambda n: _median_seconds(lambda data=document(n): etree.fromstring(data), reps, 5), sizes
    )
    ops["xml_serialize"] = _linear(
        lambda n: _median_seconds(
            lambda el=etree.fromstring(document(n)): etree.tostring(el), reps, 5
        ),
        sizes,
    )
    ops["c14n"] = _linear(
        lambda n: _median_seconds(
            lambda el=etree.fromstring(document(n)): crypto.exc_c14n(el), reps, 5
        ),
        sizes,
    )
    ops["p_sha1"] = _linear(
        lambda n: _median_seconds(lambda: crypto.p_sha1(key, b"seed" * 10, n), reps, 20),
        (32, 256, 1024),
    )
    per_iteration = (
        _median_seconds(lambda: crypto.ut_derive_key(b"pw", key[:16], 1000), reps) / 1000
    )
    ops["ut_derive"] = OpCost(fixed_us=0.5, per_byte_ns=per_iteration * 1e9)
    ops["cache_lookup"] = OpCost(
        fixed_us=_median_seconds(lambda: {}.get("k"), reps, 1000) * 1e6 + 0.2
    )
    ops["replay_lookup"] = OpCost(
        fixed_us=_replay_lookup_seconds(reps) * 1e6,
        per_byte_ns=_round_trip_cpu_seconds(reps) * 1e9,
        wait_us=REPLAY_ROUND_TRIP_US,
    )

    ops.update(_kerberos_ops(reps, sizes))
    ops.update(_ntlm_ops(reps, sizes))

    bits_list = (1024, 2048) if quick else (1024, 2048, 3072, 4096)
    table: dict[str, list[tuple[int, float]]] = {op: [] for op in BY_BITS}
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    for bits in bits_list:
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        # a key pair takes a random search for primes: its cost is the mean of several
        # (one draw was 28 ms on one calibration and 262 ms on the next, for 2048 bits)
        keygen = _mean_seconds(
            lambda: rsa.generate_private_key(public_exponent=65537, key_size=bits),
            KEYGEN_SAMPLES[bits] if not quick else max(2, KEYGEN_SAMPLES[bits] // 4),
        )
        public = private.public_key()
        signature = private.sign(b"data", padding.PKCS1v15(), hashes.SHA1())
        cipher = public.encrypt(key, oaep)
        table["rsa_sign"].append(
            (
                bits,
                _median_seconds(
                    lambda: private.sign(b"data", padding.PKCS1v15(), hashes.SHA1()), reps
                )
                * 1e6,
            )
        )
        table["rsa_verify"].append(
            (
                bits,
                _median_seconds(
                    lambda: public.verify(signature, b"data", padding.PKCS1v15(), hashes.SHA1()),
                    reps,
                    10,
                )
                * 1e6,
            )
        )
        table["rsa_encrypt"].append(
            (bits, _median_seconds(lambda: public.encrypt(key, oaep), reps, 10) * 1e6)
        )
        table["rsa_decrypt"].append(
            (bits, _median_seconds(lambda: private.decrypt(cipher, oaep), reps) * 1e6)
        )
        table["rsa_keygen"].append((bits, keygen * 1e6))
        handshake = _tls_handshake_seconds(private, reps)
        table["tls_handshake"].append((bits, handshake / 2 * 1e6))  # per side
    for op, points in table.items():
        ops[op] = OpCost(by_bits=tuple(points))
    profile = CostProfile(
        ops,
        name="calibrated",
        meta={
            "machine": platform.machine(),
            "processor": platform.processor(),
            "python": platform.python_version(),
            "crypto_backend": crypto.BACKEND,
            "openssl": ssl.OPENSSL_VERSION,
            "repetitions": reps,
            "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    return profile.to_json()


def _kerberos_ops(reps: int, sizes: tuple[int, ...]) -> dict[str, OpCost]:
    """The Kerberos ops as a native library does them (MIT krb5 over OpenSSL): the engines
    run minikerberos' pure-Python RFC 3961 code for correctness, which is 20-50 times slower
    than the stacks being modelled. aes256-cts-hmac-sha1-96 with the usage's derived keys
    cached: an encryption is AES-CBC over confounder + data plus an HMAC-SHA1 of them (a
    decryption the same work), a checksum one HMAC-SHA1; string-to-key is PBKDF2-HMAC-SHA1,
    per iteration."""
    import hashlib
    import hmac as hmac_module

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key, mac_key = os.urandom(32), os.urandom(32)

    def seal(n: int) -> float:
        def run():
            data = b"c" * 16 + b"x" * n
            encryptor = Cipher(algorithms.AES(key), modes.CBC(b"\0" * 16)).encryptor()
            encryptor.update(data + b"\0" * (-len(data) % 16))
            encryptor.finalize()
            hmac_module.new(mac_key, data, hashlib.sha1).digest()

        return _median_seconds(run, reps, 20)

    sealing = _linear(seal, sizes)
    per_iteration = (
        _median_seconds(lambda: hashlib.pbkdf2_hmac("sha1", b"pw", b"REALMuser", 4096, 32), reps)
        / 4096
    )
    return {
        "krb_encrypt": sealing,
        "krb_decrypt": sealing,
        "krb_checksum": _linear(
            lambda n: _median_seconds(
                lambda: hmac_module.new(mac_key, b"x" * n, hashlib.sha1).digest(), reps, 20
            ),
            sizes,
        ),
        "krb_string_to_key": OpCost(fixed_us=5.0, per_byte_ns=per_iteration * 1e9),
    }


def _ntlm_ops(reps: int, sizes: tuple[int, ...]) -> dict[str, OpCost]:
    """The NTLM ops (sim/wire/ntlm.py): an HMAC-MD5 pass, an RC4 pass from a new key."""
    import hashlib
    import hmac as hmac_module

    from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
    from cryptography.hazmat.primitives.ciphers import Cipher

    key = os.urandom(16)
    return {
        "ntlm_hmac_md5": _linear(
            lambda n: _median_seconds(
                lambda: hmac_module.new(key, b"x" * n, hashlib.md5).digest(), reps, 20
            ),
            sizes,
        ),
        "ntlm_rc4": _linear(
            lambda n: _median_seconds(
                lambda: Cipher(ARC4(key), mode=None).encryptor().update(b"x" * n), reps, 20
            ),
            sizes,
        ),
    }


def _replay_lookup_seconds(repetitions: int) -> float:
    """A look-up-and-insert of a new 20-byte key (a signature value) in a replay cache of
    10,000 entries, in the node's memory."""
    from sim.wire.checks import ReplayCache

    cache = ReplayCache()
    keys = iter([os.urandom(20) for _ in range(10_000 + repetitions * 1000)])
    for i in range(10_000):
        cache.check_and_add(next(keys), i * 1e-3)
    return _median_seconds(lambda: cache.check_and_add(next(keys), 10.0), repetitions, 1000)


def _round_trip_cpu_seconds(repetitions: int) -> float:
    """The CPU one end spends on a request-reply exchange of small messages over TCP (a
    write and a read): half of a ping-pong's time over the loopback, in one process."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:
        a = socket.create_connection(server.getsockname())
        b, _ = server.accept()
    for end in (a, b):
        end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request, reply = b"k" * 64, b"v" * 16

    def ping() -> None:
        a.sendall(request)
        b.recv(256)
        b.sendall(reply)
        a.recv(256)

    try:
        return _median_seconds(ping, repetitions, 200) / 2
    finally:
        a.close()
        b.close()


def _tls_handshake_seconds(private, repetitions: int) -> float:
    """Wall time of a full TLS 1.2 handshake, both ends, over memory BIOs."""
    import datetime
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "calibration")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(private, hashes.SHA256())
    )
    with tempfile.TemporaryDirectory() as directory:
        cert_path, key_path = Path(directory, "c.pem"), Path(directory, "k.pem")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # allow the 1024-bit measurement
        server_ctx.load_cert_chain(cert_path, key_path)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    client_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    for context in (server_ctx, client_ctx):
        context.maximum_version = ssl.TLSVersion.TLSv1_2

    def handshake():
        c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
        client = client_ctx.wrap_bio(c_in, c_out)
        server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
        done = [False, False]
        for _ in range(10):
            for index, (end, out, peer_in) in enumerate(
                ((client, c_out, s_in), (server, s_out, c_in))
            ):
                try:
                    end.do_handshake()
                    done[index] = True
                except ssl.SSLWantReadError:
                    pass
                peer_in.write(out.read())
            if all(done):
                return

    return _median_seconds(handshake, max(3, repetitions // 3))
