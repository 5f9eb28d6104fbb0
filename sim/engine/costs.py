"""Cost profiles: how much CPU time each ledger operation takes, measured on a machine.

A profile maps each op of the ledger vocabulary to a fixed cost (microseconds) plus a cost
per unit of size (nanoseconds per byte; per iteration for ``ut_derive``); RSA operations,
``rsa_keygen`` and ``tls_handshake`` carry a cost per key size instead, interpolated between
the measured sizes. :func:`calibrate` measures every op with the real implementations.

An op may also make the request wait without a core (``wait_us`` per unit of size): the
network round trips of ``replay_lookup``, whose size counts them (0 for a replay store in
the node's memory, 1 for a farm-wide store: a distributed cache). Its ``fixed_us`` is the
in-memory look-up-and-insert and ``per_byte_ns`` the CPU a round trip costs the node (a
socket write and read), both measured by :func:`calibrate`; ``wait_us`` is the data-centre
round trip, ``REPLAY_ROUND_TRIP_US`` (a parameter, not measured: override it with
``profile.overrides.replay_lookup.wait_us``).

A profile may also carry the cost of the HTTP layer (``http``: ``server_request_us``, the
server and its framework handling one request and writing its reply; ``client_request_us``,
an HTTP client sending one request and reading the reply), measured with an empty request
by ``wssim calibrate`` (``sim.testbed.httpcost``). ``http_seconds`` charges it per message:
a reply to its sender, any other message to its sender as a client. Without it (the shipped
default) messages cost only their ledger.

A profile may also carry the engines' own CPU beyond their ledgers (``engine_overhead_us``:
strategy -> role -> the kind of message the step sends, or ``none`` for a step that sends
nothing -> microseconds a step): the Python around the priced operations (building and
walking messages, bookkeeping), measured by ``wssim calibrate`` through the engines in the
in-memory harness (``sim.testbed.ledger_gap.engine_overhead``). ``overhead_seconds``
charges it per step. The shipped default profile has none: it models a production stack's
cryptographic and XML costs alone; a calibrated profile with it models this implementation.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import platform
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from sim.errors import ScenarioError
from sim.wire.ledger import OPS

#: a round trip to a farm-wide replay store (a distributed cache on the data-centre network)
REPLAY_ROUND_TRIP_US = 300.0

#: ``engine_overhead_us``'s kind for a step that sends nothing (a client's last step)
NO_SEND = "none"

BY_BITS = ("rsa_sign", "rsa_verify", "rsa_encrypt", "rsa_decrypt", "rsa_keygen", "tls_handshake")


@dataclass(frozen=True)
class OpCost:
    fixed_us: float = 0.0
    per_byte_ns: float = 0.0
    by_bits: tuple[tuple[int, float], ...] = ()  # (bits, microseconds), sorted
    #: time the request waits without a core, per unit of size (a network round trip)
    wait_us: float = 0.0

    def seconds(self, size: int) -> float:
        """CPU seconds."""
        if self.by_bits:
            return _interpolate(self.by_bits, size) * 1e-6
        return (self.fixed_us * 1e3 + self.per_byte_ns * size) * 1e-9

    def wait_seconds(self, size: int) -> float:
        """Seconds of waiting that hold no core."""
        return self.wait_us * size * 1e-6


def _interpolate(points: tuple[tuple[int, float], ...], bits: int) -> float:
    """Log-log interpolation (RSA private-key cost grows like bits^3)."""
    if len(points) == 1 or bits <= points[0][0]:
        return points[0][1] * (bits / points[0][0]) ** 3 if bits < points[0][0] else points[0][1]
    for (b0, c0), (b1, c1) in itertools.pairwise(points):
        if bits <= b1:
            slope = math.log(c1 / c0) / math.log(b1 / b0)
            return c0 * (bits / b0) ** slope
    (b0, c0), (b1, c1) = points[-2], points[-1]
    slope = math.log(c1 / c0) / math.log(b1 / b0)
    return c1 * (bits / b1) ** slope


class CostProfile:
    """Turns ledgers into CPU seconds."""

    def __init__(
        self,
        ops: Mapping[str, OpCost],
        *,
        name: str = "custom",
        scale: float = 1.0,
        meta: Mapping | None = None,
        http: Mapping[str, float] | None = None,
        engine_overhead: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    ) -> None:
        missing = OPS - set(ops)
        if missing:
            raise ValueError(f"profile lacks ops: {', '.join(sorted(missing))}")
        self.ops = dict(ops)
        self.name = name
        self.scale = scale
        self.meta = dict(meta or {})
        #: the HTTP layer's cost per message (microseconds; see the module docstring)
        self.http = {key: float(value) for key, value in (http or {}).items()}
        #: the engines' CPU beyond their ledgers, strategy -> role -> kind -> microseconds
        self.engine_overhead = {
            str(strategy): {
                str(role): {str(kind): float(us) for kind, us in kinds.items()}
                for role, kinds in roles.items()
            }
            for strategy, roles in (engine_overhead or {}).items()
        }
        self._memo: dict[tuple, float] = {}
        self._waits: dict[tuple, float] = {}
        #: the ops that make a request wait
        self._waiting = frozenset(op for op, cost in self.ops.items() if cost.wait_us)

    def wait(self, ledger: Iterable[tuple[str, int]]) -> float:
        """Seconds a ledger waits without a core (network round trips; memoized)."""
        key = tuple(ledger)
        value = self._waits.get(key)
        if value is None:
            value = sum(self.ops[op].wait_seconds(size) for op, size in key if op in self._waiting)
            if len(self._waits) < 100_000:
                self._waits[key] = value
        return value

    def http_seconds(self, reply: bool) -> float:
        """CPU seconds the HTTP layer costs the sender of a message: a server writing a
        ``reply`` (having read its request), or a client sending a request (and reading its
        reply)."""
        key = "server_request_us" if reply else "client_request_us"
        return self.http.get(key, 0.0) * 1e-6 * self.scale

    def overhead_seconds(self, strategy: str, role: str, kind: str | None) -> float:
        """CPU seconds an engine of ``strategy`` in ``role`` spends beyond its ledger on a
        step sending a message of ``kind`` (None: a step that sends nothing); 0 where the
        profile has no figure for it."""
        if not self.engine_overhead:
            return 0.0
        kinds = self.engine_overhead.get(strategy, {}).get(role, {})
        return kinds.get(NO_SEND if kind is None else str(kind), 0.0) * 1e-6 * self.scale

    def connection_seconds(self, server: bool) -> float:
        """CPU seconds opening a new HTTP connection adds to the ``server`` or the client
        end (``http``'s ``*_connection_us``; 0 without them)."""
        key = "server_connection_us" if server else "client_connection_us"
        return self.http.get(key, 0.0) * 1e-6 * self.scale

    def cost(self, ledger: Iterable[tuple[str, int]]) -> float:
        """CPU seconds for a ledger (memoized: ledgers repeat message after message)."""
        key = tuple(ledger)
        value = self._memo.get(key)
        if value is None:
            value = sum(self.ops[op].seconds(size) for op, size in key) * self.scale
            if len(self._memo) < 100_000:
                self._memo[key] = value
        return value

    def with_overrides(self, scale: float, overrides: Mapping[str, Mapping]) -> CostProfile:
        ops = dict(self.ops)
        for op, change in overrides.items():
            if op not in OPS:
                raise ScenarioError(
                    f"profile.overrides.{op}", f"unknown op; known: {', '.join(sorted(OPS))}"
                )
            base = ops[op]
            fixed = change.get("fixed_us")
            per_byte = change.get("per_byte_ns")
            wait = change.get("wait_us")
            ops[op] = OpCost(
                fixed_us=base.fixed_us if fixed is None else fixed,
                per_byte_ns=base.per_byte_ns if per_byte is None else per_byte,
                by_bits=() if fixed is not None else base.by_bits,
                wait_us=base.wait_us if wait is None else wait,
            )
        return CostProfile(
            ops,
            name=self.name,
            scale=self.scale * scale,
            meta=self.meta,
            http=self.http,
            engine_overhead=self.engine_overhead,
        )

    def to_json(self) -> dict:
        ops = {}
        for op, cost in sorted(self.ops.items()):
            if cost.by_bits:
                ops[op] = {"by_bits_us": {str(b): round(c, 3) for b, c in cost.by_bits}}
            else:
                ops[op] = {
                    "fixed_us": round(cost.fixed_us, 4),
                    "per_byte_ns": round(cost.per_byte_ns, 4),
                }
            if cost.wait_us:
                ops[op]["wait_us"] = round(cost.wait_us, 4)
        data = {"name": self.name, "meta": self.meta, "ops": ops}
        if self.http:
            data["http"] = {key: round(value, 3) for key, value in self.http.items()}
        if self.engine_overhead:
            data["engine_overhead_us"] = {
                strategy: {
                    role: {kind: round(us, 2) for kind, us in sorted(kinds.items())}
                    for role, kinds in sorted(roles.items())
                }
                for strategy, roles in sorted(self.engine_overhead.items())
            }
        return data

    @classmethod
    def from_json(cls, data: Mapping, source: str = "profile") -> CostProfile:
        try:
            ops = {}
            for op, spec in data["ops"].items():
                wait = float(spec.get("wait_us", 0.0))
                if "by_bits_us" in spec:
                    points = tuple(
                        sorted((int(b), float(c)) for b, c in spec["by_bits_us"].items())
                    )
                    ops[op] = OpCost(by_bits=points, wait_us=wait)
                else:
                    ops[op] = OpCost(
                        float(spec["fixed_us"]), float(spec["per_byte_ns"]), wait_us=wait
                    )
            http = {str(k): float(v) for k, v in data.get("http", {}).items()}
            return cls(
                ops,
                name=str(data.get("name", source)),
                meta=data.get("meta", {}),
                http=http,
                engine_overhead=data.get("engine_overhead_us", {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ScenarioError("profile.name", f"{source} is not a cost profile: {exc}") from None


def load_profile(name_or_path: str = "default") -> CostProfile:
    """The shipped default profile, or a JSON profile file written by ``wssim calibrate``."""
    default = json.loads(resources.files("sim").joinpath("data/default_profile.json").read_text())
    if name_or_path == "default":
        return CostProfile.from_json(default, "default")
    path = Path(name_or_path)
    if not path.is_file():
        raise ScenarioError("profile.name", f"'default' or a profile file; no file {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ScenarioError("profile.name", f"{path} is not JSON: {exc}") from None
    ops = data.get("ops") if isinstance(data, dict) else None
    if isinstance(ops, dict):
        # a profile written before ops joined the vocabulary: those take the default's cost
        later = sorted((OPS - set(ops)) & set(default["ops"]))
        if later:
            data = {
                **data,
                "ops": {**ops, **{op: default["ops"][op] for op in later}},
                "meta": {**data.get("meta", {}), "default_costs_for": later},
            }
    return CostProfile.from_json(data, str(path))


# --- calibration ------------------------------------------------------------------------


def _median_seconds(function: Callable[[], object], repetitions: int, inner: int = 1) -> float:
    samples = []
    for _ in range(repetitions):
        start = time.perf_counter()
        for _ in range(inner):
            function()
        samples.append((time.perf_counter() - start) / inner)
    return float(np.median(samples))


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

    bits_list = (1024, 2048) if quick else (1024, 2048, 3072, 4096)
    table: dict[str, list[tuple[int, float]]] = {op: [] for op in BY_BITS}
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    for bits in bits_list:
        start = time.perf_counter()
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        keygen = time.perf_counter() - start
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
