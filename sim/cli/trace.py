"""``wssim trace``: the exact bytes of a few sessions, their keys and the diagram."""

from __future__ import annotations

from pathlib import Path

from sim.cli.common import check_positive, console, load, out_args, scenario_args, stdout
from sim.errors import ScenarioError
from sim.protocol.api import STRATEGY_NAMES as STRATEGIES


def register(command) -> None:
    """Add ``trace`` to the subcommands."""
    trace = command(
        "trace",
        "run N sessions of one strategy in full fidelity and write the exact bytes of every "
        "message, trace.jsonl, a key log (keylog.jsonl, like SSLKEYLOGFILE) and every "
        "actor's certificate, then print the sequence diagram (also sequence.png)",
    )
    scenario_args(trace)
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
    out_args(trace, "trace directory")
    trace.set_defaults(handler=cmd_trace)


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
    check_positive(args.sessions, "--sessions", high=1000)
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
    writer.print_diagram(stdout())
    writer.plot_diagram(out / "sequence.png", title=f"{args.strategy}: {args.sessions} session(s)")
    console.print(
        f"{len(writer.entries)} messages in {out}/messages/, trace.jsonl, keylog.jsonl "
        f"({writer.key_count} secrets), certs/, sequence.png"
    )
    return 130 if result.partial else 0
