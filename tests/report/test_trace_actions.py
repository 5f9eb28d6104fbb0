"""Each trace.jsonl line names its message's Action as the URI the message carries in its
wsa:Action header (never an Enum's name or repr), for the strategies whose senders pass the
Action as an ``ns.Action`` member (bearer's token service) and as text (sct)."""

from __future__ import annotations

import json

import pytest
from lxml import etree

from sim.cli import main
from tests.cli.conftest import SCENARIOS

WSA_ACTION = "{http://www.w3.org/2005/08/addressing}Action"


@pytest.mark.parametrize("strategy", ["sct", "bearer"])
def test_the_trace_action_is_the_wsa_action_uri_of_the_message(strategy, tmp_path, monkeypatch):
    monkeypatch.setenv("WSSIM_KEY_DIR", str(tmp_path / "keys"))
    out = tmp_path / "trace"
    args = ["trace", str(SCENARIOS / f"{strategy}.toml"), "--strategy", strategy]
    args += ["--sessions", "1", "--out", str(out), "--set", "workload.messages_per_session=2"]
    assert main(args) == 0
    entries = [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()]
    assert len(entries) >= 4
    for entry in entries:
        root = etree.fromstring((out / entry["file"]).read_bytes())
        action = root.find(f".//{WSA_ACTION}")
        assert action is not None, entry["file"]
        assert entry["action"] == action.text.strip(), entry
        assert entry["action"].startswith(("http://", "urn:")), entry
