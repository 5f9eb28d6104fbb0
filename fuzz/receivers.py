"""Coverage-guided fuzzing (atheris) of every receiving engine and of the scenario loader.

Short run (part of the tests):   python fuzz/receivers.py -runs=500
Longer run (documented):         python fuzz/receivers.py -max_total_time=3600 -rss_limit_mb=1024

An input is a mutated real message (or arbitrary bytes) delivered to a server engine of a
strategy, or a mutated scenario file. A receiver must answer every input with a Step (a SOAP
fault with a standard code for anything it refuses: servers catch nothing but SecurityFault);
the loader must raise nothing but ScenarioError. Any other exception is a finding and stops
the fuzzer with the input that caused it. The deterministic campaign of the test suite is
fuzz/campaign.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tomllib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

import atheris

# Our code only: instrumenting every library it imports (pydantic, cryptography, lxml's
# Python parts) took most of a short run's time and guides the fuzzer into their code.
with atheris.instrument_imports(include=["sim", "fuzz"]):
    from fuzz.corpus import messages, receivers
    from sim.engine.scenario import load_scenario
    from sim.errors import FAULTS_BY_CODE, ScenarioError
    from sim.protocol.api import Send, Step

SEEDS = None
SCENARIO = (Path(__file__).resolve().parent.parent / "scenarios" / "sct.toml").read_bytes()


def one_input(data: bytes) -> None:
    global SEEDS
    if SEEDS is None:
        SEEDS = messages()
    provider = atheris.FuzzedDataProvider(data)
    choice = provider.ConsumeIntInRange(0, len(SEEDS))
    if choice == len(SEEDS):
        text = bytearray(SCENARIO)
        for _ in range(provider.ConsumeIntInRange(0, 8)):
            if text:
                text[provider.ConsumeIntInRange(0, len(text) - 1)] = provider.ConsumeInt(1) & 0x7F
        with contextlib.suppress(ScenarioError, tomllib.TOMLDecodeError):
            load_scenario(tomllib.loads(text.decode("utf-8", "replace")))
        return
    name, role, message = SEEDS[choice]
    body = bytearray(message)
    for _ in range(provider.ConsumeIntInRange(0, 6)):
        position = provider.ConsumeIntInRange(0, len(body) - 1)
        body[position] = provider.ConsumeInt(1)
    if provider.ConsumeBool():
        body = body[: provider.ConsumeIntInRange(0, len(body))]
    step = receivers(name)[role].receive(bytes(body), sender="client-0", now=1.0)
    assert isinstance(step, Step)
    assert all(isinstance(event, Send) for event in step.events)
    assert all(event.fault is None or event.fault in FAULTS_BY_CODE for event in step.events)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
