"""Write the analysis notebooks (run from the repository root: python notebooks/make_notebooks.py).

The notebooks are executed by the test suite with WSSIM_NOTEBOOK_SMALL=1, which shortens the
simulated runs; unset it for the full-size analysis."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

COMMON = """import os
import sys
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

SMALL = os.environ.get("WSSIM_NOTEBOOK_SMALL") == "1"
ROOT = Path.cwd() if (Path.cwd() / "scenarios").is_dir() else Path.cwd().parent
sys.path.insert(0, str(ROOT))  # this checkout's wssim, whatever else is installed

from sim.engine import apply_overrides, load_scenario, simulate
from sim.engine.scenario import read_scenario_file
DURATION = 8.0 if SMALL else 60.0
"""

SCT = [
    new_markdown_cell("""# Does a SecureConversation session pay for itself?

A WS-SecureConversation session costs an extra round trip and an asymmetric bootstrap (RST/RSTR
signed and encrypted with X.509) before the first application message; after that every
message is protected with keys derived from the context secret: HMAC and AES, no RSA. Per-message
strategies pay public-key work on every call instead. This notebook measures, with real
messages, **from how many messages per session the SCT wins**, in latency and in server CPU.

Every number below comes from `wssim` runs: the messages are built, signed, encrypted and
verified for real (their ledgers recorded once and replayed), and the CPU costs are those
measured on this machine (`sim/data/default_profile.json`)."""),
    new_code_cell(
        COMMON
        + """
base = read_scenario_file(ROOT / "scenarios" / "sct-vs-per-message.toml")
strategies = ["sct", "x509", "bearer-per-message", "hok-symmetric"]
sizes = [1, 2, 5, 10, 20]
rows = []
for n in sizes:
    data = apply_overrides(base, [f"workload.messages_per_session={n}",
                                  f"workload.rate={100.0 / n}",
                                  f"run.duration_s={DURATION}", "run.warmup_s=2",
                                  f"strategies={strategies!r}".replace("'", '"')])
    summary = simulate(load_scenario(data)).summary
    for name, stats in summary["strategies"].items():
        cpu = sum(r["utilization"] * r["cores"] for r in stats["roles"].values())
        rows.append({"messages": n, "strategy": name,
                     "latency_ms": stats["latency_ms"]["mean"],
                     "server_cpu_ms_per_msg": cpu / stats["throughput_per_s"] * 1000})
len(rows)"""
    ),
    new_markdown_cell("""## Latency and server CPU per application message

The offered load is kept at 100 application messages per second whatever the session
length, so the columns compare like with like."""),
    new_code_cell("""fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
for name in strategies:
    points = [r for r in rows if r["strategy"] == name]
    left.plot([r["messages"] for r in points], [r["latency_ms"] for r in points], marker="o", label=name)
    right.plot([r["messages"] for r in points], [r["server_cpu_ms_per_msg"] for r in points], marker="o", label=name)
left.set(xscale="log", xlabel="application messages per session", ylabel="mean latency (ms)",
         title="Latency per message")
right.set(xscale="log", yscale="log", xlabel="application messages per session",
          ylabel="server CPU per message (ms, all roles)", title="Server CPU per message")
plain = FuncFormatter(lambda v, _: f"{v:g}")
for ax in (left, right):
    ax.xaxis.set_major_formatter(plain)
    ax.set_xticks(sizes)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
right.yaxis.set_major_formatter(plain)
right.yaxis.set_minor_formatter(plain)
fig.tight_layout()"""),
    new_code_cell("""def value(strategy, n, key):
    return next(r[key] for r in rows if r["strategy"] == strategy and r["messages"] == n)

for n in sizes:
    ratio = value("x509", n, "server_cpu_ms_per_msg") / value("sct", n, "server_cpu_ms_per_msg")
    print(f"{n:>2} messages/session: SCT latency {value('sct', n, 'latency_ms'):7.2f} ms "
          f"vs X.509 {value('x509', n, 'latency_ms'):7.2f} ms; X.509 costs {ratio:4.1f}x "
          f"the server CPU of SCT")"""),
    new_markdown_cell("""## Reading the result

(The figures quoted are those of the full-size run on this machine's cost profile; the
printed lines above are the ones to trust for the run you just made.)

