"""Output writers, plots, the comparison table and the terminal sequence diagram, on result
dicts shaped like the engine's (engine_api: SimulationResult)."""

from __future__ import annotations

import csv
import hashlib
import json
from types import SimpleNamespace

import matplotlib.image
import pytest
from rich.console import Console

from sim.errors import ScenarioError
from sim.report.outputs import (
    MESSAGE_COLUMNS,
    NODE_COLUMNS,
    prepare_directory,
    write_results,
)
from sim.report.plots import plan_plot, sweep_plots, write_plots
from sim.report.table import comparison_table
from sim.report.trace import TraceWriter, diagram_lines, short_action


def strategy_stats(latency: float, rsa_sign: float, sts_util: float) -> dict:
    return {
        "app_messages": 100,
        "completed": 98,
        "failed": 2,
        "throughput_per_s": 9.8,
        "latency_ms": {
            "mean": latency,
            "p50": latency * 0.9,
            "p95": latency * 1.5,
            "p99": latency * 2,
            "max": latency * 3,
        },
        "bytes_per_app_message": {"request": 6000.0, "response": 5000.0, "token_service": 800.0},
        "sts_requests": 20,
        "roles": {
            "sts": {
                "nodes": 2,
                "cores": 4,
                "utilization": sts_util,
                "requests": 20,
                "mean_service_ms": 3.0,
            },
            "provider": {
                "nodes": 1,
                "cores": 2,
                "utilization": 0.1,
                "requests": 100,
                "mean_service_ms": 1.0,
            },
        },
        "crypto_ops_per_app_message": {
            "rsa_sign": rsa_sign,
            "rsa_verify": 0.5,
            "hmac": 4.0,
            "c14n": 10.0,
        },
        "faults": {"wsse:MessageExpired": 2},
    }


def fake_result(partial: bool = False) -> SimpleNamespace:
    summary = {
        "scenario": "fake",
        "seed": 3,
        "fidelity": "replay",
        "replications": 1,
        "profile": "default",
        "version": "0.1.0",
        "measured_s": 10.0,
        "strategies": {
            "x509": strategy_stats(40.0, 2.0, 0.0),
            "sct": strategy_stats(30.0, 0.25, 0.3),
        },
    }
    messages = [
        {
            "replication": 0,
            "strategy": name,
            "class": "default",
            "session": i // 5,
            "seq": i % 5,
            "start_s": i * 0.1,
            "end_s": i * 0.1 + 0.04,
            "latency_ms": 40.0 + i,
            "request_bytes": 6000,
            "response_bytes": 5000,
            "token_service_bytes": 0,
            "sts_exchanges": 0,
            "retries": 0,
            "recoveries": 0,
            "ok": True,
            "fault": "",
        }
        for name in ("x509", "sct")
        for i in range(50)
    ]
    nodes = [
        {
            "replication": 0,
            "node": "sts-0",
            "role": "sts",
            "strategy": "sct",
            "cores": 2,
            "utilization": 0.3,
            "requests": 20,
            "mean_service_ms": 3.0,
            "mean_queue_len": 0.1,
            "busy_s": 6.0,
        }
    ]
    links = [
        {"replication": 0, "strategy": "sct", "link": "client-sts", "bytes": 1, "utilization": 0.0}
    ]
    timeseries = [
        {
            "replication": 0,
            "strategy": name,
            "node": "sts-*",
            "role": "sts",
            "t_start_s": k * 0.1,
            "t_end_s": (k + 1) * 0.1,
            "utilization": 0.3 + 0.5 * (k > 50),
            "mean_queue_len": 0.1 * k,
        }
        for name in ("x509", "sct")
        for k in range(100)
    ]
    return SimpleNamespace(
        summary=summary,
        messages=messages,
        nodes=nodes,
        links=links,
        timeseries=timeseries,
        replications=[],
        partial=partial,
        wall_s=1.25,
        seed_entropy=3,
    )


