"""The ``wssim`` command: run, compare, sweep, plan, calibrate, trace.

Each command lives in its own module of this package (``register`` adds its arguments,
``cmd_*`` runs it); a command imports what it needs only when it runs.
"""

from __future__ import annotations

import argparse
import signal
import sys

from sim.cli import calibrate, plan, report, run, runs, sweep, testbed, trace
from sim.cli.common import Parser, console
from sim.errors import ScenarioError, UsageError, WssimError

EXAMPLES = {
    "run": "wssim run scenarios/sct.toml --out results/sct --set workload.rate=50",
    "compare": "wssim compare scenarios/sct-vs-per-message.toml --set run.duration_s=30",
    "sweep": "wssim sweep scenarios/sts-farm.toml --param workload.rate=10,20,40 --out sweep/",
    "plan": "wssim plan scenarios/sts-farm.toml --target 'p99_ms<=200' "
    "--vary topology.sts.nodes --out plan/",
    "calibrate": "wssim calibrate --out my-machine.json",
    "trace": "wssim trace scenarios/sct.toml --strategy sct --sessions 1 --out trace/",
    "testbed": "wssim testbed scenarios/x509.toml --out testbed/ --strategy x509",
    "serve": "wssim serve scenarios/sct.toml --strategy sct",
    "report": "wssim report results/a results/b --out report.html",
    "runs": "wssim runs results/",
}
COMMAND_MODULES = (run, sweep, plan, calibrate, trace, report, runs, testbed)


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

    for module in COMMAND_MODULES:
        module.register(command)
    return parser


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
        return args.handler(args)
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
    """Console-script entry point."""
    sys.exit(main())


__all__ = ["build_parser", "entry", "main"]
