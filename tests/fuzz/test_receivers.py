"""Fuzzing every receiving engine with mutated real messages, and the scenario loader.

A receiver refuses with a SecurityFault (a server answers it as a SOAP fault with a standard
code) or accepts: any other exception is a bug, never a refusal, and fails these tests with
the mutation that caused it. The servers have no catch-all: what these tests catch is what
a peer could crash them with.

The campaign (fuzz/campaign.py) delivers at least 50,000 mutations in all (PER_STRATEGY to
each strategy: 4,600 each for eleven), byte-level and XML-aware, to the live engines of
real sessions, deterministically under SEED. To rerun one strategy with its findings'
inputs saved:
``python -m fuzz.campaign --strategy sct --mutations 4600 --seed 1 --save /tmp/findings``.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import campaign
from fuzz.corpus import receivers
from sim.engine.scenario import load_scenario
from sim.errors import FAULTS_BY_CODE, ScenarioError
from sim.protocol import STRATEGY_NAMES
from sim.protocol.api import Send, Step

ROOT = Path(__file__).resolve().parents[2]
SEED = 1
#: mutations per strategy: 50,000 in all at least
PER_STRATEGY = math.ceil(50_000 / len(STRATEGY_NAMES) / 100) * 100


def _explain(report: campaign.Report) -> str:
    lines = [f"{len(report.findings)} inputs broke a receiver of {report.strategy}:"]
    for finding in report.distinct()[:10]:
        lines.append("  " + finding.describe())
        lines.append(f"    input: {finding.data[:400]!r}")
    lines.append(
        f"  rerun: python -m fuzz.campaign --strategy {report.strategy} "
        f"--mutations {report.mutations} --seed {report.seed} --save /tmp/findings"
    )
    return "\n".join(lines)


@pytest.mark.slow
@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_mutated_real_messages_get_nothing_but_typed_faults(name):
    report = campaign.run(name, mutations=PER_STRATEGY, seed=SEED)
    if report.findings:
        pytest.fail(_explain(report), pytrace=False)
    assert report.mutations == PER_STRATEGY
    refusals = {check: n for check, n in report.outcomes.items() if check != "accepted"}
    # the mutations reach past the parser: into the tokens, keys and signatures
    assert sum(refusals.values()) > PER_STRATEGY // 2
    assert len(refusals) >= 6, report.outcomes


def test_the_campaign_is_deterministic_under_its_seed():
    """The same seed gives the same mutations, in the same order, and the same outcomes."""
    first = campaign.run("sct", mutations=300, seed=7)
    again = campaign.run("sct", mutations=300, seed=7)
    other = campaign.run("sct", mutations=300, seed=8)
    assert first.outcomes == again.outcomes and first.sessions == again.sessions
    assert [a[2] for a in first.accepted] == [a[2] for a in again.accepted]
    assert first.outcomes != other.outcomes


def test_the_campaign_draws_generated_key_pairs_from_a_pool_under_its_seed():
    """Inside a campaign, a key pair an engine generates comes from a small pool, drawn in
    the same order under the same seed; outside it, keys are generated again."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    real = rsa.generate_private_key
    with campaign.pooled_rsa_keys(5):
        first = [rsa.generate_private_key(public_exponent=65537, key_size=1024) for _ in range(8)]
    with campaign.pooled_rsa_keys(5):
        again = [rsa.generate_private_key(65537, 1024) for _ in range(8)]
    assert first == again
    assert len({id(key) for key in first}) <= campaign.POOLED_KEYS < len(first)
    assert all(key.key_size == 1024 for key in first)
    assert rsa.generate_private_key is real
    assert rsa.generate_private_key(65537, 1024) not in first


def test_a_receiver_that_raises_anything_else_is_a_finding(monkeypatch):
    """The campaign itself: an exception other than a SecurityFault, raised by a receiver
    for one input, is reported with the mutation and the input that caused it."""
    from sim.wire import soap

    real = soap.read_addressing
    calls = []

    def broken(envelope):
        calls.append(1)
        if len(calls) == 5:
            raise KeyError("planted")
        return real(envelope)

    monkeypatch.setattr(soap, "read_addressing", broken)
    report = campaign.run("x509", mutations=40, seed=3)
    [finding] = report.findings
    assert finding.error == "KeyError: 'planted'" and finding.data and finding.mutation


def _deliver(name: str, role: str, data: bytes) -> Step:
    started = time.perf_counter()
    step = receivers(name)[role].receive(data, sender="client-0", now=1.0)
    assert time.perf_counter() - started < 5.0  # bounded time per input
    assert isinstance(step, Step)
    assert all(isinstance(e, Send) for e in step.events)
    return step


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(STRATEGY_NAMES), blob=st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash_a_receiver(name, blob):
    for role in receivers(name):
        [event] = _deliver(name, role, blob).events
        assert event.fault in FAULTS_BY_CODE


toml_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    data=st.dictionaries(
        st.sampled_from(
            [
                "strategies",
                "workload",
                "topology",
                "links",
                "run",
                "profile",
                "faults",
                "name",
                "strategy_options",
                "other",
            ]
        ),
        toml_values,
        max_size=6,
    )
)
def test_the_scenario_loader_raises_only_scenario_errors(data):
    try:
        load_scenario(data)
    except ScenarioError as error:
        assert error.key and error.message


@pytest.mark.slow
def test_a_short_coverage_guided_run_finds_nothing():
    result = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / "receivers.py"), "-runs=400", "-seed=1"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
