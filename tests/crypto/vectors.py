"""Loader for the known-answer vectors in tests/data/crypto/vectors.json."""

from __future__ import annotations

import json
from pathlib import Path

VECTORS_FILE = Path(__file__).resolve().parent.parent / "data" / "crypto" / "vectors.json"


def load(section: str) -> list[dict]:
    """The vectors of one section (``ut_derive_key``, ``exc_c14n``...)."""
    return json.loads(VECTORS_FILE.read_text(encoding="utf-8"))[section]
