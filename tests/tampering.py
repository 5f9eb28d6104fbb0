"""Forging bytes for the tests that feed live receivers what an attacker would send."""

from __future__ import annotations


def flip_base64_char(data: bytes, index: int) -> bytes:
    """``data`` with the byte at ``index`` replaced by another base64 letter ("A", or "B"
    where it was "A"): the text stays well-formed base64, its meaning changes."""
    flipped = b"A" if data[index : index + 1] != b"A" else b"B"
    return data[:index] + flipped + data[index + 1 :]
