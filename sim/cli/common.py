"""What every ``wssim`` command shares: consoles, argument helpers, loading, progress."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sim.errors import ScenarioError, UsageError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress


class _StderrConsole:
    """rich's Console on stderr, made on first use: importing rich costs a ``--help``
    tens of milliseconds (commands import what they need when they run)."""

    _console: Console | None = None

    def rich(self) -> Console:
        """The Console itself."""
        if self._console is None:
            from rich.console import Console

            type(self)._console = Console(stderr=True)
        return self._console

    def __getattr__(self, name: str):
        return getattr(self.rich(), name)


console = _StderrConsole()


def stdout() -> Console:
    """The console for results: a pipe or file gets whole tables, not folded columns."""
    from rich.console import Console

    out = Console()
    if not out.is_terminal:
        out.width = max(out.width, 200)
    return out


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (exit status 2), no usage dump."""

    def error(self, message: str) -> None:
        raise UsageError(message)


def scenario_args(parser: argparse.ArgumentParser) -> None:
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


def run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seed", type=int, metavar="N", help="random seed, e.g. --seed 7 (default: run.seed)"
    )
    fidelity_arg(parser)
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
    parser.add_argument(
        "--backend",
        choices=("local", "dask"),
        default="local",
        help="where replications run: local: this machine's processes (default); dask: Dask "
        "distributed, a LocalCluster of --workers one-thread workers or the cluster at "
        "--scheduler (the same results); e.g. --backend dask",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="address of a running Dask scheduler (with --backend dask), "
        "e.g. --scheduler tcp://10.0.0.5:8786",
    )


def fidelity_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fidelity",
        choices=("full", "replay"),
        help="full: every message built, signed, encrypted and verified for real; replay: "
        "ledgers and sizes recorded from real sessions, replayed (fast); "
        "e.g. --fidelity full (default: run.fidelity)",
    )


def out_args(parser: argparse.ArgumentParser, what: str, required: bool = True) -> None:
    parser.add_argument(
        "--out", required=required, metavar="DIR", help=f"{what}, e.g. --out results/sct"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace the results already in DIR (without it wssim refuses, status 2); "
        "files wssim did not write are left alone",
    )


def load(args) -> tuple[dict, bytes, object]:
    """The scenario of ``args``: its data with ``--set`` applied, its file bytes, the model."""
    from sim.engine import apply_overrides, load_scenario
    from sim.engine.scenario import read_scenario_file

    data = apply_overrides(read_scenario_file(args.scenario), args.sets)
    text = Path(args.scenario).read_bytes()
    return data, text, load_scenario(data)


def check_positive(value: int | None, flag: str, low: int = 1, high: int = 10**6) -> None:
    if value is not None and not low <= value <= high:
        raise ScenarioError(flag, f"must be between {low} and {high}; got {value}")


def progress_bar() -> Progress:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=24),
        TextColumn("{task.fields[detail]}"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console.rich(),
        transient=True,
    )


def simulate_with_progress(scenario, args, **kwargs):
    """``simulate`` with a progress bar (shown once the run has taken a second, made then:
    rich.progress costs a short run a tenth of a second to import)."""
    from sim.engine import simulate

    progress = None
    started = time.monotonic()
    task = None
    strategies = len(scenario.strategies)
    order = {name: i for i, name in enumerate(scenario.strategies)}

    def on_progress(info) -> None:
        nonlocal task, progress
        if task is None:
            # a transient bar shows nothing where stderr is no terminal: none made there
            if time.monotonic() - started < 1.0 or not console.rich().is_terminal:
                return
            progress = progress_bar()
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
            backend=getattr(args, "backend", "local"),
            scheduler=getattr(args, "scheduler", None),
            **kwargs,
        )
    finally:
        if progress is not None:
            progress.stop()


def cell(value) -> str:
    """A table cell: floats with two decimals."""
    return f"{value:.2f}" if isinstance(value, float) else str(value)
