"""Base64 through the kernel (``sim._fastbase64``) gives what ``binascii`` gives: the same
text written, and the same bytes or the same refusal read, on every input — the one form
our senders write is decoded in one pass, anything else the general, strict way."""

from __future__ import annotations

import binascii
import itertools
import random

import pytest

import sim.crypto._reference as reference
from sim.errors import InvalidSecurity
from sim.wire import xmlutil
from tests.crypto.kernels import BACKENDS

try:
    from sim import _fastbase64
except ImportError:  # not built: the twin alone is tested
    _fastbase64 = None

ALL = (*BACKENDS, _fastbase64) if _fastbase64 is not None else BACKENDS
BASE64_BACKENDS = [m for m in ALL if hasattr(m, "b64encode")]


def _general(text: str) -> bytes | str:
    """The strict decoding every reader used before the kernel: the outcome, bytes or
    "refused"."""
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        pass
    try:
        return binascii.a2b_base64("".join(text.split()), strict_mode=True)
    except (binascii.Error, ValueError):
        return "refused"


def _read(text: str) -> bytes | str:
    try:
        return xmlutil.unb64(text, "the value")
    except InvalidSecurity:
        return "refused"


def test_the_compiled_kernel_is_among_the_backends():
    assert _fastbase64 in BASE64_BACKENDS


@pytest.mark.parametrize("backend", BASE64_BACKENDS, ids=lambda m: m.__name__)
def test_encoding_is_binascii_s(backend):
    rng = random.Random(7)
    for size in [*range(0, 70), 1024, 1100, 4099]:
        data = rng.randbytes(size)
        assert backend.b64encode(data) == binascii.b2a_base64(data, newline=False).decode()


@pytest.mark.parametrize("backend", BASE64_BACKENDS, ids=lambda m: m.__name__)
def test_every_short_text_decodes_as_binascii_does_or_is_left_to_it(backend):
    # every text of up to eight characters over letters, "=", whitespace, a character
    # outside the alphabet and one outside ASCII: canonical ones decode to binascii's bytes
    # (leftover bits dropped, as there), every other is left to the general reader
    symbols = "AQ/+=- \né"
    for length in range(0, 9):
        texts = (
            itertools.product(symbols, repeat=length)
            if length <= 4
            else (random.Random(length).choices(symbols, k=length) for _ in range(4000))
        )
        for chars in texts:
            text = "".join(chars)
            data = backend.b64decode_canonical(text)
            twin = reference.b64decode_canonical(text)
            assert data == twin, text
            if data is not None:
                assert data == binascii.a2b_base64(text, strict_mode=True), text


def test_canonical_text_with_leftover_bits_decodes_as_binascii_does():
    for text in ["QR==", "QUJ=", "////", "+/+/AB==", "AAB=", "AAAAAAA/"]:
        for backend in BASE64_BACKENDS:
            assert backend.b64decode_canonical(text) == binascii.a2b_base64(text), text


def test_unb64_has_the_general_outcome_on_every_one_character_change():
    value = xmlutil.b64(random.Random(3).randbytes(61))
    texts = {value, value + "\n", " " + value, value[:-1], value + "=", value.replace("=", "")}
    for i in range(len(value) + 1):
        for char in "A=/ \n-é\x00":
            texts.add(value[:i] + char + value[i:])  # inserted
            texts.add(value[:i] + char + value[i + 1 :])  # replaced
        texts.add(value[:i] + value[i + 1 :])  # removed
    for text in sorted(texts):
        assert _read(text) == _general(text), repr(text)


def test_unb64_refuses_what_is_missing():
    with pytest.raises(InvalidSecurity, match="the value is empty"):
        xmlutil.unb64(None, "the value")
    assert _read("") == _general("") == b""


def test_b64_takes_bytes_like_values_and_refuses_text():
    assert xmlutil.b64(bytearray(b"ab")) == xmlutil.b64(memoryview(b"ab")) == "YWI="
    with pytest.raises(TypeError, match="data"):
        xmlutil.b64("ab")
