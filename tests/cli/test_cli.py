"""The ``wssim`` command end to end: run, compare, sweep, plan, calibrate, trace, and how it
refuses bad input. Most commands run in this process (``wssim_here``: the command's parser,
handlers and outputs without an interpreter start-up each); in a child process (``wssim``)
where the process is part of what is tested: a run's outputs with its plot helper beside it,
a comparison of every strategy on the worker pool, replications on one and two workers, a
bad option met in a worker."""

from __future__ import annotations

import csv
import hashlib
import json
import re

import pytest

from sim.protocol.api import STRATEGY_NAMES
from sim.wire.ledger import OPS
from tests.cli.conftest import SCENARIOS, SHORT, assert_usage_error, wssim

SUBCOMMANDS = ("run", "compare", "sweep", "plan", "calibrate", "trace")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_explains_every_flag_with_an_example(wssim_here, command):
    result = wssim_here(command, "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "example: wssim " + command in text
    flags = set(re.findall(r"  (--[a-z-]+)", result.stdout)) - {"--help"}
    assert flags, result.stdout
    sections = re.split(r"\n  (?=-)", result.stdout)
    for flag in flags:
        section = next(s for s in sections if s.startswith(flag) or s.startswith("-h"))
        body = " ".join(section.split()[1:])
        assert len(body) > 10, f"{flag} has no explanation"


def test_run_writes_summary_csvs_manifest_and_plots(tmp_path):
    out = tmp_path / "r"
    scenario = SCENARIOS / "sct.toml"
    result = wssim(
        "run", scenario, "--out", out, *SHORT, "--set", 'strategies=["sct","x509"]', "--seed", "7"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["strategies"]) == ["sct", "x509"]
    assert summary["seed"] == 7 and summary["partial"] is False
    for field in ("scenario", "fidelity", "replications", "profile", "version", "measured_s"):
        assert field in summary
    sct = summary["strategies"]["sct"]
    assert sct["completed"] > 0 and sct["latency_ms"]["p99"] >= sct["latency_ms"]["p50"] > 0
    for field in (
        "app_messages",
        "failed",
        "throughput_per_s",
        "bytes_per_app_message",
        "sts_requests",
        "roles",
        "crypto_ops_per_app_message",
        "faults",
    ):
        assert field in sct
    metrics = {"mean", "p50", "p95", "p99", "max", "count", "unstable"}
    assert metrics <= set(sct["latency_ms"]) <= metrics | {"ci95"}  # ci95: batch means
    with (out / "messages.csv").open() as handle:
        messages = list(csv.DictReader(handle))
    assert {m["strategy"] for m in messages} == {"sct", "x509"}
    assert {"latency_ms", "ok", "fault", "strategy"} <= set(messages[0])
    assert (out / "nodes.csv").read_text().startswith("replication,strategy,node,role")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scenario_sha256"] == hashlib.sha256(scenario.read_bytes()).hexdigest()
    assert manifest["scenario"]["strategies"] == ["sct", "x509"]  # --set applied
    assert manifest["fidelity"] == "replay" and manifest["wall_s"] > 0
    assert manifest["partial"] is False and "run" in manifest["command"]
    plots = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert plots == [
        "bytes_per_message.png",
        "crypto_ops.png",
        "latency_cdf.png",
        "load_over_time.png",
        "utilization.png",
    ]
    assert all((out / "plots" / name).stat().st_size > 5000 for name in plots)
    with (out / "timeseries.csv").open() as handle:
        series = list(csv.DictReader(handle))
    assert {(r["strategy"], r["node"]) for r in series} >= {
        ("sct", "provider-*"),
        ("x509", "provider-0"),
    }


@pytest.mark.slow
def test_run_refuses_to_overwrite_results_unless_forced(wssim_here, tmp_path):
    out = tmp_path / "r"
    args = ["run", SCENARIOS / "x509.toml", "--out", out, *SHORT]
    assert wssim_here(*args).returncode == 0
    (out / "my-notes.txt").write_text("keep me")
    before = (out / "summary.json").read_bytes()
    assert_usage_error(wssim_here(*args, "--seed", "9"), "--out", "--force")
    assert (out / "summary.json").read_bytes() == before
    assert wssim_here(*args, "--seed", "9", "--force").returncode == 0
    assert json.loads((out / "summary.json").read_text())["seed"] == 9
    assert (out / "my-notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--set", 'strategies=["nope"]'], ["strategies", "x509"]),
        (["--set", "run.fidelity=fast"], ["run.fidelity", "full", "replay"]),
        (["--set", "run.warmup_s=100"], ["run", "warmup_s"]),
        (["--set", "workload.rate=-1"], ["workload.rate"]),
        (["--set", "topology.sts.color=1"], ["topology.sts.color"]),
        (["--set", "strategy_options.sct.bogus=1"], ["strategy_options.sct.bogus"]),
        (["--set", "=3"], ["--set"]),
        (["--set", "novalue"], ["novalue"]),
        (["--replications", "0"], ["--replications"]),
        (["--fidelity", "exact"], ["--fidelity"]),
        (["--bogus"], ["--bogus"]),
    ],
)
def test_invalid_scenario_or_flag_exits_2_with_one_line_naming_the_key(
    wssim_here, tmp_path, args, words
):
    result = wssim_here("run", SCENARIOS / "sct.toml", "--out", tmp_path / "r", *args)
    assert_usage_error(result, *words)
    assert not (tmp_path / "r" / "summary.json").exists()


