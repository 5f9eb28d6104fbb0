"""The ``wssim`` command: run, compare, sweep, plan, calibrate, trace."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from sim.errors import ScenarioError, WssimError

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


class ArgumentError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (exit status 2), no usage dump."""

    def error(self, message: str) -> None:
        raise ArgumentError(message)


def _scenario_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO", help="scenario file (TOML)")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="dotted.key=value",
        help="override a scenario value, read as TOML (repeatable), e.g. "
        '--set run.duration_s=60 --set \'strategies=["x509","sct"]\'',
    )


def _run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, help="random seed (default: run.seed)")
    parser.add_argument(
        "--fidelity",
        choices=("full", "replay"),
        help="full: every message built and verified for real; replay: "
        "recorded ledgers and sizes replayed (default: run.fidelity)",
    )
    parser.add_argument("--replications", type=int, help="independent replications (95%% CIs)")


def build_parser() -> Parser:
    parser = Parser(
        prog="wssim",
        description="Simulate WS-Trust / WS-SecureConversation / "
        "WS-Security session strategies with real SOAP messages.",
    )
    commands = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    commands.required = True

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=text, description=text, epilog=f"example: {EXAMPLES[name]}"
        )

    run = command(
        "run",
        "run a scenario and write summary.json, messages.csv, nodes.csv, "
        "manifest.json and plots/ into --out",
    )
    _scenario_args(run)
    _run_args(run)
    run.add_argument("--out", required=True, metavar="DIR", help="results directory")
    run.add_argument("--force", action="store_true", help="overwrite results already in DIR")

    compare = command(
        "compare", "run a scenario and print the side-by-side table of its strategies"
    )
    _scenario_args(compare)
    _run_args(compare)
    compare.add_argument("--out", metavar="DIR", help="also write the results there")
    compare.add_argument("--force", action="store_true", help="overwrite results in DIR")

    sweep = command("sweep", "run a grid over scenario keys; write sweep.csv and plots")
    _scenario_args(sweep)
    sweep.add_argument(
        "--param",
        action="append",
        required=True,
        metavar="key=v1,v2,...",
        help="a swept key and its values (repeatable: the grid is the product)",
    )
    sweep.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="results directory (a sweep resumes: done points are kept)",
    )
    sweep.add_argument(
        "--backend",
        choices=("local", "dask"),
        default="local",
        help="local: a process pool, one process per core; dask: Dask "
        "distributed (a LocalCluster, or the cluster at --scheduler)",
    )
    sweep.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler address")
    sweep.add_argument("--fidelity", choices=("full", "replay"))

    plan = command(
        "plan",
        "find the smallest value of a key (e.g. STS nodes) that meets a "
        "target at the scenario's load",
    )
    _scenario_args(plan)
    plan.add_argument(
        "--target",
        required=True,
        metavar="METRIC<=VALUE",
        help="e.g. 'p99_ms<=200' (metrics: p50_ms p95_ms p99_ms mean_ms max_ms "
        "throughput_per_s failed)",
    )
    plan.add_argument("--vary", required=True, metavar="KEY", help="e.g. topology.sts.nodes")
    plan.add_argument("--max", type=int, default=256, help="largest value tried (default 256)")
    plan.add_argument("--out", required=True, metavar="DIR")
    plan.add_argument("--fidelity", choices=("full", "replay"))

    calibrate = command(
        "calibrate", "measure a cost profile on this machine with the real implementations"
    )
    calibrate.add_argument("--out", required=True, metavar="PROFILE.json")
    calibrate.add_argument("--quick", action="store_true", help="fewer repetitions and sizes")

    trace = command(
        "trace",
        "write the exact bytes of every message of N sessions, a key "
        "log and the certificates, and print the sequence diagram",
    )
    _scenario_args(trace)
    trace.add_argument("--strategy", required=True, metavar="NAME")
    trace.add_argument("--sessions", type=int, default=1, metavar="N")
    trace.add_argument("--out", required=True, metavar="DIR")
    trace.add_argument("--force", action="store_true")
    return parser


def load(args) -> tuple[dict, bytes, object]:
    from sim.engine import apply_overrides, load_scenario
    from sim.engine.scenario import read_scenario_file

    text = Path(args.scenario).read_bytes() if Path(args.scenario).is_file() else b""
    data = apply_overrides(read_scenario_file(args.scenario), args.sets)
    return data, text, load_scenario(data)


def _simulate(scenario, args, **kwargs):
    from sim.engine import simulate

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    started = time.monotonic()
    task = None

    def on_progress(info):
        nonlocal task
        if time.monotonic() - started < 1.0 and task is None:
            return
        if task is None:
            progress.start()
            task = progress.add_task("simulating", total=info.end_time_s, detail="")
        progress.update(
            task,
            completed=info.sim_time_s,
            description=f"{info.strategy} rep {info.replication}/{info.replications}",
            detail=f"t={info.sim_time_s:.0f}/{info.end_time_s:.0f} s  {info.app_messages} msgs",
        )

    try:
        return simulate(
            scenario,
            seed=getattr(args, "seed", None),
            fidelity=getattr(args, "fidelity", None),
            replications=getattr(args, "replications", None),
            progress=on_progress,
            **kwargs,
        )
    finally:
        if task is not None:
            progress.stop()


