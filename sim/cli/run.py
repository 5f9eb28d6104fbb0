"""``wssim run`` and ``wssim compare``: one scenario, its results and its table."""

from __future__ import annotations

import sys
from pathlib import Path

from sim.cli.common import (
    check_positive,
    console,
    load,
    out_args,
    run_args,
    scenario_args,
    simulate_with_progress,
    stdout,
)
from sim.cli.report import check_report_args, finish, report_args
from sim.errors import ScenarioError


def register(command) -> None:
    """Add ``run`` and ``compare`` to the subcommands (``command(name, text)`` makes one)."""
    run = command(
        "run",
        "run a scenario and write summary.json, messages.csv, nodes.csv, links.csv, "
        "manifest.json and plots/*.png into --out",
    )
    scenario_args(run)
    run_args(run)
    out_args(run, "results directory")
    report_args(run)
    run.set_defaults(handler=cmd_run)

    compare = command(
        "compare",
        "run a scenario and print the side-by-side table of its strategies (latency, "
        "throughput, bytes, STS requests, RSA operations, utilization, faults)",
    )
    scenario_args(compare)
    run_args(compare)
    out_args(compare, "also write the results (as 'wssim run' does) there", required=False)
    report_args(compare)
    compare.set_defaults(handler=lambda args: cmd_run(args, compare=True))


def cmd_run(args, compare: bool = False) -> int:
    """``wssim run`` and ``wssim compare``."""
    check_positive(args.replications, "--replications", high=1000)
    check_positive(args.seed, "--seed", low=0, high=2**63)
    check_positive(args.workers, "--workers", high=256)
    if args.scheduler and args.backend != "dask":
        raise ScenarioError("--scheduler", "goes with --backend dask")
    check_report_args(args)
    data, text, scenario = load(args)
    # imported once the scenario is valid: a refused one is answered at once
    from sim.report.outputs import prepare_directory, write_results
    from sim.report.plot_helper import start_plot_helper

    out = prepare_directory(Path(args.out), args.force) if args.out else None
    # the plots' process imports matplotlib while this one simulates
    helper = start_plot_helper() if out is not None else None
    try:
        result = simulate_with_progress(scenario, args)
        if out is not None:
            plots = dict(warmup_s=scenario.run.warmup_s, timeseries=result.timeseries)
            plots["fmt"] = args.plot_format
            command = [Path(sys.argv[0]).name, *sys.argv[1:]]
            if helper is None:
                from sim.report.plots import write_plots

                write_results(out, result, data, text, command)
                write_plots(out, result.summary, result.messages, **plots)
            else:  # the plots drawn there while the other outputs are written here
                helper.start(out, result.summary, result.messages, **plots)
                write_results(out, result, data, text, command)
                helper.wait()
            finish(args, out)
    finally:
        if helper is not None:
            helper.close()
    from sim.report.table import print_comparison

    if compare or out is None:
        print_comparison(result.summary, stdout())
    for warning in result.summary.get("warnings", []):
        console.print(f"[yellow]warning: {warning}", highlight=False)
    if result.partial:
        console.print("[yellow]interrupted: the results hold what was done, marked partial")
    if out is not None:
        console.print(
            f"results in {out}/: summary.json, replications.csv, messages.csv, nodes.csv, "
            "links.csv, timeseries.csv, manifest.json, results.sqlite, plots/"
        )
    return 130 if result.partial else 0
