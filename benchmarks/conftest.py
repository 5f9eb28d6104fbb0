"""Print, after a benchmark run, each group's 'ours vs baseline' ratio of median times, and
the rates benchmarks report (``extra_info["rate"]``, per wall-clock second, from the median)
against their targets.

A group holds one benchmark whose name ends in ``[baseline]`` and others to compare with it;
the ratio is baseline median / ours median, measured in the same run.
"""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups: dict[str, dict[str, float]] = {}
    targets: dict[str, float] = {}
    for bench in session.benchmarks:
        if not bench.stats:
            continue
        group = bench.group or bench.name
        groups.setdefault(group, {})[bench.name] = bench.stats.median
        target = bench.extra_info.get("target_ratio")
        if target:
            targets[group] = target
    lines = []
    for group, entries in sorted(groups.items()):
        baseline = [v for k, v in entries.items() if k.endswith("[baseline]")]
        if not baseline:
            continue
        for name, median in sorted(entries.items()):
            if name.endswith("[baseline]"):
                continue
            ratio = baseline[0] / median
            target = targets.get(group)
            verdict = "" if target is None else ("  ok" if ratio >= target else "  BELOW TARGET")
            lines.append(
                f"{group:<34} {name:<44} {median * 1e6:>10.2f} us  "
                f"baseline {baseline[0] * 1e6:>10.2f} us  x{ratio:5.1f}"
                + (f" (target x{target})" if target else "")
                + verdict
            )
    if lines:
        terminalreporter.write_sep("=", "ours vs baseline (median, same run)")
        for line in lines:
            terminalreporter.write_line(line)
    rates = [bench for bench in session.benchmarks if bench.stats and "rate" in bench.extra_info]
    if rates:
        terminalreporter.write_sep("=", "rates (per wall-clock second, from the median)")
        for bench in rates:
            info = bench.extra_info
            target = info.get("rate_target")
            verdict = ""
            if target is not None:
                verdict = f" (target {target:,})" + (
                    "  ok" if info["rate"] >= target else "  BELOW TARGET"
                )
            terminalreporter.write_line(
                f"{bench.name:<60} {info['rate']:>10,.0f} {info['rate_unit']}{verdict}"
            )
    figures = [bench for bench in session.benchmarks if bench.extra_info.get("figures")]
    if figures:
        terminalreporter.write_sep("=", "figures (extra_info['figures'])")
        for bench in figures:
            terminalreporter.write_line(f"{bench.name:<60} {bench.extra_info['figures']}")
