"""The security table ``wssim compare`` prints under the cost table: per strategy and attack,
accepted / attempted and the refusing checks; the padding oracle's blocks and queries; the
replay-store flood's size."""

from __future__ import annotations

from rich.console import Console

from sim.engine.attacks import empty_stats, security_view, verdict
from sim.report.table import security_table


def attacks(**overrides) -> dict:
    stats = {name: empty_stats(name) for name in ("replay", "padding-oracle", "replay-flood")}
    for name, values in overrides.items():
        stats[name.replace("_", "-")].update(values)
    return stats


SUMMARY = {
    "strategies": {
        "sct": {
            "attacks": attacks(
                replay={"attempts": 12, "refused": {"replay": 12}},
                padding_oracle={
                    "attempts": 1,
                    "refused": {"decryption": 1},
                    "queries": 256,
                    "encryption": {"aes256-gcm": 1},
                },
                replay_flood={"attempts": 1, "refused": {"replay": 1}, "flood_messages": 2000},
            )
        },
        "x509": {
            "attacks": attacks(
                replay={"attempts": 10, "accepted": 3, "refused": {"replay": 7}},
                padding_oracle={
                    "attempts": 1,
                    "accepted": 1,
                    "queries": 401,
                    "blocks": 1,
                    "queries_to_fall": 401,
                    "encryption": {"aes256-cbc": 1},
                },
            )
        },
        "bearer": {"latency_ms": {}},  # a strategy without an adversary entry has no row
    }
}


def rendered() -> dict[str, str]:
    """The table's lines by their first cell (the header's is ``strategy``)."""
    console = Console(record=True, width=400)
    console.print(security_table(SUMMARY))
    text = console.export_text()
    assert "Security: attacks accepted / attempted" in text
    return {
        line.replace("┃", "│").split("│")[1].strip(): line
        for line in text.splitlines()
        if "│" in line or "┃" in line
    }


def test_the_security_table_has_a_row_per_attacked_strategy_and_a_column_per_attack():
    rows = rendered()
    assert set(rows) == {"strategy", "sct", "x509"}
    header = rows["strategy"]
    assert header.index("replay ") < header.index("padding-oracle") < header.index("replay-flood")


def test_a_cell_counts_accepted_of_attempted_and_names_the_refusing_checks():
    rows = rendered()
    assert "0/12 (replay 12)" in rows["sct"]
    assert "3/10 (replay 7)" in rows["x509"]


def test_the_padding_oracle_cell_tells_blocks_queries_and_the_encryption():
    rows = rendered()
    assert "0/1 (decryption 1); 0 block(s) in 256 queries (aes256-gcm)" in rows["sct"]
    assert "1/1; 1 block(s) in 401 queries (aes256-cbc)" in rows["x509"]


def test_the_flood_cell_tells_its_size_and_an_attack_never_tried_is_not_applicable():
    rows = rendered()
    assert "0/1 (replay 1); after 2,000 messages" in rows["sct"]
    assert rows["x509"].rstrip("│ ").endswith("n/a")  # no flood against x509


def test_no_adversary_no_security_table():
    assert security_table({"strategies": {"sct": {"latency_ms": {}}}}) is None


def test_the_summarys_security_view_reads_as_sentences():
    view = security_view(SUMMARY["strategies"])
    assert set(view) == {"sct", "x509"}
    assert view["sct"]["replay"] == "refused 12 of 12 (replay 12)"
    assert view["x509"]["replay"] == "ACCEPTED 3 of 10 (refused: replay 7)"
    assert view["sct"]["padding-oracle"] == (
        "refused: no block in 256 queries of 1 campaign(s) (decryption 1; aes256-gcm)"
    )
    assert view["x509"]["padding-oracle"].startswith(
        "ACCEPTED: 1 plaintext block(s) of 1 campaign(s) fell, 401 queries a block"
    )
    assert view["sct"]["replay-flood"].endswith("after 2,000 flood messages")
    assert verdict("replay", empty_stats("replay")) == "n/a"
