"""What makes the whole ``wssim run`` fast without changing what it writes (issue 15): the
plots drawn by a helper process, and the replay path's shortcuts giving the same records as
before."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from sim.engine import load_scenario, simulate
from sim.report import plot_helper
from sim.report.plot_helper import PlotHelper, RemoteTraceback

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("speed-keys")


@pytest.fixture(scope="module")
def small_run(key_dir):
    scenario = load_scenario(
        {
            "strategies": ["sct"],
            "workload": {"rate": 20.0, "messages_per_session": 5},
            "run": {"duration_s": 3.0, "warmup_s": 0.5},
        }
    )
    return scenario, simulate(scenario, key_dir=key_dir)


def _plot_kwargs(scenario, result) -> dict:
    return {"warmup_s": scenario.run.warmup_s, "timeseries": result.timeseries, "fmt": "png"}


def test_the_helper_draws_the_same_plot_files_as_this_process(tmp_path, small_run):
    from sim.report.plots import write_plots

    scenario, result = small_run
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    mine = write_plots(here, result.summary, result.messages, **_plot_kwargs(scenario, result))
    helper = PlotHelper()
    helper.start(there, result.summary, result.messages, **_plot_kwargs(scenario, result))
    theirs = helper.wait()
    assert [p.name for p in theirs] == [p.name for p in mine] and len(mine) == 5
    for a, b in zip(mine, theirs, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_a_failing_plot_raises_its_error_here_with_the_helpers_traceback(
    tmp_path, small_run, monkeypatch
):
    import sim.report.plots as plots

    def broken(*args, **kwargs):
        raise ValueError("no room for the legend")

    monkeypatch.setattr(plots, "crypto_ops", broken)  # before the fork: the helper has it
    scenario, result = small_run
    helper = PlotHelper()
    helper.start(tmp_path, result.summary, result.messages, **_plot_kwargs(scenario, result))
    with pytest.raises(ValueError, match="no room for the legend") as raised:
        helper.wait()
    assert isinstance(raised.value.__cause__, RemoteTraceback)
    assert "broken" in str(raised.value.__cause__)


def test_plots_are_drawn_here_when_the_helper_is_gone(tmp_path, small_run):
    scenario, result = small_run
    helper = PlotHelper()
    helper._process.kill()
    helper._process.join()
    helper.start(tmp_path, result.summary, result.messages, **_plot_kwargs(scenario, result))
    written = helper.wait()
    assert len(written) == 5 and all(p.stat().st_size > 5000 for p in written)


def test_a_run_whose_plot_fails_writes_the_other_outputs_and_raises(tmp_path, key_dir, monkeypatch):
    import sim.report.plots as plots
    from sim.cli import main

    def broken(*args, **kwargs):
        raise ValueError("no room for the legend")

    monkeypatch.setattr(plots, "utilization", broken)
    monkeypatch.setenv("WSSIM_KEY_DIR", str(key_dir))
    probe = plot_helper.start_plot_helper()
    assert probe is not None  # the helper is what this test is about
    probe.close()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(ValueError, match="no room for the legend"):
            main(
                [
                    "run",
                    str(ROOT / "scenarios" / "sct.toml"),
                    "--set",
                    "run.duration_s=2",
                    "--set",
                    "run.warmup_s=0.5",
                    "--out",
                    str(tmp_path / "out"),
                ]
            )
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    assert (tmp_path / "out" / "summary.json").is_file()
    assert (tmp_path / "out" / "results.sqlite").is_file()
