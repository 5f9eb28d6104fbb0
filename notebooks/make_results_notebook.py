"""Write notebooks/query_a_sweep.ipynb (run from the repository root:
python notebooks/make_results_notebook.py): a question answered across a sweep with a few
lines of pandas on ``sim.results.load``. WSSIM_NOTEBOOK_SMALL=1 (the tests) shortens it."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

CELLS = [
    new_markdown_cell("""# Querying results with pandas: where does each strategy's tail break?

Every `wssim run`, `sweep` and `plan` writes its tables to `results.sqlite`, and
`sim.results.load(path)` returns them as pandas DataFrames — one run, a sweep, or every run
under a directory — with the scenario keys that vary (here the swept `workload.rate`) as
columns. The question: **as the offered load grows, how does each strategy's p99 latency and
its busiest server's CPU grow, and at which load does the tail pass 150 ms?**"""),
    new_code_cell("""import os
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

SMALL = os.environ.get("WSSIM_NOTEBOOK_SMALL") == "1"
ROOT = Path.cwd() if (Path.cwd() / "scenarios").is_dir() else Path.cwd().parent
sys.path.insert(0, str(ROOT))  # this checkout's wssim, whatever else is installed
import sim.results

RATES = "10,40" if SMALL else "10,20,40,80,120"
DURATION = 2 if SMALL else 30
workdir = tempfile.TemporaryDirectory()
out = Path(workdir.name) / "rate"
subprocess.run(
    [sys.executable, "-m", "sim.cli", "sweep", str(ROOT / "scenarios" / "sct-vs-per-message.toml"),
     "--set", 'strategies=["sct","x509","bearer-per-message"]',
     "--set", f"run.duration_s={DURATION}", "--set", "run.warmup_s=0.5",
     "--param", f"workload.rate={RATES}", "--workers", "1", "--out", str(out)],
    check=True, capture_output=True, cwd=ROOT,
)
results = sim.results.load(out)
results.varying"""),
    new_markdown_cell(
        """One row per sweep point and strategy; the swept key is a column like any other."""
    ),
    new_code_cell("""s = results.strategies
s[["workload.rate", "strategy", "throughput_per_s", "p50_ms", "p99_ms", "overloaded"]]"""),
    new_markdown_cell("""p99 latency per strategy (columns) against the offered load (rows), and the busiest
server role's CPU (intermediary, STS or provider, whichever is highest)."""),
    new_code_cell("""p99 = s.pivot_table(index="workload.rate", columns="strategy", values="p99_ms")
cpu_columns = [c for c in s.columns if c.startswith("utilization_")]
s = s.assign(busiest_cpu=s[cpu_columns].max(axis=1) * 100)
cpu = s.pivot_table(index="workload.rate", columns="strategy", values="busiest_cpu")
p99.round(1)"""),
    new_code_cell("""# the lowest load at which each strategy's p99 passes 150 ms (NaN: never, of the loads tried)
(p99 > 150).idxmax().where((p99 > 150).any())"""),
    new_code_cell("""fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
p99.plot(ax=left, marker="o", logy=True)
left.set(xlabel="offered load, workload.rate (sessions/s)", ylabel="p99 latency (ms, log scale)",
         title="p99 latency against offered load")
cpu.plot(ax=right, marker="o")
right.set(xlabel="offered load, workload.rate (sessions/s)",
          ylabel="busiest role's CPU (% of its cores)", title="CPU of the busiest server role")
for ax in (left, right):
    ax.grid(True, which="both", alpha=0.3)
fig.tight_layout()"""),
    new_code_cell("""workdir.cleanup()"""),
]


def main() -> None:
    notebook = new_notebook(cells=CELLS)
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nbformat.write(notebook, HERE / "query_a_sweep.ipynb")


if __name__ == "__main__":
    main()
