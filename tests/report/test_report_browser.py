"""The HTML report opened in a real headless Chromium: it renders without errors or network
requests, every chart is drawn with the series the results call for, the tables hold
summary.json's figures, and the page is not blank."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from sim.report.html import write_report
from tests.report.conftest import checked

#: every chart: its name, its plotly trace names, whether its svg holds drawn traces
CHARTS_JS = """
Array.from(document.querySelectorAll('.chart')).map(function (div) {
  return {
    chart: div.dataset.chart,
    source: div.dataset.source,
    names: (div.data || []).map(function (t) { return t.name; }),
    points: (div.data || []).map(function (t) { return (t.y || []).filter(function (v) {
      return v !== null; }).length; }),
    drawn: div.querySelectorAll('.main-svg .trace').length,
  };
})
"""
CELLS_JS = """
Object.fromEntries(Array.from(document.querySelectorAll('[data-key]')).map(function (el) {
  return [el.dataset.key, {value: el.dataset.value === undefined ? null :
    Number(el.dataset.value), text: el.textContent}];
}))
"""
LOAD_CHARTS = ("load-utilization", "load-queue")


def open_report(browser, path: Path) -> tuple[list[dict], dict]:
    browser.open(path.resolve().as_uri())
    browser.wait_until("document.body.getAttribute('data-charts-drawn') !== null")
    assert browser.errors() == []
    # nothing but the file itself: the library, the data and the styles are inline
    assert [u for u in browser.requests() if u != path.resolve().as_uri()] == []
    return browser.evaluate(CHARTS_JS), browser.evaluate(CELLS_JS)


def assert_not_blank(browser) -> None:
    image = matplotlib.image.imread(io.BytesIO(browser.screenshot()), format="png")
    pixels = image[..., :3].reshape(-1, 3)
    coloured = np.mean(np.abs(pixels - pixels.mean(axis=1, keepdims=True)).sum(axis=1) > 0.1)
    assert image.shape[0] > 1000  # the top of the page, beyond the window
    assert pixels.std() > 0.1 and coloured > 0.01  # text, tables and coloured lines


def farm_series(run: Path) -> set[str]:
    """What the load-over-time charts show: each farm's CPU (and HSM) line per strategy."""
    with (run / "timeseries.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["replication"] == "0"]
    return {
        f"{r['role']} {resource}"
        for r in rows
        if r["node"].endswith("-*")
        for resource, column in (("CPU", "utilization"), ("HSM", "hsm_utilization"))
        if r[column] != ""
    }


def assert_figures_match(cells: dict, summary: dict, prefix: str = "") -> None:
    """Every strategy's figures in the table equal summary.json's, in value and in text."""
    for name, stats in summary["strategies"].items():
        key = f"{prefix}{name}"
        expected = {
            "throughput_per_s": stats["throughput_per_s"],
            "completed": stats["completed"],
            "failed": stats["failed"],
            "sts_requests": stats["sts_requests"],
            "bytes.request": stats["bytes_per_app_message"]["request"],
            "bytes.token_service": stats["bytes_per_app_message"]["token_service"],
            **{f"latency_ms.{m}": stats["latency_ms"][m] for m in ("mean", "p50", "p99")},
            **{
                f"roles.{role}.utilization": r["utilization"] * 100
                for role, r in stats["roles"].items()
            },
        }
        for figure, value in expected.items():
            cell = cells[f"{key}/{figure}"]
            assert cell["value"] == pytest.approx(value, rel=1e-9, abs=1e-9), (key, figure)
            shown = float(cell["text"].split("±")[0].replace(",", ""))
            assert shown == pytest.approx(value, rel=0.01, abs=0.51), (key, figure, cell["text"])
        if "ci95" in stats["latency_ms"] and stats["latency_ms"]["ci95"]["p99"]:
            assert "±" in cells[f"{key}/latency_ms.p99"]["text"]


def assert_capacity_matches(cells: dict, summary: dict) -> None:
    """The capacity table holds summary.json's bottleneck, largest rate and demands."""
    for name, stats in summary["strategies"].items():
        capacity = stats.get("capacity")
        if not capacity:
            continue
        assert cells[f"{name}/capacity.bottleneck"]["text"] == capacity["bottleneck"]
        assert cells[f"{name}/capacity.max_messages_per_s"]["value"] == pytest.approx(
            capacity["max_messages_per_s"]
        )
        assert cells[f"{name}/offered_per_s"]["value"] == pytest.approx(stats["offered_per_s"])
        assert cells[f"{name}/in_flight_at_end"]["value"] == stats["in_flight_at_end"]
        for role, resources in capacity["demand_ms"].items():
            for resource, ms in resources.items():
                key = f"{name}/capacity.demand_ms.{role}.{resource}"
                assert cells[key]["value"] == pytest.approx(ms)


def test_run_report_renders_every_chart_and_the_summary_figures(run_a, browser):
    summary = json.loads((run_a / "summary.json").read_text())
    strategies = list(summary["strategies"])
    charts, cells = open_report(browser, run_a / "report.html")
    by_name = {c["chart"]: c for c in charts}
    with_capacity = any(s.get("capacity") for s in summary["strategies"].values())
    assert set(by_name) == {
        "latency-cdf",
        "utilization",
        *LOAD_CHARTS,
        "bytes",
        "public-key-ops",
        "symmetric-ops",
        *(["capacity"] if with_capacity else []),
    }
    assert by_name["latency-cdf"]["names"] == strategies
    for chart in ("bytes",):
        assert by_name[chart]["names"] == [
            "application request",
            "application response",
            "token service (RST/RSTR, amortized)",
        ]
    roles = {r for s in summary["strategies"].values() for r in s["roles"]}
    assert set(by_name["utilization"]["names"]) == roles
    for chart in LOAD_CHARTS:
        assert set(by_name[chart]["names"]) == farm_series(run_a)
    ops = {
        op
        for s in summary["strategies"].values()
        for op, n in s["crypto_ops_per_app_message"].items()
        if n
    }
    shown_ops = set(by_name["public-key-ops"]["names"]) | set(by_name["symmetric-ops"]["names"])
    assert shown_ops == ops  # every op counted, the uncommon ones too
    for chart in charts:
        assert chart["drawn"] == len(chart["names"]) > 0, chart["chart"]
        assert all(chart["points"]), chart["chart"]
    assert_figures_match(cells, summary)
    assert_capacity_matches(cells, summary)
    assert_not_blank(browser)


def test_compare_report_shows_both_runs_and_their_differences(run_a, run_b, browser, tmp_path):
    out = tmp_path / "compare.html"
    checked("report", run_a, run_b, "--out", out)
    summary_a = json.loads((run_a / "summary.json").read_text())
    summary_b = json.loads((run_b / "summary.json").read_text())
    charts, cells = open_report(browser, out)
    compare = {c["chart"]: c for c in charts if c["source"] == "AB"}
    strategies = [s for s in summary_a["strategies"] if s in summary_b["strategies"]]
    assert strategies == ["x509", "bearer", "sct"]  # B ran three of A's strategies
    assert compare["compare-latency-cdf"]["names"] == [
        *(f"A: {s}" for s in summary_a["strategies"]),
        *(f"B: {s}" for s in summary_b["strategies"]),
    ]
    assert len(compare["compare-p99"]["names"]) == 2
    # each run's own section, its figures as in its summary.json
    assert {c["source"] for c in charts} == {"A", "B", "AB"}
    assert_figures_match(cells, summary_a, "A:")
    assert_figures_match(cells, summary_b, "B:")
    # what changed in the scenario, and what it did to the figures
    assert cells["scenario-a/workload.rate"]["text"] == "20.0"
    assert cells["scenario-b/workload.rate"]["text"] == "30"
    assert cells["scenario-a/topology.sts.nodes"]["text"] == "2"
    assert cells["scenario-b/topology.sts.nodes"]["text"] == "1"
    assert cells["scenario-b/strategies"]["text"] == '["bearer", "sct", "x509"]'
    for name in strategies:
        a = summary_a["strategies"][name]["latency_ms"]["p99"]
        b = summary_b["strategies"][name]["latency_ms"]["p99"]
        assert cells[f"A/{name}/p99 latency (ms)"]["value"] == pytest.approx(a)
        assert cells[f"B/{name}/p99 latency (ms)"]["value"] == pytest.approx(b)
        assert cells[f"delta/{name}/p99 latency (ms)"]["value"] == pytest.approx(b - a)
    for chart in charts:
        assert chart["drawn"] == len(chart["names"]) > 0, chart["chart"]
    assert_not_blank(browser)


def with_capacity(run: Path, tmp_path: Path) -> tuple[Path, dict]:
    """A copy of ``run`` whose summary.json carries each strategy's capacity, as the engine
    writes it (bottleneck, largest rate, demand per role and resource)."""
    copy = tmp_path / "with-capacity"
    shutil.copytree(run, copy)
    summary = json.loads((copy / "summary.json").read_text())
    for i, stats in enumerate(summary["strategies"].values()):
        demand = {
            role: {"cores": round(r["mean_service_ms"] * (1 + i / 10), 4)}
            for role, r in stats["roles"].items()
        }
        demand["links"] = {"client-provider": 0.75 + i / 100}
        role, ms = max(
            ((r, d["cores"]) for r, d in demand.items() if r != "links"), key=lambda x: x[1]
        )
        stats["offered_per_s"] = stats["app_messages"] / summary["measured_s"]
        stats["in_flight_at_end"] = i
        stats["capacity"] = {
            "bottleneck": f"{role}.cores",
            "max_messages_per_s": round(1000 / ms * stats["roles"][role]["cores"], 2),
            "demand_ms": demand,
        }
    (copy / "summary.json").write_text(json.dumps(summary))
    return copy, summary


def test_capacity_table_holds_each_strategys_bottleneck_and_largest_rate(run_a, browser, tmp_path):
    run, summary = with_capacity(run_a, tmp_path)
    out = write_report([run], tmp_path / "capacity.html")
    charts, cells = open_report(browser, out)
    assert "capacity" in {c["chart"] for c in charts}
    assert_capacity_matches(cells, summary)


def test_warnings_are_shown_at_the_top(run_a, browser, tmp_path):
    copy = tmp_path / "warned"
    shutil.copytree(run_a, copy)
    summary = json.loads((copy / "summary.json").read_text())
    summary["warnings"] = ["sct: the sts farm's cores are saturated and its line keeps growing"]
    (copy / "summary.json").write_text(json.dumps(summary))
    open_report(browser, write_report([copy], tmp_path / "warned.html"))
    box = browser.evaluate(
        "(function () { var w = document.getElementById('warnings');"
        " return w && {text: w.textContent, top: w.getBoundingClientRect().top}; })()"
    )
    assert "cores are saturated" in box["text"]
    assert box["top"] < 400  # above the first section, seen without scrolling


def test_sweep_and_trace_reports_draw_the_knee_and_the_message_sequence(
    sweep_dir, trace_dir, browser, tmp_path
):
    charts, cells = open_report(browser, sweep_dir / "report.html")
    by_name = {c["chart"]: c for c in charts}
    with (sweep_dir / "sweep.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    for chart in ("sweep-throughput", "sweep-p99"):
        assert by_name[chart]["names"] == sorted({r["strategy"] for r in rows})
        assert by_name[chart]["points"] == [2] * len(by_name[chart]["names"])
    assert [cells[f"row{i}/throughput_per_s"]["value"] for i in range(len(rows))] == [
        pytest.approx(float(r["throughput_per_s"])) for r in rows
    ]

    out = tmp_path / "trace.html"
    checked("report", trace_dir, "--out", out)
    entries = [json.loads(line) for line in (trace_dir / "trace.jsonl").read_text().splitlines()]
    charts, cells = open_report(browser, out)
    by_name = {c["chart"]: c for c in charts}
    assert set(by_name) == {"sequence", "message-sizes"}
    sizes = by_name["message-sizes"]
    assert sum(sizes["points"]) == len(entries)
    for entry in entries:
        assert cells[f"trace/{entry['seq']}/bytes"]["value"] == entry["bytes"]
    assert by_name["sequence"]["drawn"] == len(by_name["sequence"]["names"]) > 0
    assert_not_blank(browser)


def test_plan_report_draws_every_value_tried_with_the_target(browser, tmp_path):
    evidence = [
        {
            "topology.sts.nodes": nodes,
            "strategy": strategy,
            "p99_ms": 900.0 / nodes + offset,
            "meets": 900.0 / nodes + offset <= 200,
            "throughput_per_s": 95.0,
            "completed": 950,
        }
        for nodes in (1, 2, 4, 8, 5)
        for strategy, offset in (("bearer", 0.0), ("sct", 20.0))
    ]
    plan = {
        "target": "p99_ms<=200",
        "vary": "topology.sts.nodes",
        "assumption": "p99_ms improves monotonically as topology.sts.nodes grows",
        "answer": 5,
        "runs": 5,
        "evidence": evidence,
        "note": "topology.sts.nodes=4 fails",
        "scenario": {"name": "sts-farm", "strategies": ["bearer", "sct"]},
    }
    (tmp_path / "plan").mkdir()
    (tmp_path / "plan" / "plan.json").write_text(json.dumps(plan))
    charts, cells = open_report(browser, write_report([tmp_path / "plan"], tmp_path / "p.html"))
    (chart,) = charts
    assert chart["chart"] == "plan"
    assert chart["names"] == ["bearer", "sct", "target p99_ms<=200"]
    assert chart["points"] == [5, 5, 2]
    assert [cells[f"row{i}/p99_ms"]["value"] for i in range(len(evidence))] == [
        pytest.approx(row["p99_ms"]) for row in evidence
    ]
