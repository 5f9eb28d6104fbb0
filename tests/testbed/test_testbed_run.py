"""A short real testbed run of two strategies (x509: a provider; bearer: an STS and a
provider over TLS) on a tiny scenario, predicted with a profile calibrated just before: its
outputs, the consistency of what it measured, the CPU prediction holding, and the processes
stopped."""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict

import pytest

from sim.engine.costs import CostProfile
from sim.protocol import build_strategy
from sim.report.outputs import MESSAGE_COLUMNS
from tests.testbed.conftest import ROOT, TINY, leftover_processes, wssim

DURATION, WARMUP = 5.0, 1.0
RATE, MESSAGES = 3.0, 3


def _calibrated(key_dir: str, http: dict) -> dict:
    """A profile calibrated here and now, as ``wssim calibrate`` would write it, but for the
    two strategies of the run: the default ledger prices (the engine overhead is measured
    against them, so that ledger + overhead is what the engines spend), the HTTP layer (as
    ``wssim calibrate`` measured it in this session), the engines' CPU beyond their ledgers,
    and the machine's speed meanwhile."""
    from sim.testbed.ledger_gap import engine_overhead
    from sim.testbed.speed import reference_ms

    data = json.loads((ROOT / "sim" / "data" / "default_profile.json").read_text())
    reference = reference_ms(key_dir)
    data["http"] = http
    profile = CostProfile.from_json(data)
    data["engine_overhead_us"] = {
        name: engine_overhead(
            build_strategy(name, {}, key_dir=key_dir),
            profile,
            messages=MESSAGES,
            size=512,
            sessions=15,
        )
        for name in ("x509", "bearer")
    }
    data["meta"]["reference_ms"] = (reference + reference_ms(key_dir)) / 2
    return data


@pytest.fixture(scope="module")
def run(tmp_path_factory, keystore, calibrated_profile):
    tmp = tmp_path_factory.mktemp("testbed")
    scenario = tmp / "tiny.toml"
    scenario.write_text(TINY)
    profile = tmp / "profile.json"
    http = json.loads(calibrated_profile.read_text())["http"]
    profile.write_text(json.dumps(_calibrated(str(keystore.directory), http)))
    out = tmp / "out"
    env = {"WSSIM_KEY_DIR": str(keystore.directory)}
    result = wssim(
        "testbed",
        scenario,
        "--out",
        out,
        "--profile",
        profile,
        "--duration",
        DURATION,
        "--warmup",
        WARMUP,
        "--step",
        2,
        "--users",
        "1,2",
        env_extra=env,
    )
    return result, out, str(keystore.directory)


def test_the_run_succeeds_and_prints_the_table_and_cores(run):
    result, _, _ = run
    assert result.returncode == 0, result.stderr[-3000:]
    assert "predicted against measured" in result.stdout
    assert "cores: load generator" in result.stderr + result.stdout
    assert "links:" in result.stderr + result.stdout


def test_validation_json_holds_every_metric_of_every_strategy(run):
    _, out, _ = run
    validation = json.loads((out / "validation.json").read_text())
    assert set(validation["strategies"]) == {"x509", "bearer"}
    expected = {
        "x509": {"cpu_ms_per_message.provider"},
        "bearer": {"cpu_ms_per_message.provider", "cpu_ms_per_message.sts"},
    }
    for name, entry in validation["strategies"].items():
        assert set(entry) == {"predicted", "measured", "relative_error"}
        for side in ("predicted", "measured"):
            keys = set(entry[side])
            assert (
                expected[name]
                | {
                    "p50_ms",
                    "p95_ms",
                    "throughput_per_s",
                    "saturation_per_s",
                    "saturation_loadgen_cpu_ms_per_message",
                }
                <= keys
            ), (name, side, keys)


def test_relative_errors_are_predicted_minus_measured_over_measured(run):
    _, out, _ = run
    validation = json.loads((out / "validation.json").read_text())
    for entry in validation["strategies"].values():
        for key, measured in entry["measured"].items():
            error = entry["relative_error"][key]
            if measured == 0:
                assert error is None
            else:
                assert math.isclose(
                    error, (entry["predicted"][key] - measured) / measured, rel_tol=1e-9
                )


