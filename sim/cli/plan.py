"""``wssim plan``: the smallest value of a key that meets a target."""

from __future__ import annotations

from pathlib import Path

from sim.cli.common import (
    cell,
    check_positive,
    console,
    fidelity_arg,
    load,
    out_args,
    scenario_args,
    stdout,
)
from sim.cli.report import finish, report_args
from sim.errors import ScenarioError
from sim.sweep import METRICS


def register(command) -> None:
    """Add ``plan`` to the subcommands."""
    plan = command(
        "plan",
        "find the smallest value of a key (e.g. STS nodes) that meets a target at the "
        "scenario's load, with few runs: exponential then binary search, which assumes "
        "the metric improves monotonically with the key",
    )
    scenario_args(plan)
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
    out_args(plan, "directory for plan.json and the evidence table plan.csv")
    fidelity_arg(plan)
    report_args(plan)
    plan.set_defaults(handler=cmd_plan)


def cmd_plan(args) -> int:
    """``wssim plan``: the smallest value of ``--vary`` meeting ``--target``."""
    from sim.report.outputs import write_csv, write_json
    from sim.report.plots import plan_plot
    from sim.sweep import parse_target, plan

    metric = parse_target(args.target)[0]
    check_positive(args.max, "--max", high=10**6)
    data, _, _ = load(args)
    out = Path(args.out)
    if (out / "plan.json").exists() and not args.force:
        raise ScenarioError("--out", f"{out} already holds a plan; pass --force to replace it")
    out.mkdir(parents=True, exist_ok=True)

    def on_run(runs: int, value: int, passed: bool) -> None:
        verdict = "meets" if passed else "misses"
        console.print(f"run {runs}: {args.vary}={value} {verdict} {args.target}")

    def on_skip(value: int, reason: str) -> None:
        console.print(f"skipped: {args.vary}={value} misses {args.target}: {reason}")

    result = plan(
        data,
        args.target,
        args.vary,
        high=args.max,
        fidelity=args.fidelity,
        on_run=on_run,
        on_skip=on_skip,
    )
    write_json(out / "plan.json", {**result, "scenario": data})
    evidence = result["evidence"]
    if evidence:
        write_csv(out / "plan.csv", evidence, list(dict.fromkeys(k for r in evidence for k in r)))
        plan_plot(out / f"plan.{args.plot_format}", result, metric)
    finish(args, out)
    shown = [
        args.vary,
        "strategy",
        metric,
        "meets",
        "throughput_per_s",
        "offered_per_s",
        "max_messages_per_s",
        "bottleneck",
        "completed",
    ]
    if any(row.get("skipped") for row in evidence):
        shown.append("skipped")
    shown = list(dict.fromkeys(shown))
    from rich.table import Table

    table = Table(
        title=f"evidence for {result['target']} ({result['runs']} runs, "
        f"{result.get('skipped', 0)} skipped below the capacity bound)"
    )
    for column in shown:
        table.add_column(column)
    for row in evidence:
        table.add_row(*["-" if row.get(c) is None else cell(row[c]) for c in shown])
    stdout().print(table)
    answer = result["answer"]
    if answer is None:
        stdout().print(f"no answer: {result['note']}")
        return 1
    stdout().print(
        f"{args.vary} = {answer} is the smallest value meeting {result['target']} "
        f"({result['note']}; {result['runs']} runs, {result.get('skipped', 0)} skipped, "
        f"assuming {result['assumption']})"
    )
    return 0