* With **one call per session** the SCT loses on both counts against X.509: the bootstrap
  exchange adds a round trip (about twice X.509's latency on this 20 ms WAN) and its RSA key
  transports and signatures cost more server CPU than X.509's single signed-and-encrypted call.
* The server CPU crosses over at **about two messages per session**; from then on the
  bootstrap is amortized and every further message only needs two derived keys (P_SHA-1),
  one HMAC and AES on each side instead of four RSA operations: with twenty messages an SCT
  message costs the servers roughly a third of an X.509 one.
* Latency converges to X.509's as sessions grow but does not beat it here: the bootstrap
  round trip over the WAN weighs more than the CPU saved per message. On a LAN
  (`links.client-provider.latency_ms` low) or under load, where CPU turns into queueing, the
  SCT's lower cost shows in latency too.
* The token-service strategies (`bearer-per-message`, `hok-symmetric`) pay an STS round trip
  per token and move public-key work to the STS, which is what STS farm sizing has to absorb:
  see `sts_farm_capacity.ipynb`."""),
]

FARM = [
    new_markdown_cell("""# How many STS nodes for this load?

Per-message tokens put one signed assertion on the STS for every application message. In
`scenarios/sts-farm.toml` each STS node signs on one HSM that takes 4 ms a signature, so a
node cannot issue more than 250 tokens per second whatever its CPU. This notebook sweeps the
offered load for farms of one to four nodes, reads the STS utilization and service times off
the runs, then asks `wssim plan` for the smallest farm that keeps the p99 latency under
200 ms at the scenario's 600 sessions per second.

Every number comes from `wssim` runs: real messages (ledgers recorded once and replayed),
CPU costs measured on this machine, the HSM as a queue of its own on each STS node."""),
    new_code_cell(
        COMMON
        + """
from sim.sweep import plan, point_rows

base = read_scenario_file(ROOT / "scenarios" / "sts-farm.toml")
base = apply_overrides(base, [f"run.duration_s={4.0 if SMALL else 30.0}", "run.warmup_s=1"])
hsm_ms = base["topology"]["sts"]["hsm_op_ms"]
farms = (1, 2, 3) if SMALL else (1, 2, 3, 4)
rates = [100, 300, 500] if SMALL else [100, 200, 300, 400, 500, 600, 700, 800, 900]
rows = []
for nodes in farms:
    for rate in rates:
        rows += point_rows(base, {"topology.sts.nodes": str(nodes), "workload.rate": str(rate)}, None)
print(f"{len(rows)} runs; HSM time per signature: {hsm_ms} ms, "
      f"so at most {1000 / hsm_ms:.0f} tokens/s per STS node")"""
    ),
    new_markdown_cell("""## Latency and utilization against offered load

Left: the p99 latency of an application message (token request to the STS, then the call to
the provider). Right: the CPU utilization of the STS farm; the HSM, not the CPU, is the
bottleneck, so the knee of each curve sits at 250 tokens/s times the number of nodes (dotted
lines) while the CPU is still far from busy."""),
    new_code_cell("""fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
for nodes in farms:
    points = [r for r in rows if r["topology.sts.nodes"] == nodes]
    line, = left.plot([r["workload.rate"] for r in points], [r["p99_ms"] for r in points],
                      marker="o", label=f"{nodes} STS node(s)")
    left.axvline(nodes * 1000 / hsm_ms, color=line.get_color(), linestyle=":", alpha=0.7)
    right.plot([r["workload.rate"] for r in points], [r["utilization_sts"] * 100 for r in points],
               marker="o", label=f"{nodes} STS node(s)")
left.set(xlabel="offered load (sessions/s, one message each)", ylabel="p99 latency (ms, log scale)",
         yscale="log", title="p99 latency against load (dotted: HSM capacity of the farm)")
right.set(xlabel="offered load (sessions/s, one message each)", ylabel="STS CPU utilization (%)",
          title="STS CPU utilization (the HSM saturates first)")
left.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
left.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if str(v)[0] in "25" else ""))
for ax in (left, right):
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
fig.tight_layout()"""),
    new_markdown_cell("""## The knee: throughput against offered load

