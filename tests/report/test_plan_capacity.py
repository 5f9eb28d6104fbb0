"""``plan`` skips the values whose capacity bound, predicted from the service demands of a
run, is below the offered load: they cannot meet any target, and running them is wasted."""

from __future__ import annotations

from sim.sweep import capacity_bound, plan, summary_rows

DATA = {
    "strategies": ["bearer-per-message"],
    "workload": {"rate": 600.0},
    "topology": {"sts": {"nodes": 1, "cores": 2, "hsm_units": 1, "hsm_op_ms": 4.0}},
}


def farm(calls: list[int]):
    """A model of sts-farm: each STS node signs 250 tokens/s on its HSM, 600 are offered;
    p99 meets 200 ms from 4 nodes on."""

    def run_point(data, assignments, fidelity):
        nodes = int(assignments["topology.sts.nodes"])
        calls.append(nodes)
        return [
            {
                "strategy": "bearer-per-message",
                "p99_ms": 150.0 if nodes >= 4 else 900.0,
                "completed": 100,
                "throughput_per_s": min(600.0, 250.0 * nodes),
                "offered_per_s": 600.0,
                "overloaded": nodes * 250.0 < 600.0,
                "demand_ms.sts.hsm": 4.0,
                "demand_ms.sts.cores": 0.7,
                "demand_ms.links.client-sts": 0.1,
            }
        ]

    return run_point


def test_plan_skips_the_values_below_the_capacity_bound_and_says_why():
    calls: list[int] = []
    result = plan(DATA, "p99_ms<=200", "topology.sts.nodes", high=16, run_point=farm(calls))
    assert result["answer"] == 4
    # 1 runs (its demands measured); 2 nodes carry 500 < 600: skipped; 4 runs, then 3 runs
    assert calls == [1, 4, 3]
    assert result["runs"] == 3 and result["skipped"] == 1
    skipped = [row for row in result["evidence"] if row.get("skipped")]
    assert [row["topology.sts.nodes"] for row in skipped] == [2]
    assert skipped[0]["meets"] is False and skipped[0]["bottleneck"] == "sts.hsm"
    assert skipped[0]["max_messages_per_s"] == 500.0
    assert "below the offered load 600.0/s" in skipped[0]["skipped"]


def test_a_bound_is_predicted_only_for_a_topology_key_with_measured_demands():
    row = {"offered_per_s": 600.0, "demand_ms.sts.hsm": 4.0, "demand_ms.sts.cores": 0.7}
    assert capacity_bound(DATA, "topology.sts.nodes", 3, row) == (750.0, "sts.hsm")
    assert capacity_bound(DATA, "topology.sts.hsm_units", 4, row) == (1000.0, "sts.hsm")
    assert capacity_bound(DATA, "workload.rate", 3, row) is None
    assert capacity_bound(DATA, "topology.sts.nodes", 3, {"offered_per_s": 600.0}) is None


def test_summary_rows_carry_the_capacity_and_the_demands():
    stats = {
        "app_messages": 10,
        "completed": 9,
        "failed": 1,
        "throughput_per_s": 3.0,
        "offered_per_s": 5.0,
        "in_flight_at_end": 4,
        "latency_ms": {"mean": 1, "p50": 1, "p95": 2, "p99": 3, "max": 4, "unstable": True},
        "bytes_per_app_message": {"request": 1.0, "response": 2.0, "token_service": 3.0},
        "sts_requests": 2,
        "roles": {},
        "capacity": {
            "bottleneck": "sts.hsm",
            "max_messages_per_s": 3.0,
            "demand_ms": {"sts": {"hsm": 4.0}, "links": {"client-sts": 0.1}},
        },
    }
    (row,) = summary_rows({"replications": 1, "strategies": {"sct": stats}}, {})
    assert row["offered_per_s"] == 5.0 and row["in_flight_at_end"] == 4
    assert row["max_messages_per_s"] == 3.0 and row["bottleneck"] == "sts.hsm"
    assert row["demand_ms.sts.hsm"] == 4.0 and row["demand_ms.links.client-sts"] == 0.1
    assert row["overloaded"] is True  # unstable latencies meet no target