def test_measured_cpu_utilization_and_throughput_are_sane(run):
    _, out, _ = run
    validation = json.loads((out / "validation.json").read_text())
    for name, entry in validation["strategies"].items():
        measured = entry["measured"]
        for key, value in measured.items():
            assert value >= 0, (name, key)
        assert measured["cpu_ms_per_message.provider"] > 0
        assert 0 < measured["utilization.provider"] < 1.0
        assert 0 < measured["p50_ms"] <= measured["p95_ms"]
        # Poisson sessions of a few seconds: the throughput is the offered rate, loosely
        assert RATE * MESSAGES / 3 < measured["throughput_per_s"] < RATE * MESSAGES * 3
        assert measured["saturation_per_s"] > 0


def test_messages_csv_has_the_simulator_columns_and_whole_sessions(run):
    _, out, _ = run
    with (out / "messages.csv").open() as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == MESSAGE_COLUMNS
        rows = list(reader)
    details = json.loads((out / "testbed.json").read_text())
    sessions = defaultdict(list)
    for row in rows:
        sessions[row["strategy"], int(row["session"])].append(int(row["seq"]))
        assert row["ok"] == "True", row
        assert int(row["request_bytes"]) > 0 and int(row["response_bytes"]) > 0
    for (name, _), seqs in sessions.items():
        # a session sends its messages in order, at most the workload's count of them
        assert sorted(seqs) == list(range(len(seqs))), (name, seqs)
        assert len(seqs) <= MESSAGES
    for name in ("x509", "bearer"):
        main = details["strategies"][name]["measured"]["main"]
        inside = [
            r
            for r in rows
            if r["strategy"] == name
            and main["window_start_s"] <= float(r["start_s"]) < main["window_end_s"]
        ]
        assert main["app_messages"] == len(inside)
        assert main["completed"] == len(inside)
    bearer = [r for r in rows if r["strategy"] == "bearer"]
    # the token comes from the STS: token bytes and STS exchanges are counted on the wire
    assert any(int(r["sts_exchanges"]) > 0 and int(r["token_service_bytes"]) > 0 for r in bearer)


def test_testbed_json_says_which_cores_each_role_had_and_why_links_are_loopback(run):
    _, out, _ = run
    details = json.loads((out / "testbed.json").read_text())
    assert set(details["cores"]) == {"load generator", "servers"}
    assert all(details["cores"][role] for role in details["cores"])
    assert details["links"]["note"]


def test_the_plot_is_written(run):
    _, out, _ = run
    png = out / "plots" / "validation.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_testbed_process_outlives_the_run(run):
    _, _, key_dir = run
    assert leftover_processes(key_dir) == []


#: how far the predicted CPU per message of a server role may be from the measured one in
#: this short run: a sanity bound (a factor), not the issue's 15 % target, which is the full
#: comparison's (`wssim testbed`, docs/validation.md). CPU time on a shared two-vCPU VM
#: moves with the neighbours' load (the same harness work took 1.3 to 2.4 ms within
#: minutes), the short run has some 40 messages and does not amortize a process's warm-up:
#: by hand x509's provider came within 2 %, on CI's fresh machine at half the measured CPU.
#: A model without the calibrated engine overhead predicts up to 100 times too little.
CPU_FACTOR = 3.0


def test_predicted_cpu_per_message_is_within_a_factor_of_the_measured(run):
    _, out, _ = run
    validation = json.loads((out / "validation.json").read_text())
    for name, entry in validation["strategies"].items():
        errors = {
            key: error
            for key, error in entry["relative_error"].items()
            if key.startswith("cpu_ms_per_message.")
        }
        assert errors, name
        for key, error in errors.items():
            # relative error = predicted / measured - 1
            assert 1 / CPU_FACTOR <= 1 + error <= CPU_FACTOR, (
                name,
                key,
                entry["predicted"][key],
                entry["measured"][key],
            )