def test_a_missing_out_or_an_unknown_trace_strategy_is_a_usage_error(wssim_here, tmp_path):
    assert_usage_error(wssim_here("run", SCENARIOS / "sct.toml"), "--out")
    result = wssim_here(
        "trace", SCENARIOS / "sct.toml", "--strategy", "nope", "--out", tmp_path / "t"
    )
    assert_usage_error(result, "--strategy")


def test_a_scenario_that_is_not_toml_is_a_usage_error(wssim_here, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("strategies = [\n")
    assert_usage_error(wssim_here("run", bad, "--out", tmp_path / "o"), "not valid TOML")


def test_missing_scenario_or_unknown_command_is_a_usage_error(wssim_here, tmp_path):
    assert_usage_error(wssim_here("compare", tmp_path / "nope.toml"), "SCENARIO", "nope.toml")
    assert_usage_error(wssim_here("frobnicate"), "frobnicate")


def test_compare_prints_the_side_by_side_table_of_every_strategy():
    result = wssim("compare", SCENARIOS / "sct-vs-per-message.toml", *SHORT)
    assert result.returncode == 0, result.stderr
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in result.stdout.splitlines()
        if line.count("│") > 5
    }
    header = next(line for line in result.stdout.splitlines() if "p99 ms" in line)
    for column in ("p50 ms", "p95 ms", "p99 ms", "msgs/s", "STS reqs", "RSA ops/msg", "faults"):
        assert column in header
    names = [n for n in rows if n != "strategy"]
    assert sorted(names) == sorted(STRATEGY_NAMES)
    assert "warning:" not in result.stderr  # a calm run warns of nothing
    # per-message tokens ask the STS once a message, an SCT once a session (5 messages)
    sts_column = [c.strip() for c in header.split("┃")[1:-1]].index("STS reqs")
    assert float(rows["bearer-per-message"][sts_column - 1]) > 3 * float(
        rows["bearer"][sts_column - 1]
    )