def test_write_results_writes_summary_csvs_and_manifest_with_scenario_hash(tmp_path):
    result = fake_result()
    text = b'name = "fake"\n'
    write_results(tmp_path, result, {"name": "fake"}, text, ["wssim", "run", "x.toml"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["strategies"]["sct"]["latency_ms"]["p99"] == 60.0
    assert summary["partial"] is False
    with (tmp_path / "messages.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == MESSAGE_COLUMNS
    assert len(rows) == 100
    with (tmp_path / "nodes.csv").open() as handle:
        assert list(next(csv.DictReader(handle))) == NODE_COLUMNS
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["scenario_sha256"] == hashlib.sha256(text).hexdigest()
    assert manifest["scenario"] == {"name": "fake"}
    assert manifest["wall_s"] == 1.25
    assert manifest["partial"] is False
    assert manifest["command"] == ["wssim", "run", "x.toml"]
    for key in ("version", "seed_entropy", "profile", "fidelity"):
        assert key in manifest


def test_partial_result_is_marked_partial_in_summary_and_manifest(tmp_path):
    write_results(tmp_path, fake_result(partial=True), {}, b"", ["wssim"])
    assert json.loads((tmp_path / "summary.json").read_text())["partial"] is True
    assert json.loads((tmp_path / "manifest.json").read_text())["partial"] is True


def test_prepare_directory_refuses_existing_results_unless_forced(tmp_path):
    (tmp_path / "summary.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ScenarioError) as info:
        prepare_directory(tmp_path, force=False)
    assert info.value.key == "--out" and "--force" in info.value.message
    prepare_directory(tmp_path, force=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"  # never deletes what it did not write


def test_prepare_directory_accepts_a_directory_without_results(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert prepare_directory(tmp_path / "new", force=False).is_dir()
    assert prepare_directory(tmp_path, force=False) == tmp_path


def test_run_plots_are_written_as_readable_pngs(tmp_path):
    result = fake_result()
    written = write_plots(
        tmp_path, result.summary, result.messages, warmup_s=1.0, timeseries=result.timeseries
    )
    names = sorted(p.name for p in written)
    assert names == [
        "bytes_per_message.png",
        "crypto_ops.png",
        "latency_cdf.png",
        "load_over_time.png",
        "utilization.png",
    ]
    for path in written:
        image = matplotlib.image.imread(path)
        assert image.shape[0] >= 400 and image.shape[1] >= 600
        assert image.std() > 0.01  # something was drawn


def test_no_plots_when_no_strategy_finished(tmp_path):
    summary = {**fake_result().summary, "strategies": {}}
    assert write_plots(tmp_path, summary, []) == []


def test_sweep_and_plan_plots(tmp_path):
    rows = [
        {
            "workload.rate": rate,
            "strategy": s,
            "throughput_per_s": rate * 5.0,
            "p99_ms": 10.0 + rate,
        }
        for rate in (10, 20, 40)
        for s in ("x509", "sct")
    ]
    assert {p.name for p in sweep_plots(tmp_path, rows, ["workload.rate"])} == {
        "throughput.png",
        "p99.png",
    }
    plan = {
        "vary": "topology.sts.nodes",
        "target": "p99_ms<=200",
        "answer": 3,
        "runs": 3,
        "evidence": [
            {"topology.sts.nodes": n, "strategy": "sct", "p99_ms": 900.0 / n} for n in (1, 2, 3)
        ],
    }
    plan_plot(tmp_path / "plan.png", plan, "p99_ms")
    assert matplotlib.image.imread(tmp_path / "plan.png").shape[0] > 100


def test_comparison_table_shows_every_strategy_and_sums_rsa_operations():
    console = Console(record=True, width=250)
    console.print(comparison_table(fake_result().summary))
    text = console.export_text()
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    assert set(lines) >= {"x509", "sct"}
    assert "2.50" in lines["x509"]  # rsa_sign 2 + rsa_verify 0.5
    assert "0.75" in lines["sct"]
    assert "30.0%" in lines["sct"] and "10.0%" in lines["sct"]  # sts and provider CPU
    header = next(line for line in text.splitlines() if "strategy" in line)
    assert "sts CPU" in header and "provider CPU" in header
    assert "intermediary CPU" not in header  # no strategy here uses one
    assert "MessageExpired" in lines["sct"]


@pytest.mark.parametrize(
    ("action", "short"),
    [
        ("http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTR/SCT/Cancel", "RSTR/SCT/Cancel"),
        ("http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue", "RST/Issue"),
        ("urn:wssim:app:Process", "Process"),
    ],
)
def test_short_action_keeps_the_distinguishing_part(action, short):
    assert short_action(action) == short


def test_terminal_diagram_draws_one_arrow_per_message_in_its_direction():
    entries = [
        {"seq": 1, "t": 0.1, "from": "client-0", "to": "sts-0", "action": "a:RST", "bytes": 10},
        {"seq": 2, "t": 0.2, "from": "sts-0", "to": "client-0", "action": "a:RSTR", "bytes": 20},
        {
            "seq": 3,
            "t": 0.3,
            "from": "client-0",
            "to": "provider-0",
            "action": "a:Process",
            "bytes": 30,
            "fault": "wsse:FailedCheck",
        },
    ]
    lines = diagram_lines(entries)
    header = lines[0][0]
    assert header.split() == ["client-0", "sts-0", "provider-0"]  # lanes by role
    arrows = [text for text, _ in lines[2::2]]
    assert "->|" in arrows[0] and "<" not in arrows[0]
    assert "|<-" in arrows[1] and ">" not in arrows[1]
    assert "1. RST (10 B)" in lines[1][0]
    assert "FAULT wsse:FailedCheck" in lines[5][0] and lines[5][1] == "red"
    assert arrows[2].count("-") > 2 * arrows[0].count("-")  # spans two lanes


def test_trace_writer_writes_files_trace_and_deduplicated_keylog(tmp_path):
    writer = TraceWriter(tmp_path)
    writer.log("sct-secret", "urn:uuid:1", b"\x01" * 32)
    writer.on_message(1, 0.5, "client-0", "provider-0", "urn:x:Process", b"<a/>", None)
    writer.log("derived-key", "DK-1", b"\x02" * 16)
    writer.log("derived-key", "DK-1", b"\x02" * 16)
    writer.on_message(
        2, 0.6, "provider-0", "client-0", "urn:x:Fault", b"<f/>", "wsse:InvalidSecurity"
    )
    writer.close()
    trace = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert trace[0] == {
        "seq": 1,
        "t": 0.5,
        "from": "client-0",
        "to": "provider-0",
        "action": "urn:x:Process",
        "bytes": 4,
        "file": "messages/0001-client-0-to-provider-0.xml",
    }
    assert trace[1]["fault"] == "wsse:InvalidSecurity"
    assert (tmp_path / trace[1]["file"]).read_bytes() == b"<f/>"
    keys = [json.loads(line) for line in (tmp_path / "keylog.jsonl").read_text().splitlines()]
    assert [(k["kind"], k["id"], k["seq"]) for k in keys] == [
        ("sct-secret", "urn:uuid:1", 1),
        ("derived-key", "DK-1", 2),
    ]
    assert keys[0]["key"] == "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
    writer.plot_diagram(tmp_path / "sequence.png", title="x")
    assert (tmp_path / "sequence.png").stat().st_size > 1000
