"""The ``wssim`` command: run, compare, sweep, plan, calibrate, trace."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from sim.errors import ScenarioError, UsageError, WssimError
from sim.protocol.api import STRATEGY_NAMES as STRATEGIES
from sim.sweep import METRICS

EXAMPLES = {
    "run": "wssim run scenarios/sct.toml --out results/sct --set workload.rate=50",
    "compare": "wssim compare scenarios/sct-vs-per-message.toml --set run.duration_s=30",
    "sweep": "wssim sweep scenarios/sts-farm.toml --param workload.rate=10,20,40 --out sweep/",
    "plan": "wssim plan scenarios/sts-farm.toml --target 'p99_ms<=200' "
    "--vary topology.sts.nodes --out plan/",
    "calibrate": "wssim calibrate --out my-machine.json",
    "trace": "wssim trace scenarios/sct.toml --strategy sct --sessions 1 --out trace/",
}
console = Console(stderr=True)


def _stdout() -> Console:
    """The console for results: a pipe or file gets whole tables, not folded columns."""
    out = Console()
    if not out.is_terminal:
        out.width = max(out.width, 200)
    return out


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (exit status 2), no usage dump."""

    def error(self, message: str) -> None:
        raise UsageError(message)


def _scenario_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scenario",
        metavar="SCENARIO",
        help="scenario file (TOML), e.g. scenarios/sct.toml",
    )
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="dotted.key=value",
        help="override a scenario value, read as a TOML value (repeatable), e.g. "
        '--set run.duration_s=60 --set \'strategies=["x509","sct"]\' '
        "--set topology.sts.nodes=4",
    )


def _run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seed", type=int, metavar="N", help="random seed, e.g. --seed 7 (default: run.seed)"
    )
    _fidelity_arg(parser)
    parser.add_argument(
        "--replications",
        type=int,
        metavar="R",
        help="independent replications; R > 1 adds 95%% confidence half-widths, "
        "e.g. --replications 5 (default: run.replications)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes running replications side by side (the results are the same as with "
        "one), e.g. --workers 2 (default: one per core)",
    )


def _fidelity_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fidelity",
        choices=("full", "replay"),
        help="full: every message built, signed, encrypted and verified for real; replay: "
        "ledgers and sizes recorded from real sessions, replayed (fast); "
        "e.g. --fidelity full (default: run.fidelity)",
    )


def _out_args(parser: argparse.ArgumentParser, what: str, required: bool = True) -> None:
    parser.add_argument(
        "--out", required=required, metavar="DIR", help=f"{what}, e.g. --out results/sct"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace the results already in DIR (without it wssim refuses, status 2); "
        "files wssim did not write are left alone",
    )


