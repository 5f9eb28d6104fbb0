"""``wssim testbed``: the scenario's strategies on real processes, sockets and TLS, measured,
and the simulator's prediction of the same run held against the measurement."""

from __future__ import annotations

import json
from pathlib import Path

from sim.cli.common import console, load, scenario_args, stdout
from sim.errors import ScenarioError

#: the longest step the command accepts (a testbed run is bounded in time)
MAX_STEP_S = 600.0


def register(command) -> None:
    """Add ``testbed`` to the subcommands."""
    testbed = command(
        "testbed",
        "run the scenario's strategies as real HTTP services (uvicorn, TLS with the test CA, "
        "one process per node, pinned to cores) under a real load generator, measure CPU per "
        "message, latency, throughput and saturation, simulate the same runs with a profile "
        "calibrated here, and write validation.json, testbed.json, messages.csv and "
        "plots/validation.png into --out",
    )
    scenario_args(testbed)
    testbed.add_argument("--out", required=True, metavar="DIR", help="e.g. --out testbed/")
    testbed.add_argument("--force", action="store_true", help="replace the results already in DIR")
    testbed.add_argument(
        "--strategy",
        dest="strategies",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this strategy of the scenario (repeatable; default: all of them)",
    )
    testbed.add_argument(
        "--duration",
        type=float,
        default=20.0,
        metavar="S",
        help="seconds of the main step of each strategy (default 20)",
    )
    testbed.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        metavar="S",
        help="seconds left out at the start of the main step (default 3)",
    )
    testbed.add_argument(
        "--step",
        type=float,
        default=8.0,
        metavar="S",
        help="seconds of each saturation step (default 8)",
    )
    testbed.add_argument(
        "--users",
        default="1,2,4,8,16,32",
        metavar="N,N,...",
        help="closed-workload user counts the saturation search steps through, or 'none' "
        "to skip it (default 1,2,4,8,16,32)",
    )
    testbed.add_argument(
        "--profile",
        metavar="PROFILE.json",
        help="a profile from 'wssim calibrate' (with its HTTP costs); default: calibrate now "
        "and write DIR/profile.json",
    )
    testbed.add_argument("--quick", action="store_true", help="calibrate with fewer repetitions")
    testbed.add_argument("--seed", type=int, default=1, metavar="N", help="random seed")
    testbed.set_defaults(handler=cmd_testbed)

    serve = command(
        "serve",
        "run the server nodes of one strategy of the scenario as the testbed does (one "
        "process a role, plain HTTP and TLS listeners on the loopback) until Ctrl-C, and "
        "print their endpoints: POST / takes a SOAP message (header x-wssim-sender: the "
        "sender's name), GET /stats the node's CPU seconds and requests",
    )
    scenario_args(serve)
    serve.add_argument("--strategy", required=True, metavar="NAME", help="e.g. --strategy sct")
    serve.add_argument(
        "--duration", type=float, metavar="S", help="stop after S seconds (default: Ctrl-C)"
    )
    serve.set_defaults(handler=cmd_serve)


def _users(text: str) -> tuple[int, ...]:
    if text.strip().lower() == "none":
        return ()
    try:
        users = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ScenarioError(
            "--users", f"a list of user counts like 1,2,4 or 'none', got {text!r}"
        ) from None
    if not users or any(not 1 <= u <= 256 for u in users) or list(users) != sorted(set(users)):
        raise ScenarioError("--users", "increasing user counts from 1 to 256, e.g. 1,2,4,8")
    return users


def _settings(args):
    from sim.testbed.run import Settings

    for flag, value in (("--duration", args.duration), ("--step", args.step)):
        if not 0 < value <= MAX_STEP_S:
            raise ScenarioError(flag, f"must be between 0 and {MAX_STEP_S:g} seconds")
    if not 0 <= args.warmup < args.duration:
        raise ScenarioError("--warmup", "must be at least 0 and shorter than --duration")
    if args.seed < 0:
        raise ScenarioError("--seed", "must be at least 0")
    return Settings(
        duration_s=args.duration,
        warmup_s=args.warmup,
        step_s=args.step,
        users=_users(args.users),
        seed=args.seed,
    )


