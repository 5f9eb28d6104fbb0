"""docs/strategies.md is generated from real runs; it must stay what the engines send."""

from __future__ import annotations

from pathlib import Path

from sim.protocol.document import document

DOC = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"


def test_the_strategies_document_is_what_the_engines_send_today(tmp_path):
    expected = document(str(tmp_path)) + "\n"
    assert DOC.read_text() == expected, (
        "docs/strategies.md is stale: python -m sim.protocol.document > docs/strategies.md"
    )
