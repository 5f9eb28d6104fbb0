"""The scenario a report shows: TOML text that reads back as the scenario, and the keys that
differ between two."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from sim.engine.scenario import read_scenario_file
from sim.report.scenario_text import scenario_diff, to_toml

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.toml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_bundled_scenario_written_as_toml_reads_back_the_same(path):
    data = read_scenario_file(path)
    assert tomllib.loads(to_toml(data)) == data


def test_scenario_diff_names_each_changed_key_with_both_values():
    a = {"workload": {"rate": 20.0}, "strategies": ["sct"], "topology": {"sts": {"nodes": 2}}}
    b = {"workload": {"rate": 30}, "strategies": ["sct"], "run": {"seed": 7}}
    assert scenario_diff(a, b) == [
        ("workload.rate", 20.0, 30),
        ("topology.sts.nodes", 2, None),
        ("run.seed", None, 7),
    ]
    assert scenario_diff(a, a) == []