def build_parser() -> Parser:
    """The argument parser of every subcommand."""
    parser = Parser(
        prog="wssim",
        description="Simulate WS-Trust / WS-SecureConversation / WS-Security session "
        "strategies with real SOAP messages. 'wssim COMMAND --help' explains each command.",
        epilog="example: wssim compare scenarios/sct-vs-per-message.toml",
    )
    commands = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    commands.required = True

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=text, description=text, epilog=f"example: {EXAMPLES[name]}"
        )

    run = command(
        "run",
        "run a scenario and write summary.json, messages.csv, nodes.csv, links.csv, "
        "manifest.json and plots/*.png into --out",
    )
    _scenario_args(run)
    _run_args(run)
    _out_args(run, "results directory")

    compare = command(
        "compare",
        "run a scenario and print the side-by-side table of its strategies (latency, "
        "throughput, bytes, STS requests, RSA operations, utilization, faults)",
    )
    _scenario_args(compare)
    _run_args(compare)
    _out_args(compare, "also write the results (as 'wssim run' does) there", required=False)

    sweep = command(
        "sweep",
        "run a grid over scenario keys, each point with its replications; write sweep.csv "
        "(one row per point and strategy) and plots/; resumes an interrupted sweep",
    )
    _scenario_args(sweep)
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
    _fidelity_arg(sweep)

    plan = command(
        "plan",
        "find the smallest value of a key (e.g. STS nodes) that meets a target at the "
        "scenario's load, with few runs: exponential then binary search, which assumes "
        "the metric improves monotonically with the key",
    )
    _scenario_args(plan)
    plan.add_argument(
        "--target",
        required=True,
        metavar="METRIC<=VALUE",
        help="the goal every strategy of the scenario must meet, e.g. 'p99_ms<=200' or "
        "'throughput_per_s>=500' (metrics: " + ", ".join(METRICS) + "; operators <= < >= >)",
    )
    plan.add_argument(
        "--vary",
        required=True,
        metavar="KEY",
        help="the integer scenario key to size, e.g. --vary topology.sts.nodes "
        "or --vary topology.provider.cores",
    )
    plan.add_argument(
        "--max",
        type=int,
        default=256,
        metavar="N",
        help="largest value tried, e.g. --max 64 (default 256)",
    )
    _out_args(plan, "directory for plan.json and the evidence table plan.csv")
    _fidelity_arg(plan)

    calibrate = command(
        "calibrate",
        "measure a cost profile (fixed and per-byte cost of every ledger operation) on this "
        "machine with the real implementations; use it with profile.name = 'PROFILE.json'",
    )
    calibrate.add_argument(
        "--out", required=True, metavar="PROFILE.json", help="e.g. --out my-machine.json"
    )
    calibrate.add_argument(
        "--quick", action="store_true", help="fewer repetitions and sizes (a rough profile)"
    )
    calibrate.add_argument("--force", action="store_true", help="replace an existing file")

    trace = command(
        "trace",
        "run N sessions of one strategy in full fidelity and write the exact bytes of every "
        "message, trace.jsonl, a key log (keylog.jsonl, like SSLKEYLOGFILE) and every "
        "actor's certificate, then print the sequence diagram (also sequence.png)",
    )
    _scenario_args(trace)
    trace.add_argument(
        "--strategy",
        required=True,
        metavar="NAME",
        help="the strategy to trace, e.g. --strategy sct (one of " + ", ".join(STRATEGIES) + ")",
    )
    trace.add_argument(
        "--sessions",
        type=int,
        default=1,
        metavar="N",
        help="sessions to trace (1 to 1000), e.g. --sessions 2 (default 1)",
    )
    _out_args(trace, "trace directory")
    return parser


def load(args) -> tuple[dict, bytes, object]:
    """The scenario of ``args``: its data with ``--set`` applied, its file bytes, the model."""
    from sim.engine import apply_overrides, load_scenario
    from sim.engine.scenario import read_scenario_file

    data = apply_overrides(read_scenario_file(args.scenario), args.sets)
    text = Path(args.scenario).read_bytes()
    return data, text, load_scenario(data)


