"""Strict base64 reading and the ledger's vocabulary check."""

from __future__ import annotations

import base64

import pytest

from sim.errors import InvalidSecurity
from sim.wire.ledger import Ledger, Op
from sim.wire.xmlutil import unb64

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
