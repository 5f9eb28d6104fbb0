"""``wssim runs``: the results in a directory tree, one line each, to find the one you want."""

from __future__ import annotations

from pathlib import Path

from sim.cli.common import console, stdout
from sim.errors import ScenarioError


def register(command) -> None:
    """Add ``runs`` to the subcommands."""
    runs = command(
        "runs",
        "list the runs, sweeps, plans and traces under a directory: scenario, date, "
        "strategies and key figures",
    )
    runs.add_argument("directory", metavar="DIR", help="where to look, e.g. results/")
    runs.set_defaults(handler=cmd_runs)


def describe(path: Path) -> dict:
    """One listing row of a result directory (a ScenarioError when it is corrupt)."""
    import datetime

    from sim.results.sources import ResultKind, kind_of, read_json, read_summary

    kind = kind_of(path)
    row = {"kind": kind.value, "scenario": "", "date": "", "strategies": "", "figures": ""}
    stamp = path / {"run": "manifest.json", "sweep": "sweep.json", "plan": "plan.json"}.get(
        kind.value, "trace.jsonl"
    )
    row["date"] = datetime.datetime.fromtimestamp(stamp.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    if kind is ResultKind.RUN:
        summary = read_summary(path)
        manifest = read_json(path / "manifest.json")
        row["date"] = (manifest.get("created") or "")[:16].replace("T", " ") or row["date"]
        row["scenario"] = summary.get("scenario", "")
        stats = summary["strategies"]
        row["strategies"] = ", ".join(stats)
        p99 = sorted((s["latency_ms"]["p99"], name) for name, s in stats.items())
        rates = [s["throughput_per_s"] for s in stats.values()]
        figures = []
        if p99:
            figures.append(
                f"p99 {p99[0][0]:,.1f} ms ({p99[0][1]})"
                + (f" to {p99[-1][0]:,.1f} ms ({p99[-1][1]})" if len(p99) > 1 else "")
            )
            figures.append(f"{min(rates):,.1f}-{max(rates):,.1f} msg/s")
        if summary.get("warnings"):
            figures.append(f"{len(summary['warnings'])} warning(s)")
        if summary.get("partial"):
            figures.append("PARTIAL")
        row["figures"] = "; ".join(figures)
    elif kind is ResultKind.SWEEP:
        data = read_json(path / "sweep.json")
        row["scenario"] = data.get("scenario", {}).get("name", "")
        row["strategies"] = ", ".join(data.get("scenario", {}).get("strategies", []))
        row["figures"] = f"{data.get('points', '?')} points over " + ", ".join(
            data.get("params", {})
        )
    elif kind is ResultKind.PLAN:
        data = read_json(path / "plan.json")
        row["scenario"] = data.get("scenario", {}).get("name", "")
        row["strategies"] = ", ".join(sorted({r["strategy"] for r in data.get("evidence", [])}))
        answer = data.get("answer")
        row["figures"] = f"{data.get('target')}: " + (
            f"{data.get('vary')} = {answer}" if answer is not None else "no answer"
        )
    else:
        lines = (path / "trace.jsonl").read_text().splitlines()
        if (path / "summary.json").is_file():
            summary = read_summary(path)
            row["scenario"] = summary.get("scenario", "")
            row["strategies"] = ", ".join(summary["strategies"])
        row["figures"] = f"{len(lines)} messages traced"
    return row


def cmd_runs(args) -> int:
    """``wssim runs DIR``: one line per result under DIR."""
    from rich.table import Table

    from sim.results import find_results

    root = Path(args.directory)
    if not root.is_dir():
        raise ScenarioError("DIR", f"{root} is not a directory")
    found = find_results(root)
    if not found:
        raise ScenarioError("DIR", f"no wssim results under {root}")
    table = Table(title=f"{len(found)} result(s) under {root}")
    for column in ("path", "kind", "scenario", "date", "strategies", "key figures"):
        table.add_column(column, overflow="fold")
    listed, errors = 0, []
    for path in found:
        try:
            row = describe(path)
        except ScenarioError as exc:
            errors.append(exc)
            continue
        shown = path.relative_to(root).as_posix() if path != root else "."
        table.add_row(
            shown, row["kind"], row["scenario"], row["date"], row["strategies"], row["figures"]
        )
        listed += 1
    if not listed:
        raise errors[0]
    stdout().print(table)
    for exc in errors:  # a corrupt result among good ones: listed after them, not fatal
        console.print(f"[yellow]warning: {exc.message}", highlight=False)
    return 0
