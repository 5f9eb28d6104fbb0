"""Property-based fuzzing (hypothesis) of every receiving engine and of the scenario loader,
and a short coverage-guided run (atheris). Nothing a peer sends may crash a receiver."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.corpus import messages, receivers
from sim.engine.scenario import load_scenario
from sim.errors import ScenarioError
from sim.protocol.api import Send, Step

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def seeds():
    return messages()


def _deliver(name: str, role: str, data: bytes) -> Step:
    started = time.perf_counter()
    step = receivers(name)[role].receive(data, sender="client-0", now=1.0)
    assert time.perf_counter() - started < 5.0  # bounded time per input
    assert isinstance(step, Step)
    assert all(isinstance(e, Send) for e in step.events)
    return step


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_real_messages_never_crash_a_receiver(seeds, data):
    name, role, message = data.draw(st.sampled_from(seeds))
    body = bytearray(message)
    for _ in range(data.draw(st.integers(1, 5))):
        kind = data.draw(st.sampled_from(["flip", "cut", "dup", "insert"]))
        position = data.draw(st.integers(0, len(body) - 1))
        if kind == "flip":
            body[position] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del body[position : position + data.draw(st.integers(1, 200))]
        elif kind == "dup":
            body[position:position] = body[position : position + data.draw(st.integers(1, 400))]
        else:
            body[position:position] = data.draw(
                st.sampled_from(
                    [b"<!DOCTYPE x [<!ENTITY a 'b'>]>", b"&a;", b"<x/>", b"\x00", b"]]>", b"<"]
                )
            )
        if not body:
            break
    step = _deliver(name, role, bytes(body))
    for event in step.events:
        assert event.fault or event.data  # a refusal is a SOAP fault with a code


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(
        [
            "x509",
            "sct",
            "sender-vouches",
            "bearer",
            "sct-tlsnego",
            "hok-public",
            "hok-symmetric",
            "ut-derived",
        ]
    ),
    blob=st.binary(max_size=2000),
)
def test_arbitrary_bytes_never_crash_a_receiver(name, blob):
    for role in receivers(name):
        [event] = _deliver(name, role, blob).events
        assert event.fault


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


def test_a_short_coverage_guided_run_finds_nothing():
    result = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / "receivers.py"), "-runs=400", "-seed=1"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
