"""``wssim calibrate``: a cost profile measured on this machine."""

from __future__ import annotations

from pathlib import Path

from sim.cli.common import console, stdout
from sim.errors import ScenarioError


def register(command) -> None:
    """Add ``calibrate`` to the subcommands."""
    calibrate = command(
        "calibrate",
        "measure a cost profile (fixed and per-byte cost of every ledger operation, the HTTP "
        "layer's cost, and each strategy's engine CPU beyond its ledger) on this machine with "
        "the real implementations; use it with profile.name = 'PROFILE.json'",
    )
    calibrate.add_argument(
        "--out", required=True, metavar="PROFILE.json", help="e.g. --out my-machine.json"
    )
    calibrate.add_argument(
        "--quick",
        action="store_true",
        help="fewer repetitions and sizes, no low-load figures (a rough profile)",
    )
    calibrate.add_argument("--force", action="store_true", help="replace an existing file")
    calibrate.set_defaults(handler=cmd_calibrate)


def cmd_calibrate(args) -> int:
    """``wssim calibrate``: a cost profile measured here."""
    from sim.engine import calibrate
    from sim.report.outputs import write_json
    from sim.testbed.httpcost import measure_http_costs, measure_low_load_http_costs
    from sim.testbed.ledger_gap import LOW_LOAD_PAUSE_S, measure_engine_overheads
    from sim.testbed.loadcost import measure_loadgen_costs
    from sim.testbed.speed import reference_ms
    from sim.wire.keys import default_key_dir

    out = Path(args.out)
    if not out.parent.is_dir():
        raise ScenarioError("--out", f"directory {out.parent} does not exist")
    if out.exists() and not args.force:
        raise ScenarioError("--out", f"{out} exists; pass --force to replace it")
    console.print("measuring every ledger operation with the real implementations...")
    reference = reference_ms(str(default_key_dir()))
    profile = calibrate(quick=args.quick)
    console.print("measuring the HTTP layer (uvicorn and httpx, empty requests)...")
    profile["http"] = measure_http_costs(str(default_key_dir()), quick=args.quick)
    console.print("measuring the load generator back to back (its own code, eight users)...")
    profile["http"].update(
        measure_loadgen_costs(str(default_key_dir()), profile["http"], quick=args.quick)
    )
    console.print("measuring the engines' CPU beyond their ledgers (every strategy)...")
    profile["engine_overhead_us"] = measure_engine_overheads(
        profile, quick=args.quick, key_dir=str(default_key_dir())
    )
    if not args.quick:
        console.print(
            f"measuring both again at low load ({LOW_LOAD_PAUSE_S * 1000:g} ms idle before each "
            "request and step)..."
        )
        profile["low_load"] = {
            "pause_s": LOW_LOAD_PAUSE_S,
            "http": measure_low_load_http_costs(
                str(default_key_dir()),
                profile["http"]["server_idle_us_per_s"],
                gap_s=LOW_LOAD_PAUSE_S,
            ),
            "engine_overhead_us": measure_engine_overheads(
                profile, key_dir=str(default_key_dir()), pause_s=LOW_LOAD_PAUSE_S
            ),
        }
    # the machine's speed while calibrating (a shared machine's drifts): the testbed
    # rescales the profile by how fast the same work runs when it measures
    reference = (reference + reference_ms(str(default_key_dir()))) / 2
    profile["meta"]["reference_ms"] = round(reference, 4)
    write_json(out, profile)
    from rich.table import Table

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
    for key, value in profile["http"].items():
        table.add_row(*http_cells(key, value))
    low = profile.get("low_load", {})
    for key, value in low.get("http", {}).items():
        label, text = http_cells(key, value)
        table.add_row(f"{label}, low load", text)
    for figures, at in (
        (profile["engine_overhead_us"], ""),
        (low.get("engine_overhead_us"), ", low load"),
    ):
        for strategy, roles in (figures or {}).items():
            text = "; ".join(
                f"{role} " + ", ".join(f"{kind} {us:.0f}" for kind, us in kinds.items())
                for role, kinds in roles.items()
            )
            table.add_row(f"engine {strategy}{at}", f"{text} (µs a step, by kind sent)")
    stdout().print(table)
    return 0


def http_cells(key: str, value: float) -> tuple[str, str]:
    """A profile's ``http`` figure as the calibrate table shows it: its name, and its value
    in the unit its key ends with (``_us``, ``_byte_ns``, ``_us_per_s``)."""
    for suffix, unit, digits in (("_us_per_s", "µs a second", 0), ("_ns", "ns", 2)):
        if key.endswith(suffix):
            return (
                f"http {key.removesuffix(suffix).replace('_', ' ')}",
                f"{value:.{digits}f} {unit}",
            )
    return f"http {key.removesuffix('_us').replace('_', ' ')}", f"{value:.1f} µs"
