"""Bad input to ``wssim testbed``: one line naming the flag or key, exit status 2, and no
process started (the command run in this process: ``wssim_here``)."""

from __future__ import annotations

import pytest

from tests.testbed.conftest import leftover_processes

MIXED = """
strategies = ["x509", "sct"]
[workload]
rate = 1.0
[workload.classes.a]
strategy = "x509"
[workload.classes.b]
strategy = "sct"
"""


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["--duration", "0"], "--duration"),
        (["--duration", "5", "--warmup", "5"], "--warmup"),
        (["--step", "100000"], "--step"),
        (["--users", "4,2"], "--users"),
        (["--users", "a,b"], "--users"),
        (["--strategy", "sct"], "--strategy"),
        (["--profile", "no-such-profile.json"], "profile.name"),
        (["--set", "workload.rate=-1"], "workload.rate"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(wssim_here, tiny, tmp_path, key_env, args, word):
    result = wssim_here("testbed", tiny, "--out", tmp_path / "out", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and word in lines[0] and "Traceback" not in result.stderr
    assert leftover_processes(key_env["WSSIM_KEY_DIR"]) == []


def test_a_missing_scenario_exits_2(wssim_here, tmp_path, key_env):
    result = wssim_here("testbed", tmp_path / "none.toml", "--out", tmp_path / "o")
    assert result.returncode == 2 and "SCENARIO" in result.stderr


def test_client_classes_are_refused(wssim_here, tmp_path, key_env):
    scenario = tmp_path / "mixed.toml"
    scenario.write_text(MIXED)
    result = wssim_here("testbed", scenario, "--out", tmp_path / "o")
    assert result.returncode == 2 and "workload.classes" in result.stderr
