"""Strict base64 reading, fresh random bytes and the ledger's vocabulary check."""

from __future__ import annotations

import base64
import os
import threading

import pytest
from lxml import etree

from sim.errors import InvalidSecurity
from sim.wire.ledger import Ledger, Op
from sim.wire.xmlutil import (
    b64_of,
    fresh_bytes,
    new_id,
    new_uuid_urn,
    parse_int,
    parse_time,
    unb64,
    whole_text,
)

DATA = bytes(range(200))


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(DATA).decode(),
        base64.encodebytes(DATA).decode(),  # MIME lines of 76 characters
        "  " + " \n\t".join(base64.b64encode(DATA).decode()[i : i + 10] for i in range(0, 268, 10)),
    ],
    ids=["plain", "mime-lines", "spaces-and-tabs"],
)
def test_base64_is_read_with_or_without_whitespace(text):
    assert unb64(text, "x") == DATA


@pytest.mark.parametrize(
    ("text", "message"),
    [(None, "ds:DigestValue is empty"), ("abc!", "not valid base64"), ("abc", "not valid")],
)
def test_bad_base64_is_a_typed_fault_naming_the_field(text, message):
    with pytest.raises(InvalidSecurity, match=message):
        unb64(text, "ds:DigestValue")


def test_ledger_takes_ops_by_member_or_name_and_refuses_others():
    ledger = Ledger()
    ledger.record(Op.HMAC, 10)
    ledger.record("digest", 3)
    assert ledger.drain() == (("hmac", 10), ("digest", 3))
    for bad in ("sha1", 7, ["hmac"]):
        with pytest.raises(ValueError, match="unknown ledger op"):
            ledger.record(bad, 1)
    assert len(ledger) == 0


def test_fresh_bytes_are_never_handed_out_twice():
    drawn = [fresh_bytes(16) for _ in range(1000)]  # several 4 KB draws from the OS
    ids = {new_id() for _ in range(1000)} | {new_uuid_urn() for _ in range(1000)}
    assert len(set(drawn)) == 1000 and len(ids) == 2000
    assert all(len(value) == 16 for value in drawn)
    assert len(fresh_bytes(10_000)) == 10_000  # more than one draw at once


def test_threads_never_hand_out_the_same_random_bytes():
    drawn: list[bytes] = []

    def draw():
        drawn.extend(fresh_bytes(16) for _ in range(2000))

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(drawn) == 8000 and len(set(drawn)) == 8000
    assert all(len(value) == 16 for value in drawn)


@pytest.mark.skipif(
    not hasattr(os, "fork"),
    reason="this platform has no os.fork, so no process can inherit the pool's bytes",
)
def test_a_forked_child_never_repeats_its_parents_random_bytes():
    fresh_bytes(8)  # the parent's pool now holds bytes it has not handed out yet
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write_end, fresh_bytes(32))
        os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 32)
    os.close(read_end)
    os.waitpid(pid, 0)
    assert len(child) == 32 and child != fresh_bytes(32)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2026-01-01T00:00:12.500Z", 12.5),
        ("2026-01-01T00:00:12Z", 12.0),
        ("2026-01-01T01:00:00+01:00", 0.0),
        ("2025-12-31T23:00:00-01:00", 0.0),
        ("2026-01-01T00:00:00", 0.0),  # no zone: UTC
        ("2026-01-01T00:00:00.1234567Z", 0.123456),  # .NET's seven digits
        ("  2026-01-01T00:00:01Z\n", 1.0),
    ],
)
def test_xsd_date_times_are_read(text, seconds):
    assert parse_time(text, "wsu:Created") == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "2026-W01-1",  # ISO week date: datetime.fromisoformat takes it
        "20260101T000000Z",  # ISO basic format: likewise
        "2026-01-01",
        "2026-02-30T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:00+15:00",
        "٢٠٢٦-01-01T00:00:00Z",
        "2026-01-01T00:00:00.Z",
        "2026-01-01 00:00:00Z",
        "+2026-01-01T00:00:00Z",
        "",
    ],
)
def test_anything_but_an_xsd_date_time_is_a_typed_fault(text):
    with pytest.raises(InvalidSecurity, match="wsu:Created"):
        parse_time(text, "wsu:Created")


@pytest.mark.parametrize("text", ["²", "١٢", "1_000", "+1", "-1", " 1 2", "0x10", "", None, "11"])
def test_integers_are_ascii_digits_in_range(text):
    with pytest.raises(InvalidSecurity, match=r"wsc:Offset must be an integer 0\.\.10"):
        parse_int(text, "wsc:Offset", low=0, high=10)


def test_integers_in_range_are_read():
    assert parse_int(" 7 ", "x", low=0, high=10) == 7
    assert parse_int("0", "x", low=0, high=10) == 0


def test_whole_text_refuses_what_exclusive_c14n_drops_or_a_reader_would_skip():
    for inner, kind in (
        ("PAY 10<!---->00000", "comment"),
        ("PAY 10<?pi x?>00000", "processing instruction"),
        ("PAY 10<b/>00000", "child node"),
    ):
        el = etree.fromstring(f"<a>{inner}</a>")
        with pytest.raises(InvalidSecurity, match=f"app:Payload holds a {kind}"):
            whole_text(el, "app:Payload")
        with pytest.raises(InvalidSecurity, match=f"app:Payload holds a {kind}"):
            b64_of(el, "app:Payload")
    assert whole_text(etree.fromstring("<a> x y </a>"), "a") == "x y"
    assert whole_text(etree.fromstring("<a> x </a>"), "a", strip=False) == " x "
    assert whole_text(etree.fromstring("<a>x&amp;<![CDATA[<y>]]></a>"), "a") == "x&<y>"
    assert b64_of(etree.fromstring("<a>YWJj\n ZGVm</a>"), "a") == b"abcdef"
