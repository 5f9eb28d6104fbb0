"""``wssim sweep``: a grid over scenario keys, its tidy table and plots."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sim.cli.common import (
    cell,
    check_positive,
    console,
    fidelity_arg,
    load,
    progress_bar,
    scenario_args,
    stdout,
)
from sim.cli.report import finish, report_args
from sim.errors import ScenarioError


def register(command) -> None:
    """Add ``sweep`` to the subcommands."""
    sweep = command(
        "sweep",
        "run a grid over scenario keys, each point with its replications; write sweep.csv "
        "(one row per point and strategy) and plots/; resumes an interrupted sweep",
    )
    scenario_args(sweep)
    sweep.add_argument(
        "--param",
        action="append",
        required=True,
        metavar="key=v1,v2,...",
        help="a swept key and its values, each read as TOML (repeatable; the grid is the "
        "product), e.g. --param workload.rate=10,20,40 --param topology.sts.nodes=1,2",
    )
    sweep.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="sweep directory, e.g. --out sweeps/rate; points already done there "
        "(DIR/points/*.json) are not run again",
    )
    sweep.add_argument(
        "--backend",
        choices=("local", "dask"),
        default="local",
        help="local: a process pool, one process per core (default); dask: Dask "
        "distributed, a LocalCluster of one-thread workers or the cluster at --scheduler; "
        "e.g. --backend dask",
    )
    sweep.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="address of a running Dask scheduler (with --backend dask), "
        "e.g. --scheduler tcp://10.0.0.5:8786",
    )
    sweep.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes (local) or LocalCluster workers (dask); default: one per core, "
        "e.g. --workers 2",
    )
    fidelity_arg(sweep)
    report_args(sweep)
    sweep.set_defaults(handler=cmd_sweep)


def cmd_sweep(args) -> int:
    """``wssim sweep``: the grid, its tidy table (sweep.csv) and plots."""
    from sim.report.outputs import write_csv, write_json
    from sim.report.plots import sweep_plots
    from sim.sweep import grid, parse_param, run_sweep

    params = [parse_param(p) for p in args.param]
    if len({k for k, _ in params}) != len(params):
        raise ScenarioError("--param", "a key is swept twice")
    if args.scheduler and args.backend != "dask":
        raise ScenarioError("--scheduler", "goes with --backend dask")
    check_positive(args.workers, "--workers", high=4096)
    data, _, _ = load(args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ScenarioError("--out", f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    progress = progress_bar()
    task = progress.add_task("sweep", total=len(grid(params)), detail="")
    started = time.monotonic()

    def on_point(done: int, total: int) -> None:
        progress.update(task, completed=done, detail=f"{done}/{total} points")
        if not progress.live.is_started and time.monotonic() - started > 1.0:
            progress.start()

    try:
        rows, ran = run_sweep(
            data,
            params,
            out,
            backend=args.backend,
            scheduler=args.scheduler,
            workers=args.workers,
            fidelity=args.fidelity,
            on_point=on_point,
        )
    finally:
        progress.stop()
    keys = [k for k, _ in params]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    write_csv(out / "sweep.csv", rows, columns)
    write_json(
        out / "sweep.json",
        {
            "scenario": data,
            "params": dict(params),
            "fidelity": args.fidelity,
            "points": len(grid(params)),
            "run_now": ran,
            "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        },
    )
    sweep_plots(out, rows, keys, fmt=args.plot_format)
    finish(args, out)
    shown = [*keys, "strategy", "offered_per_s", "throughput_per_s", "max_messages_per_s"]
    shown += ["bottleneck", "p50_ms", "p99_ms", "failed"]
    from rich.table import Table

    table = Table(title=f"sweep over {', '.join(keys)} ({ran} points run now)")
    for column in shown:
        table.add_column(
            column, justify="left" if column in ("strategy", "bottleneck") else "right"
        )
    for row in rows:
        table.add_row(*[cell(row.get(c, "")) for c in shown])
    stdout().print(table)
    console.print(f"tidy table in {out}/sweep.csv, plots in {out}/plots/")
    return 0
