"""docs/reference.md is generated from the scenario schema and kept current."""

from pathlib import Path

from sim.engine.scenario import Scenario
from sim.report.reference import document

ROOT = Path(__file__).resolve().parents[2]


def test_the_reference_is_what_the_schema_says_today():
    expected = document()
    actual = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    assert actual == expected, (
        "docs/reference.md is stale: python -m sim.report.reference > docs/reference.md"
    )


def test_every_key_of_the_schema_is_in_the_reference():
    text = document()
    for section in ("workload", "run", "profile", "adversary"):
        model = Scenario.model_fields[section].annotation
        model = next(a for a in getattr(model, "__args__", (model,)) if a is not type(None))
        for name in model.model_fields:
            assert f"`{section}.{name}`" in text
    for name in ("nodes", "cores", "shared_replay_cache", "balancer"):
        assert f"`topology.<role>.{name}`" in text
    for name in ("latency_ms", "bandwidth_mbps", "bit_error_rate"):
        assert f"`links.<name>.{name}`" in text