def _check_positive(value: int | None, flag: str, low: int = 1, high: int = 10**6) -> None:
    if value is not None and not low <= value <= high:
        raise ScenarioError(flag, f"must be between {low} and {high}; got {value}")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=24),
        TextColumn("{task.fields[detail]}"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _simulate(scenario, args, **kwargs):
    """``simulate`` with a progress bar (shown once the run has taken a second)."""
    from sim.engine import simulate

    progress = _progress()
    started = time.monotonic()
    task = None
    strategies = len(scenario.strategies)
    order = {name: i for i, name in enumerate(scenario.strategies)}

    def on_progress(info) -> None:
        nonlocal task
        if task is None:
            if time.monotonic() - started < 1.0:
                return
            progress.start()
            task = progress.add_task("simulating", total=1.0, detail="")
        # overall fraction: strategies run one after the other, replications within each
        runs = strategies * info.replications
        done = order.get(info.strategy, 0) * info.replications + info.replication - 1
        fraction = (done + min(info.sim_time_s / info.end_time_s, 1.0)) / runs
        progress.update(
            task,
            completed=fraction,
            description=info.strategy
            + (f" rep {info.replication}/{info.replications}" if info.replications > 1 else ""),
            detail=f"t={info.sim_time_s:,.0f}/{info.end_time_s:,.0f} s {info.app_messages:,} msgs",
        )

    try:
        return simulate(
            scenario,
            seed=getattr(args, "seed", None),
            fidelity=getattr(args, "fidelity", None),
            replications=getattr(args, "replications", None),
            progress=on_progress,
            workers=getattr(args, "workers", None) or os.cpu_count() or 1,
            **kwargs,
        )
    finally:
        if task is not None:
            progress.stop()


def cmd_run(args, compare: bool = False) -> int:
    """``wssim run`` and ``wssim compare``."""
    from sim.report.outputs import prepare_directory, write_results
    from sim.report.plots import write_plots
    from sim.report.table import print_comparison

    _check_positive(args.replications, "--replications", high=1000)
    _check_positive(args.seed, "--seed", low=0, high=2**63)
    _check_positive(args.workers, "--workers", high=256)
    data, text, scenario = load(args)
    out = prepare_directory(Path(args.out), args.force) if args.out else None
    result = _simulate(scenario, args)
    if out is not None:
        write_results(out, result, data, text, [Path(sys.argv[0]).name, *sys.argv[1:]])
        write_plots(
            out,
            result.summary,
            result.messages,
            warmup_s=scenario.run.warmup_s,
            timeseries=result.timeseries,
        )
    if compare or out is None:
        print_comparison(result.summary, _stdout())
    for warning in result.summary.get("warnings", []):
        console.print(f"[yellow]warning: {warning}", highlight=False)
    if result.partial:
        console.print("[yellow]interrupted: the results hold what was done, marked partial")
    if out is not None:
        console.print(
            f"results in {out}/: summary.json, messages.csv, nodes.csv, links.csv, "
            "timeseries.csv, manifest.json, plots/"
        )
    return 130 if result.partial else 0


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
    _check_positive(args.workers, "--workers", high=4096)
    data, _, _ = load(args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ScenarioError("--out", f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    progress = _progress()
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
    sweep_plots(out, rows, keys)
    shown = [*keys, "strategy", "throughput_per_s", "p50_ms", "p99_ms", "failed"]
    table = Table(title=f"sweep over {', '.join(keys)} ({ran} points run now)")
    for column in shown:
        table.add_column(column, justify="left" if column in ("strategy",) else "right")
    for row in rows:
        table.add_row(*[_cell(row.get(c, "")) for c in shown])
    _stdout().print(table)
    console.print(f"tidy table in {out}/sweep.csv, plots in {out}/plots/")
    return 0


def _cell(value) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def cmd_plan(args) -> int:
    """``wssim plan``: the smallest value of ``--vary`` meeting ``--target``."""
    from sim.report.outputs import write_csv, write_json
    from sim.report.plots import plan_plot
    from sim.sweep import parse_target, plan

    metric = parse_target(args.target)[0]
    _check_positive(args.max, "--max", high=10**6)
    data, _, _ = load(args)
    out = Path(args.out)
    if (out / "plan.json").exists() and not args.force:
        raise ScenarioError("--out", f"{out} already holds a plan; pass --force to replace it")
    out.mkdir(parents=True, exist_ok=True)

    def on_run(runs: int, value: int, passed: bool) -> None:
        verdict = "meets" if passed else "misses"
        console.print(f"run {runs}: {args.vary}={value} {verdict} {args.target}")

    result = plan(
        data, args.target, args.vary, high=args.max, fidelity=args.fidelity, on_run=on_run
    )
    write_json(out / "plan.json", result)
    evidence = result["evidence"]
    if evidence:
        write_csv(out / "plan.csv", evidence, list(dict.fromkeys(k for r in evidence for k in r)))
        plan_plot(out / "plan.png", result, metric)
    shown = [args.vary, "strategy", metric, "meets", "throughput_per_s", "completed"]
    shown = list(dict.fromkeys(shown))
    table = Table(title=f"evidence for {result['target']} ({result['runs']} runs)")
    for column in shown:
        table.add_column(column)
    for row in evidence:
        table.add_row(*[_cell(row.get(c, "")) for c in shown])
    _stdout().print(table)
    answer = result["answer"]
    if answer is None:
        _stdout().print(f"no answer: {result['note']}")
        return 1
    _stdout().print(
        f"{args.vary} = {answer} is the smallest value meeting {result['target']} "
        f"({result['note']}; {result['runs']} runs, assuming {result['assumption']})"
    )
    return 0


def cmd_calibrate(args) -> int:
    """``wssim calibrate``: a cost profile measured here."""
    from sim.engine import calibrate
    from sim.report.outputs import write_json

    out = Path(args.out)
    if not out.parent.is_dir():
        raise ScenarioError("--out", f"directory {out.parent} does not exist")
    if out.exists() and not args.force:
        raise ScenarioError("--out", f"{out} exists; pass --force to replace it")
    console.print("measuring every ledger operation with the real implementations...")
    profile = calibrate(quick=args.quick)
    write_json(out, profile)
    table = Table(title=f"cost profile written to {out}")
    table.add_column("op")
    table.add_column("cost")
    for op, spec in profile["ops"].items():
        if "by_bits_us" in spec:
            text = ", ".join(f"{b} bits: {c:.0f} µs" for b, c in spec["by_bits_us"].items())
        else:
            text = f"{spec['fixed_us']:.2f} µs + {spec['per_byte_ns']:.2f} ns/B"
        if spec.get("wait_us"):
            text += f"; waits {spec['wait_us']:.0f} µs per unit (no core)"
        table.add_row(op, text)
    _stdout().print(table)
    return 0


def cmd_trace(args) -> int:
    """``wssim trace``: exact bytes, trace.jsonl, keylog.jsonl, certs/ and the diagram."""
    from sim.engine import simulate
    from sim.protocol import build_strategy
    from sim.report.outputs import write_json
    from sim.report.trace import TRACE_OUTPUTS, TraceWriter

    if args.strategy not in STRATEGIES:
        raise ScenarioError(
            "--strategy", f"unknown strategy {args.strategy!r}; allowed: {', '.join(STRATEGIES)}"
        )
    _check_positive(args.sessions, "--sessions", high=1000)
    if load(args)[2].mixed:
        raise ScenarioError(
            "--strategy",
            f"{args.scenario} is a mixed run (its client classes carry strategies); trace a "
            "scenario of one strategy",
        )
    # one client node per session, so each session's client is the node named in the trace
    args.sets = [
        *args.sets,
        f'strategies=["{args.strategy}"]',
        f"topology.client.nodes={args.sessions}",
    ]
    _, _, scenario = load(args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ScenarioError("--out", f"{out} exists and is not a directory")
    existing = [name for name in TRACE_OUTPUTS if (out / name).exists()]
    if existing and not args.force:
        raise ScenarioError(
            "--out", f"{out} already holds a trace ({existing[0]}); pass --force to replace it"
        )
    writer = TraceWriter(out, replace=args.force)
    try:
        result = simulate(
            scenario,
            fidelity="full",
            replications=1,
            tracer=writer,
            keylog=writer,
            max_sessions=args.sessions,
        )
    finally:
        writer.close()
    strategy = build_strategy(args.strategy, scenario.strategy_options.get(args.strategy, {}))
    writer.write_certificates(
        strategy.certificates(), lambda node: strategy.setup.client_identity(node)[0]
    )
    write_json(out / "summary.json", result.summary)
    writer.print_diagram(_stdout())
    writer.plot_diagram(out / "sequence.png", title=f"{args.strategy}: {args.sessions} session(s)")
    console.print(
        f"{len(writer.entries)} messages in {out}/messages/, trace.jsonl, keylog.jsonl "
        f"({writer.key_count} secrets), certs/, sequence.png"
    )
    return 130 if result.partial else 0


def _interrupt(signum, frame) -> None:
    # The first Ctrl-C stops the run cleanly (results written, marked partial); a second one,
    # while those are being written, ends the process at once.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    console.print("[yellow]stopping: writing what is done (Ctrl-C again to abort at once)")
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``wssim``; returns the exit status (2: bad input, 130: interrupted)."""
    # Ctrl-C (and a polite SIGTERM) stop the run: what is done is written, marked partial.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        handlers = {
            "run": cmd_run,
            "compare": lambda a: cmd_run(a, compare=True),
            "sweep": cmd_sweep,
            "plan": cmd_plan,
            "calibrate": cmd_calibrate,
            "trace": cmd_trace,
        }
        return handlers[args.command](args)
    except UsageError as exc:
        print(f"wssim: {exc} (see wssim --help)", file=sys.stderr)
        return 2
    except ScenarioError as exc:
        print(f"wssim: {exc.key}: {exc.message}", file=sys.stderr)
        return 2
    except WssimError as exc:
        print(f"wssim: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("wssim: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()


__all__ = ["main"]