def cmd_run(args, compare: bool = False) -> int:
    from sim.report.outputs import prepare_directory, write_results
    from sim.report.plots import write_plots
    from sim.report.table import print_comparison

    data, text, scenario = load(args)
    out = prepare_directory(Path(args.out), args.force) if args.out else None
    result = _simulate(scenario, args)
    if out is not None:
        write_results(out, result, data, text, sys.argv)
        write_plots(out, result.summary, result.messages)
    if compare or out is None:
        print_comparison(result.summary, Console())
    if out is not None:
        console.print(
            f"results in {out}/ (summary.json, messages.csv, nodes.csv, "
            f"manifest.json, plots/)" + (" [partial]" if result.partial else "")
        )
    return 130 if result.partial else 0


def cmd_sweep(args) -> int:
    from sim.report.outputs import write_csv
    from sim.report.plots import sweep_plots
    from sim.sweep import parse_param, run_sweep

    data, _, _ = load(args)
    params = [parse_param(p) for p in args.param]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.scheduler and args.backend != "dask":
        raise ScenarioError("--scheduler", "goes with --backend dask")
    rows = run_sweep(
        data,
        params,
        out,
        backend=args.backend,
        scheduler=args.scheduler,
        fidelity=args.fidelity,
        on_point=lambda done, total: console.print(f"point {done}/{total} done"),
    )
    columns = list(dict.fromkeys(k for row in rows for k in row))
    write_csv(out / "sweep.csv", rows, columns)
    sweep_plots(out, rows, params[0][0])
    table = Table(title=f"sweep over {', '.join(k for k, _ in params)}")
    for column in [*[k for k, _ in params], "strategy", "throughput_per_s", "p99_ms", "failed"]:
        table.add_column(column)
    for row in rows:
        table.add_row(
            *[
                f"{row[c]:.2f}" if isinstance(row[c], float) else str(row[c])
                for c in [
                    *[k for k, _ in params],
                    "strategy",
                    "throughput_per_s",
                    "p99_ms",
                    "failed",
                ]
            ]
        )
    Console().print(table)
    console.print(f"sweep table in {out}/sweep.csv, plots in {out}/plots/")
    return 0


def cmd_plan(args) -> int:
    from sim.report.outputs import write_csv, write_json
    from sim.sweep import parse_target, plan

    data, _, _ = load(args)
    parse_target(args.target)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = plan(
        data,
        args.target,
        args.vary,
        high=args.max,
        fidelity=args.fidelity,
        on_run=lambda n: console.print(f"run {n} done"),
    )
    write_json(out / "plan.json", result)
    if result["evidence"]:
        write_csv(out / "plan.csv", result["evidence"], list(result["evidence"][0]))
    table = Table(title=f"evidence for {result['target']}")
    for column in result["evidence"][0] if result["evidence"] else []:
        table.add_column(column)
    for row in result["evidence"]:
        table.add_row(*[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()])
    Console().print(table)
    answer = result["answer"]
    Console().print(
        f"{args.vary} = {answer} meets {result['target']} ({result['runs']} runs; {result['note']})"
        if answer is not None
        else result["note"]
    )
    return 0 if answer is not None else 1


def cmd_calibrate(args) -> int:
    from sim.engine import calibrate
    from sim.report.outputs import write_json

    console.print("measuring every ledger operation with the real implementations...")
    profile = calibrate(quick=args.quick)
    out = Path(args.out)
    if out.parent and not out.parent.exists():
        raise ScenarioError("--out", f"directory {out.parent} does not exist")
    write_json(out, profile)
    table = Table(title=f"cost profile written to {out}")
    table.add_column("op")
    table.add_column("cost")
    for op, spec in profile["ops"].items():
        if "by_bits_us" in spec:
            text = ", ".join(f"{b}: {c:.0f} µs" for b, c in spec["by_bits_us"].items())
        else:
            text = f"{spec['fixed_us']:.2f} µs + {spec['per_byte_ns']:.2f} ns/B"
        table.add_row(op, text)
    Console().print(table)
    return 0


def cmd_trace(args) -> int:
    from sim.protocol import STRATEGY_NAMES, build_strategy
    from sim.report.outputs import prepare_directory
    from sim.report.trace import TraceWriter

    if args.strategy not in STRATEGY_NAMES:
        raise ScenarioError(
            "--strategy",
            f"unknown strategy {args.strategy!r}; allowed: " + ", ".join(STRATEGY_NAMES),
        )
    if not 1 <= args.sessions <= 1000:
        raise ScenarioError("--sessions", "must be between 1 and 1000")
    args.sets = [
        *args.sets,
        f'strategies=["{args.strategy}"]',
        f"topology.client.nodes={max(args.sessions, 1)}",
    ]
    _, _, scenario = load(args)
    out = Path(args.out)
    if (out / "trace.jsonl").exists() and not args.force:
        raise ScenarioError("--out", f"{out} already holds a trace; pass --force to replace it")
    prepare_directory(out, True)
    writer = TraceWriter(out)
    from sim.engine import simulate

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
    setup = strategy.setup
    writer.write_certificates(strategy.certificates(), lambda node: setup.client_identity(node)[0])
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
    writer.print_diagram(Console())
    writer.plot_diagram(out / "sequence.png")
    console.print(
        f"{len(writer.entries)} messages in {out}/messages, trace.jsonl, "
        f"keylog.jsonl, certs/, sequence.png"
    )
    return 0


def _interrupt(signum, frame) -> None:
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
    except ArgumentError as exc:
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