def _check_scenario(scenario, wanted: list[str]) -> None:
    if scenario.workload.classes:
        raise ScenarioError(
            "workload.classes", "the testbed drives one workload per strategy: no client classes"
        )
    unknown = [name for name in wanted if name not in scenario.strategies]
    if unknown:
        raise ScenarioError(
            "--strategy",
            f"{unknown[0]} is not a strategy of the scenario ({', '.join(scenario.strategies)})",
        )


def _profile(args, out: Path, key_dir: str) -> str:
    """The calibrated profile's path: --profile checked, or one measured now."""
    from sim.engine import calibrate
    from sim.engine.costs import load_profile
    from sim.report.outputs import write_json
    from sim.testbed.httpcost import measure_http_costs

    if args.profile:
        profile = load_profile(args.profile)  # a ScenarioError names profile.name
        if not profile.http:
            console.print(
                f"[yellow]warning: {args.profile} has no HTTP costs (calibrated before "
                "'wssim calibrate' measured them): the prediction leaves the HTTP layer out"
            )
        return str(Path(args.profile).resolve())
    console.print("calibrating this machine (ledger operations, then the HTTP layer)...")
    profile = calibrate(quick=args.quick)
    profile["http"] = measure_http_costs(key_dir, quick=args.quick)
    path = out / "profile.json"
    write_json(path, profile)
    return str(path.resolve())


def cmd_testbed(args) -> int:
    """``wssim testbed``."""
    from sim.report.outputs import prepare_directory
    from sim.testbed import validation
    from sim.testbed.run import cores, run_testbed
    from sim.wire.keys import default_key_dir

    settings = _settings(args)
    data, _, scenario = load(args)
    _check_scenario(scenario, args.strategies)
    if args.strategies:
        data = {**data, "strategies": args.strategies}
        scenario = scenario.model_copy(update={"strategies": list(args.strategies)})
    out = prepare_directory(Path(args.out), args.force)
    if (out / "validation.json").exists() and not args.force:
        raise ScenarioError("--out", f"{out} already holds validation.json; pass --force")
    key_dir = str(default_key_dir())
    profile = _profile(args, out, key_dir)
    layout = cores()
    console.print(
        "cores: load generator "
        + ",".join(map(str, layout["load generator"]))
        + "; every server node "
        + ",".join(map(str, layout["servers"])),
        highlight=False,
    )
    result = run_testbed(
        data,
        scenario,
        out,
        profile=profile,
        settings=settings,
        key_dir=key_dir,
        say=lambda text: console.print(text, highlight=False),
    )
    stdout().print(validation.table(result["strategies"]))
    details = json.loads((out / "testbed.json").read_text())
    console.print(f"links: {details['links']['note']}", highlight=False)
    console.print(
        f"results in {out}/: validation.json, testbed.json, messages.csv, plots/validation.png"
    )
    return 0


def cmd_serve(args) -> int:
    """``wssim serve``: the nodes of one strategy, until Ctrl-C (or --duration)."""
    import time

    from sim.testbed.run import strategy_cluster
    from sim.wire.keys import CA_NAME, DEFAULT_BITS, default_key_dir

    if args.duration is not None and not 0 < args.duration <= 86_400:
        raise ScenarioError("--duration", "must be between 0 and 86400 seconds")
    _, _, scenario = load(args)
    _check_scenario(scenario, [args.strategy])
    key_dir = str(default_key_dir())
    with strategy_cluster(args.strategy, scenario, key_dir) as cluster:
        out = stdout()
        for node in cluster.nodes:
            out.print(
                f"{node.name}: {node.endpoint.plain} (HTTP)  {node.endpoint.tls} (HTTPS)",
                highlight=False,
            )
        out.print(
            f"TLS: the test CA's certificate is {key_dir}/{CA_NAME}-{DEFAULT_BITS}.pem; "
            "POST / a SOAP message with header x-wssim-sender: client-1; GET /stats",
            highlight=False,
        )
        console.print("serving; Ctrl-C stops", highlight=False)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while deadline is None or time.monotonic() < deadline:
            if any(node.process.poll() is not None for node in cluster.nodes):
                console.print("[red]a node stopped; stopping the others")
                return 1
            time.sleep(0.2)
    return 0
