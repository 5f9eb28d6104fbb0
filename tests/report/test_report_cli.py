"""``wssim report``, ``wssim runs``, ``--report`` and ``--plot-format`` at the command line."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.report.conftest import SCENARIOS, checked, wssim


def assert_usage_error(result, *words: str) -> None:
    """Exit status 2, one line on stderr naming what is wrong, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_run_with_report_writes_one_self_contained_html_file(run_a):
    report = run_a / "report.html"
    text = report.read_text()
    assert report.stat().st_size < 5_000_000  # the flagship compare, library inlined
    assert "<script src" not in text and "<link " not in text  # nothing fetched
    assert "plotly.js (basic - minified)" in text
    assert "sct-vs-per-message" in text


def test_plot_format_svg_writes_vector_plots(run_b):
    names = {p.name for p in (run_b / "plots").iterdir()}
    assert names == {
        "latency_cdf.svg",
        "utilization.svg",
        "bytes_per_message.svg",
        "crypto_ops.svg",
        "load_over_time.svg",
    }
    assert (run_b / "plots" / "latency_cdf.svg").read_text().lstrip().startswith("<?xml")
    assert not (run_b / "report.html").exists()  # no --report, no report


def test_report_refuses_a_directory_that_is_not_a_result(tmp_path):
    assert_usage_error(
        wssim("report", tmp_path, "--out", tmp_path / "r.html"), "RESULTS", "not a wssim result"
    )
    assert_usage_error(
        wssim("report", tmp_path / "missing", "--out", tmp_path / "r.html"), "not a directory"
    )
    assert not (tmp_path / "r.html").exists()


def test_report_refuses_a_corrupt_summary(run_a, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(run_a, broken)
    (broken / "summary.json").write_text('{"scenario": "x", "strategies": ')
    assert_usage_error(
        wssim("report", broken, "--out", tmp_path / "r.html"), "summary.json", "corrupt"
    )
    (broken / "summary.json").write_text(json.dumps({"scenario": "x", "strategies": {"a": 1}}))
    assert_usage_error(wssim("report", broken, "--out", tmp_path / "r.html"), "corrupt")


def test_compare_report_needs_an_out_directory():
    result = wssim("compare", SCENARIOS / "sct.toml", "--report")
    assert_usage_error(result, "--report", "--out")


def test_plot_format_refuses_an_unknown_format(tmp_path):
    result = wssim("run", SCENARIOS / "sct.toml", "--out", tmp_path, "--plot-format", "gif")
    assert_usage_error(result, "--plot-format")


def test_runs_lists_each_result_with_scenario_strategies_and_figures(
    run_a, run_b, sweep_dir, trace_dir
):
    listing = checked("runs", run_a.parent).stdout
    lines: dict[str, str] = {}  # path -> the row's text, folded cells joined again
    for line in listing.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0]:
            key, lines[cells[0]] = cells[0], ""
        if cells:
            lines[key] += " ".join(cells) + " "
    assert {"a", "b", "sweeps/rate", "trace"} <= set(lines)
    assert "sct-vs-per-message" in lines["a"] and "run" in lines["a"]
    assert "msg/s" in lines["a"] and "p99" in lines["a"]
    assert "2 points over workload.rate" in lines["sweeps/rate"]
    assert "messages traced" in lines["trace"]
    summary = json.loads((run_a / "summary.json").read_text())
    fastest = min(s["latency_ms"]["p99"] for s in summary["strategies"].values())
    assert f"p99 {fastest:,.1f} ms" in lines["a"]


@pytest.mark.parametrize("content", ["", "not a result"])
def test_runs_refuses_a_directory_without_results(tmp_path, content):
    if content:
        (tmp_path / "notes.txt").write_text(content)
    assert_usage_error(wssim("runs", tmp_path), "DIR", "no wssim results")
    assert_usage_error(wssim("runs", tmp_path / "missing"), "DIR", "not a directory")
