"""The compare table shows each strategy's capacity beside its throughput and offered load,
marks the latencies of an unstable run, and a capacity table gives the service demands."""

from __future__ import annotations

from rich.console import Console

from sim.report.table import capacity_table, comparison_table


def _summary() -> dict:
    stats = {
        "app_messages": 6000,
        "completed": 6000,
        "failed": 0,
        "completed_in_window": 2500,
        "throughput_per_s": 250.0,
        "offered_per_s": 600.0,
        "in_flight_at_end": 3500,
        "latency_ms": {
            "mean": 9000.0,
            "p50": 9000.0,
            "p95": 15000.0,
            "p99": 16000.0,
            "max": 17000.0,
            "count": 6000,
            "unstable": True,
        },
        "bytes_per_app_message": {"request": 4674.0, "response": 2398.0, "token_service": 7198.0},
        "sts_requests": 6000,
        "crypto_ops_per_app_message": {"rsa_sign": 1.0},
        "roles": {"sts": {"utilization": 0.2}},
        "faults": {},
        "capacity": {
            "bottleneck": "sts.hsm",
            "max_messages_per_s": 250.0,
            "demand_ms": {"sts": {"cores": 0.695, "hsm": 4.0}, "links": {"client-sts": 0.392}},
        },
    }
    return {
        "scenario": "sts-farm",
        "fidelity": "replay",
        "seed": 1,
        "replications": 1,
        "measured_s": 10.0,
        "strategies": {"bearer-per-message": stats},
    }


def _text(table) -> str:
    console = Console(width=400, record=True)
    console.print(table)
    return console.export_text()


def test_the_compare_table_shows_capacity_offered_load_and_unstable_latencies():
    text = _text(comparison_table(_summary()))
    for header in ("msgs/s", "offered/s", "capacity/s", "bottleneck"):
        assert header in text
    row = next(line for line in text.splitlines() if "bearer-per-message" in line)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells[:5] == ["bearer-per-message", "250.0", "600.0", "250.0", "sts.hsm"]
    assert cells[5] == "9000.00!" and cells[7] == "16000.00!"
    assert "! unstable" in text and "bearer-per-message 6,000" in text


def test_a_stable_run_has_no_mark():
    summary = _summary()
    summary["strategies"]["bearer-per-message"]["latency_ms"]["unstable"] = False
    text = _text(comparison_table(summary))
    assert "!" not in text


def test_the_capacity_table_gives_the_demand_of_every_resource():
    text = _text(capacity_table(_summary()))
    row = next(line for line in text.splitlines() if "bearer-per-message" in line).split()
    # strategy, bottleneck, bound, offered, throughput, in flight, then the demands in order
    assert row[:6] == ["bearer-per-message", "sts.hsm", "250.0", "600.0", "250.0", "3,500"]
    assert row[6:] == ["0.392", "0.695", "4.000"]
    assert "links client-sts" in text and "sts hsm" in text