Throughput is what completes inside the measured window (goodput): it follows the offered
load up to the capacity bound of the farm's bottleneck, then stays flat while the rest piles
up in flight. Every run measures that bound itself (`capacity` in `summary.json`, the
utilization law's c / D): the service demand D of one application message on each resource,
from which the resource with the smallest c / D is the bottleneck. Dashed: each farm's
bound; dotted: throughput equal to the offered load."""),
    new_code_cell("""fig, ax = plt.subplots(figsize=(7, 4.5))
for nodes in farms:
    points = [r for r in rows if r["topology.sts.nodes"] == nodes]
    line, = ax.plot([r["offered_per_s"] for r in points], [r["throughput_per_s"] for r in points],
                    marker="o", label=f"{nodes} STS node(s)")
    ax.axhline(points[0]["max_messages_per_s"], color=line.get_color(), linestyle="--", alpha=0.6)
top = max(r["offered_per_s"] for r in rows)
ax.plot([0, top], [0, top], color="grey", linestyle=":", label="throughput = offered load")
ax.set(xlabel="offered load (application messages/s)",
       ylabel="throughput (messages/s completed in the window)",
       title="The knee of each farm at its capacity bound c / D (dashed)")
ax.grid(True, alpha=0.3)
ax.legend()
fig.tight_layout()"""),
    new_code_cell("""# The capacity table: service demand per application message (ms) and the bound c / D.
demand = sorted({k for r in rows for k in r if k.startswith("demand_ms.")})
print(f"{'nodes':>5}  {'bottleneck':<10} {'max msg/s':>9}  " + "  ".join(k[10:] for k in demand))
for nodes in farms:
    r = next(r for r in rows if r["topology.sts.nodes"] == nodes)
    print(f"{nodes:>5}  {r['bottleneck']:<10} {r['max_messages_per_s']:>9.1f}  "
          + "  ".join(f"{r.get(k, 0):>{len(k) - 10}.3f}" for k in demand))"""),
    new_code_cell("""# The highest load each farm carried with p99 under 200 ms, against its HSM capacity.
for nodes in farms:
    ok = [r["workload.rate"] for r in rows if r["topology.sts.nodes"] == nodes and r["p99_ms"] <= 200]
    print(f"{nodes} node(s): p99 <= 200 ms up to {max(ok) if ok else 'none'} sessions/s "
          f"of the loads tried; HSM capacity {nodes * 1000 / hsm_ms:.0f} tokens/s")"""),
    new_markdown_cell("""## Capacity planning

`plan` searches the smallest number of STS nodes meeting the target at the scenario's load:
an exponential search (1, 2, 4, ...) until the target is met, then a binary search below it.
A farm whose capacity bound, predicted from the demands the runs measured, is below the
offered load is not run at all: it is listed as skipped, with the reason.
It assumes more nodes never make the tail worse, which holds for a round-robin farm like this
one; the evidence table lists every run so the assumption can be checked."""),
    new_code_cell("""target_load = apply_overrides(base, ["workload.rate=300"] if SMALL else [])
load = target_load["workload"]["rate"]
result = plan(target_load, "p99_ms<=200", "topology.sts.nodes", high=16)
print(f"at {load:g} sessions/s: smallest STS farm meeting p99 <= 200 ms: "
      f"{result['answer']} node(s), found in {result['runs']} runs")
for row in result["evidence"]:
    if row.get("skipped"):  # not run: its capacity bound is below the offered load
        print(f"  {row['topology.sts.nodes']} node(s): skipped, {row['skipped']}")
        continue
    print(f"  {row['topology.sts.nodes']} node(s): p99 {row['p99_ms']:9.1f} ms, "
          f"STS CPU {row['utilization_sts']:.1%}, meets: {row['meets']}")
print(f"Queueing estimate: the HSM load per node is {load * hsm_ms / 1000 / result['answer']:.0%} "
      f"with {result['answer']} node(s)")"""),
    new_markdown_cell("""## What an undersized farm looks like over time

An undersized farm is not just slow: its queue grows for as long as the load lasts, so its
latencies depend on how long the run is, and averages over the run describe nothing stable.
Each run records the load over time (`timeseries.csv`: per time bin, every farm's CPU and HSM
utilization and waiting lines), and its summary carries `warnings` when a farm is saturated
with a growing line. Here: one STS node against the farm `plan` found, at the same load."""),
    new_code_cell("""fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
for ax, nodes in zip(axes, (1, result["answer"])):
    run = simulate(load_scenario(apply_overrides(target_load, [f"topology.sts.nodes={nodes}"])))
    sts = [r for r in run.timeseries if r["node"] == "sts-*"]
    t = [(r["t_start_s"] + r["t_end_s"]) / 2 for r in sts]
    ax.plot(t, [r["hsm_queue_len"] for r in sts], label="tokens waiting for an HSM")
    ax.plot(t, [r["mean_queue_len"] for r in sts], label="jobs waiting for a core")
    ax.set(title=f"{nodes} STS node(s) at {load:g} sessions/s", xlabel="simulated time (s)",
           ylabel="mean waiting line", yscale="symlog")
    ax.grid(True, alpha=0.3)
    ax.legend()
    for warning in run.summary["warnings"] or ["no warning: the farm keeps up"]:
        print(f"{nodes} node(s): {warning}")
fig.tight_layout()"""),
    new_markdown_cell("""## Reading the result

The answer sits where the HSM utilization per node (offered tokens/s x 4 ms / nodes) falls
clearly below one: at full load a single-server queue's waiting time grows without bound, and
the p99 is far more sensitive than the mean. A farm sized on CPU alone would be wrong by a wide
margin here, which is why the HSM is modelled as its own queue. Change `hsm_units` (HSMs per
node) or `hsm_op_ms` in the scenario, or set `hsm_units = 0` to sign on the CPU, and run the
notebook again."""),
]


def write(name: str, cells) -> None:
    notebook = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(notebook, HERE / name)


if __name__ == "__main__":
    write("sct_vs_per_message.ipynb", SCT)
    write("sts_farm_capacity.ipynb", FARM)