@pytest.mark.slow
def test_sweep_writes_a_tidy_table_and_resumes(wssim_here, tmp_path):
    out = tmp_path / "s"
    args = [
        "sweep",
        SCENARIOS / "sts-farm.toml",
        "--out",
        out,
        *SHORT,
        "--set",
        "workload.rate=50",
        "--param",
        "workload.messages_per_session=1,2",
        "--param",
    ]
    result = wssim_here(*args, "topology.sts.nodes=1,2")
    assert result.returncode == 0, result.stderr
    with (out / "sweep.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4  # 2 x 2 points, one strategy
    assert {(r["topology.sts.nodes"], r["workload.messages_per_session"]) for r in rows} == {
        ("1", "1"),
        ("1", "2"),
        ("2", "1"),
        ("2", "2"),
    }
    for column in ("strategy", "throughput_per_s", "p99_ms", "utilization_sts", "replications"):
        assert column in rows[0]
    assert {p.name for p in (out / "plots").glob("*.png")} == {"throughput.png", "p99.png"}
    points = {p: p.stat().st_mtime_ns for p in (out / "points").glob("*.json")}
    assert len(points) == 4
    again = wssim_here(*args, "topology.sts.nodes=1,2,3")  # one more value: 2 new points
    assert again.returncode == 0, again.stderr
    assert "2 points run now" in again.stdout
    assert all(p.stat().st_mtime_ns == t for p, t in points.items())
    with (out / "sweep.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 6


def test_sweep_rejects_a_bad_param(wssim_here, tmp_path):
    out = tmp_path / "x"
    result = wssim_here("sweep", SCENARIOS / "sts-farm.toml", "--out", out, "--param", "rate")
    assert_usage_error(result, "--param")
    result = wssim_here(
        "sweep", SCENARIOS / "sts-farm.toml", "--out", out, "--param", "topology.sts.nodes=0,1"
    )
    assert_usage_error(result, "topology.sts.nodes")


def test_plan_finds_the_smallest_sts_farm_with_evidence(wssim_here, tmp_path):
    out = tmp_path / "p"
    result = wssim_here(
        "plan",
        SCENARIOS / "sts-farm.toml",
        "--target",
        "p99_ms<=250",
        "--vary",
        "topology.sts.nodes",
        "--max",
        "8",
        "--out",
        out,
        "--set",
        "workload.rate=300",
        "--set",
        "run.duration_s=6",
        "--set",
        "run.warmup_s=1",
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads((out / "plan.json").read_text())
    answer = plan["answer"]
    assert answer is not None and answer > 1  # one node's HSM signs 250 tokens/s at most
    tried = {row["topology.sts.nodes"]: row for row in plan["evidence"]}
    assert max(tried) <= 8  # --max
    assert tried[answer]["p99_ms"] <= 250 and tried[answer - 1]["p99_ms"] > 250
    assert plan["runs"] == len(tried) <= 2 * answer.bit_length() + 1
    assert "monotonic" in plan["assumption"] and "monotonic" in result.stdout
    assert (out / "plan.csv").exists() and (out / "plan.png").exists()
    assert f"topology.sts.nodes = {answer}" in " ".join(result.stdout.split())
    assert_usage_error(
        wssim_here(
            "plan", SCENARIOS / "sts-farm.toml", "--target", "p99<=1", "--vary", "x", "--out", out
        ),
        "--target",
    )


def test_calibrate_writes_a_profile_of_every_op_that_a_run_then_uses(
    calibrated_profile, wssim_here, tmp_path
):
    profile = calibrated_profile  # wssim calibrate --quick, run once (tests/conftest.py)
    ops = json.loads(profile.read_text())["ops"]
    assert set(ops) == OPS
    for spec in ops.values():
        costs = list(spec.get("by_bits_us", {}).values()) or [
            spec["fixed_us"],
            spec["per_byte_ns"],
        ]
        assert all(cost >= 0 for cost in costs) and any(cost > 0 for cost in costs), spec
    out = tmp_path / "r"
    result = wssim_here(
        "run", SCENARIOS / "x509.toml", *SHORT, "--out", out, "--set", f'profile.name="{profile}"'
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["profile"] == json.loads(profile.read_text())["name"] != "default"
    assert summary["strategies"]["x509"]["completed"] > 0


def test_calibrate_refuses_to_overwrite_a_profile(wssim_here, tmp_path):
    out = tmp_path / "profile.json"
    out.write_text("{}")
    assert_usage_error(wssim_here("calibrate", "--quick", "--out", out), "--out", "--force")
    assert out.read_text() == "{}"
    assert_usage_error(wssim_here("calibrate", "--out", tmp_path / "no" / "p.json"), "--out")


def test_compare_prints_the_security_table_when_the_scenario_has_an_adversary(wssim_here):
    result = wssim(
        "compare",
        SCENARIOS / "attacks.toml",
        *SHORT,
        "--set",
        'strategies=["bearer","sct"]',
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "Security: attacks accepted / attempted" in text
    security = text[text.index("Security") :]
    header = next(line for line in security.splitlines() if "strategy" in line)
    for attack in ("replay", "steal-token", "tamper", "wrap"):
        assert attack in header
    rows = {line.split("│")[1].strip(): line for line in security.splitlines() if "│" in line}
    assert set(rows) == {"bearer", "sct"}
    assert "security" not in wssim_here("compare", SCENARIOS / "x509.toml", *SHORT).stdout.lower()


def test_compare_of_a_mixed_run_says_which_class_ran_which_strategy(wssim_here):
    result = wssim_here("compare", SCENARIOS / "mixed-clients.toml", *SHORT)
    assert result.returncode == 0, result.stderr
    rows = [line.split("│")[1].strip() for line in result.stdout.splitlines() if "│" in line]
    assert set(rows) == {"sct", "bearer-per-message"}
    caption = " ".join(result.stdout.split())
    assert "one mixed run: mobile -> bearer-per-message (share 2), partner -> sct (share 1)" in (
        caption
    )


def test_trace_refuses_a_mixed_run_naming_the_flag(wssim_here, tmp_path):
    result = wssim_here(
        "trace", SCENARIOS / "mixed-clients.toml", "--strategy", "sct", "--out", tmp_path / "t"
    )
    assert_usage_error(result, "--strategy", "mixed run")
    assert not (tmp_path / "t").exists()


@pytest.mark.slow
def test_an_overloaded_run_warns_on_stderr_and_in_the_summary(wssim_here, tmp_path):
    out = tmp_path / "r"
    result = wssim_here(
        "run", SCENARIOS / "sts-farm.toml", "--out", out, "--set", "run.duration_s=8"
    )
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "HSMs are saturated" in " ".join(result.stderr.split())
    summary = json.loads((out / "summary.json").read_text())
    assert any("HSMs are saturated" in w for w in summary["warnings"])
    # a calm run warns of nothing: test_compare_prints_the_side_by_side_table_of_every_strategy


@pytest.mark.slow
def test_workers_change_the_wall_time_not_the_results(wssim_here, tmp_path):
    args = [SCENARIOS / "sct.toml", *SHORT, "--replications", "3", "--set", 'strategies=["sct"]']
    one = wssim("run", *args, "--out", tmp_path / "one", "--workers", "1")
    two = wssim("run", *args, "--out", tmp_path / "two", "--workers", "2")
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    for name in ("summary.json", "messages.csv", "nodes.csv", "timeseries.csv"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert_usage_error(wssim_here("compare", *args, "--workers", "0"), "--workers")


def test_a_bad_option_met_in_a_worker_is_one_line_and_exit_2():
    result = wssim(
        "compare",
        SCENARIOS / "sct.toml",
        *SHORT,
        "--replications",
        "2",
        "--workers",
        "2",
        "--set",
        "strategy_options.sct.cache_capacity=-1",
        timeout=60,
    )
    assert_usage_error(result, "strategy_options.sct.cache_capacity")
