"""The real ``wssim`` command, every subcommand, and its refusals (exit 2, one line)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim.engine.scenario import load_scenario, read_scenario_file

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
SHORT = ["--set", "run.duration_s=6", "--set", "run.warmup_s=1", "--set", "workload.rate=5"]


def wssim(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sim.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=600,
    )


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.name)
def test_every_bundled_scenario_loads(path):
    scenario = load_scenario(read_scenario_file(path))
    assert scenario.strategies


def test_run_writes_every_output(tmp_path):
    out = tmp_path / "results"
    result = wssim(
        "run",
        str(SCENARIOS / "sct.toml"),
        "--out",
        str(out),
        *SHORT,
        "--set",
        'strategies=["sct","x509"]',
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    for field in (
        "scenario",
        "seed",
        "fidelity",
        "replications",
        "profile",
        "version",
        "measured_s",
    ):
        assert field in summary
    stats = summary["strategies"]["sct"]
    for field in (
        "app_messages",
        "completed",
        "failed",
        "throughput_per_s",
        "latency_ms",
        "bytes_per_app_message",
        "sts_requests",
        "roles",
        "crypto_ops_per_app_message",
        "faults",
    ):
        assert field in stats
    assert set(stats["latency_ms"]) == {"mean", "p50", "p95", "p99", "max"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["wall_s"] > 0 and len(manifest["scenario_sha256"]) == 64
    rows = list(csv.DictReader((out / "messages.csv").open()))
    assert rows and {"latency_ms", "ok", "fault", "strategy"} <= set(rows[0])
    assert list(csv.DictReader((out / "nodes.csv").open()))
    for plot in ("latency_cdf", "utilization", "bytes_per_message", "crypto_ops"):
        assert (out / "plots" / f"{plot}.png").stat().st_size > 5000


def test_an_existing_results_directory_is_not_overwritten(tmp_path):
    out = tmp_path / "results"
    assert wssim("run", str(SCENARIOS / "x509.toml"), "--out", str(out), *SHORT).returncode == 0
    before = (out / "summary.json").read_text()
    refused = wssim(
        "run", str(SCENARIOS / "x509.toml"), "--out", str(out), *SHORT, "--set", "run.seed=9"
    )
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert (out / "summary.json").read_text() == before
    forced = wssim(
        "run",
        str(SCENARIOS / "x509.toml"),
        "--out",
        str(out),
        *SHORT,
        "--set",
        "run.seed=9",
        "--force",
    )
    assert forced.returncode == 0


def test_compare_prints_the_side_by_side_table():
    result = wssim("compare", str(SCENARIOS / "sct-vs-per-message.toml"), *SHORT)
    assert result.returncode == 0, result.stderr
    for name in ("x509", "bearer-per-message", "sct", "sct-tlsnego", "ut-derived"):
        assert name in result.stdout
    assert "p99 ms" in result.stdout


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (
            ["run", "scenarios/sct.toml", "--out", "{tmp}/o", "--set", "workload.rate=-1"],
            "workload.rate",
        ),
        (
            ["run", "scenarios/sct.toml", "--out", "{tmp}/o", "--set", 'strategies=["nope"]'],
            "strategies",
        ),
        (
            ["run", "scenarios/sct.toml", "--out", "{tmp}/o", "--set", "topology.sts.color=1"],
            "topology.sts.color",
        ),
        (["run", "scenarios/sct.toml", "--out", "{tmp}/o", "--set", "novalue"], "novalue"),
        (["run", "missing.toml", "--out", "{tmp}/o"], "SCENARIO"),
        (["run", "scenarios/sct.toml", "--out", "{tmp}/o", "--fidelity", "exact"], "--fidelity"),
        (["run", "scenarios/sct.toml"], "--out"),
        (["bogus"], "bogus"),
        (["trace", "scenarios/sct.toml", "--strategy", "nope", "--out", "{tmp}/t"], "--strategy"),
        (
            [
                "plan",
                "scenarios/sts-farm.toml",
                "--target",
                "p99<=x",
                "--vary",
                "topology.sts.nodes",
                "--out",
                "{tmp}/p",
            ],
            "--target",
        ),
        (
            [
                "run",
                "scenarios/sct.toml",
                "--out",
                "{tmp}/o",
                "--set",
                "strategy_options.sct.bogus=1",
            ],
            "strategy_options.sct.bogus",
        ),
    ],
)
def test_invalid_scenarios_and_flags_exit_2_with_one_line_naming_the_key(tmp_path, args, key):
    result = wssim(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert key in lines[0] and "Traceback" not in result.stderr


def test_invalid_toml_file_is_refused(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("strategies = [\n")
    result = wssim("run", str(bad), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "not valid TOML" in result.stderr


def test_sweep_runs_the_grid_resumes_and_writes_a_table(tmp_path):
    out = tmp_path / "sweep"
    args = [
        "sweep",
        str(SCENARIOS / "sct.toml"),
        *SHORT,
        "--param",
        "workload.rate=2,4",
        "--param",
        'strategies=["sct"],["x509"]',
        "--out",
        str(out),
    ]
    result = wssim(*args)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert len(rows) == 4 and {r["strategy"] for r in rows} == {"sct", "x509"}
    assert (out / "plots" / "throughput.png").exists()
    again = wssim(*args)
    assert again.returncode == 0 and "point" not in again.stderr  # nothing re-run


def test_sweep_on_dask(tmp_path):
    out = tmp_path / "sweep"
    result = wssim(
        "sweep",
        str(SCENARIOS / "x509.toml"),
        *SHORT,
        "--param",
        "workload.rate=2,3",
        "--backend",
        "dask",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert len(list(csv.DictReader((out / "sweep.csv").open()))) == 2


def test_plan_finds_the_smallest_farm_meeting_the_target(tmp_path):
    out = tmp_path / "plan"
    result = wssim(
        "plan",
        str(SCENARIOS / "sts-farm.toml"),
        "--target",
        "p99_ms<=400",
        "--vary",
        "topology.sts.cores",
        "--max",
        "16",
        "--out",
        str(out),
        "--set",
        "run.duration_s=8",
        "--set",
        "run.warmup_s=2",
        "--set",
        "workload.rate=400",
        "--set",
        "profile.scale=4",
        "--set",
        "topology.sts.hsm_units=0",  # CPU-bound signing: cores are what the plan varies
    )
    assert result.returncode == 0, result.stderr + result.stdout
    plan = json.loads((out / "plan.json").read_text())
    assert plan["answer"] >= 2
    passing = {row["topology.sts.cores"] for row in plan["evidence"] if row["meets"]}
    failing = {row["topology.sts.cores"] for row in plan["evidence"] if not row["meets"]}
    assert min(passing) == plan["answer"] and plan["answer"] - 1 in failing


def test_calibrate_writes_a_usable_profile(tmp_path):
    out = tmp_path / "profile.json"
    assert wssim("calibrate", "--out", str(out), "--quick").returncode == 0
    result = wssim(
        "compare", str(SCENARIOS / "x509.toml"), *SHORT, "--set", f'profile.name="{out}"'
    )
    assert result.returncode == 0, result.stderr


def test_help_of_every_command_has_an_example():
    for command in ("run", "compare", "sweep", "plan", "calibrate", "trace"):
        result = wssim(command, "--help")
        assert result.returncode == 0 and "example: wssim" in result.stdout


def _endless_run(out: Path, *extra: str, **popen) -> subprocess.Popen:
    """``wssim run`` of the flagship scenario for 100,000 simulated seconds (to interrupt)."""
    command = [sys.executable, "-m", "sim.cli", "run", str(SCENARIOS / "sct-vs-per-message.toml")]
    command += ["--out", str(out), "--set", "workload.rate=50", *extra]
    return subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen
    )


def test_ctrl_c_writes_what_is_done_marked_partial(tmp_path):
    import signal
    import time

    out = tmp_path / "interrupted"
    process = _endless_run(out, "--set", "run.duration_s=100000")
    time.sleep(6)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    summary = json.loads((out / "summary.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert summary["partial"] is True and manifest["partial"] is True


def test_ctrl_c_at_a_terminal_stops_the_workers_too(tmp_path):
    """A terminal's Ctrl-C reaches the whole process group: the workers leave it to the main
    process, which writes what is done and stops them; nothing is left running."""
    import os
    import signal
    import time

    out = tmp_path / "interrupted"
    marker = f"run.duration_s=100001.{os.getpid()}"
    process = _endless_run(out, "--set", marker, "--workers", "2", start_new_session=True)
    time.sleep(6)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr
    assert json.loads((out / "summary.json").read_text())["partial"] is True
    time.sleep(0.5)
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = (Path("/proc") / pid / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in command:
            left.append(pid)
    assert left == []
