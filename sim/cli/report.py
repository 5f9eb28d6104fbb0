"""``wssim report``: one self-contained HTML file for runs, a compare, a sweep, a plan or a
trace; and the ``--report`` / ``--plot-format`` flags run, compare, sweep and plan share."""

from __future__ import annotations

import argparse
from pathlib import Path

from sim.cli.common import console
from sim.errors import ScenarioError
from sim.report.labels import PLOT_FORMATS


def register(command) -> None:
    """Add ``report`` to the subcommands."""
    report = command(
        "report",
        "write one self-contained HTML report (opens offline: interactive charts, the "
        "scenario, the figures with their confidence intervals, capacity, warnings) of a run, "
        "a sweep, a plan or a trace; two or more runs are compared side by side",
    )
    report.add_argument(
        "results",
        nargs="+",
        metavar="RESULTS",
        help="result directories (of wssim run/compare/sweep/plan/trace), e.g. results/sct; "
        "give two runs to compare them, e.g. results/a results/b",
    )
    report.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="the HTML file to write (a directory gets report.html), e.g. --out report.html",
    )
    report.set_defaults(handler=cmd_report)


def report_args(parser: argparse.ArgumentParser) -> None:
    """``--report`` and ``--plot-format``, for the commands that write results."""
    parser.add_argument(
        "--report",
        action="store_true",
        help="also write report.html into the results directory: one self-contained HTML "
        "file with interactive charts (see wssim report)",
    )
    parser.add_argument(
        "--plot-format",
        choices=PLOT_FORMATS,
        default="png",
        help="file format of the matplotlib plots under plots/: png, or svg/pdf (vector, for "
        "papers), e.g. --plot-format svg (default png)",
    )


def check_report_args(args) -> None:
    """``--report`` needs a results directory (``compare`` writes one only with --out)."""
    if getattr(args, "report", False) and not getattr(args, "out", None):
        raise ScenarioError("--report", "needs --out DIR: the report is written with the results")


def finish(args, out: Path) -> None:
    """After a command wrote its results into ``out``: refresh ``results.sqlite`` (sweeps and
    plans: their points) and, with ``--report``, write ``out/report.html``."""
    from sim.results import write_store
    from sim.results.sources import ResultKind, kind_of

    if kind_of(out, "--out") in (ResultKind.SWEEP, ResultKind.PLAN):
        write_store(out)
    if getattr(args, "report", False):
        from sim.report.html import write_report

        path = write_report([out], out / "report.html")
        console.print(f"report in {path}")


def cmd_report(args) -> int:
    """``wssim report``: the HTML report of the result directories."""
    from sim.report.html import write_report

    sources = [Path(p) for p in args.results]
    out = Path(args.out)
    if out.is_dir():
        out = out / "report.html"
    if out.suffix.lower() not in (".html", ".htm"):
        raise ScenarioError("--out", f"{out} should be an .html file, e.g. --out report.html")
    path = write_report(sources, out)
    size = path.stat().st_size / 1e6
    console.print(f"report of {len(sources)} result(s) in {path} ({size:.1f} MB, opens offline)")
    return 0
