"""Predicted against measured: the flat metrics of ``validation.json``, their relative
errors, the terminal table and ``plots/validation.png``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

#: the metrics held against each other besides the per-role ones
LATENCY_AND_RATE = ("p50_ms", "p95_ms", "throughput_per_s", "saturation_per_s")
#: the per-role figures (``<name>.<role>``)
PER_ROLE = ("cpu_ms_per_message", "utilization")


def flatten(
    metrics: Mapping, saturation: float | None, saturation_loadgen: float | None = None
) -> dict[str, float]:
    """The compared figures of one side (measured or predicted) of a strategy;
    ``saturation_loadgen``: the load generator's CPU ms a message at saturation."""
    out: dict[str, float] = {}
    for name in PER_ROLE:
        for role, value in sorted(metrics[name].items()):
            out[f"{name}.{role}"] = float(value)
    for name in LATENCY_AND_RATE[:3]:
        out[name] = float(metrics[name])
    if saturation is not None:
        out["saturation_per_s"] = float(saturation)
    if "loadgen" in metrics:
        # the clients' CPU, on the load generator's one core
        out["loadgen_cpu_ms_per_message"] = float(metrics["loadgen"]["cpu_ms_per_message"])
    if saturation_loadgen is not None:
        out["saturation_loadgen_cpu_ms_per_message"] = float(saturation_loadgen)
    cpu = sum(metrics["cpu_ms_per_message"].values())
    if cpu > 0:
        # every server node of the testbed shares one core: what it could serve at most
        out["server_capacity_per_s"] = 1000.0 / cpu
    return out


def relative_errors(predicted: Mapping[str, float], measured: Mapping[str, float]) -> dict:
    """(predicted - measured) / measured for every metric both sides have (None where the
    measured value is 0)."""
    return {
        key: (predicted[key] - value) / value if value else None
        for key, value in measured.items()
        if key in predicted
    }


def entry(predicted: Mapping[str, float], measured: Mapping[str, float]) -> dict:
    return {
        "predicted": dict(predicted),
        "measured": dict(measured),
        "relative_error": relative_errors(predicted, measured),
    }


def table(strategies: Mapping[str, dict]):
    """A rich Table: one row per strategy and metric."""
    from rich.table import Table

    out = Table(title="testbed: predicted against measured")
    for column in ("strategy", "metric", "predicted", "measured", "error"):
        out.add_column(column, justify="left" if column in ("strategy", "metric") else "right")
    for name, data in strategies.items():
        for key, value in data["measured"].items():
            error = data["relative_error"].get(key)
            text = "n/a" if error is None else f"{error:+.1%}"
            style = None if error is None or abs(error) <= 0.2 else "yellow"
            out.add_row(
                name,
                key,
                f"{data['predicted'].get(key, float('nan')):.3g}",
                f"{value:.3g}",
                f"[{style}]{text}[/]" if style else text,
            )
        out.add_section()
    return out


def plot(strategies: Mapping[str, dict], path: Path) -> None:
    """Predicted against measured, one point per strategy and metric (log axes, one marker
    per metric family), the diagonal and a ±20 % band drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = {
        "cpu_ms_per_message": "o",
        "utilization": "v",
        "p50_ms": "s",
        "p95_ms": "D",
        "throughput_per_s": "^",
        "saturation_per_s": "*",
        "server_capacity_per_s": "P",
        "loadgen_cpu_ms_per_message": "h",
    }
    figure, axes = plt.subplots(figsize=(7, 6.5))
    colours = plt.get_cmap("tab10")
    values = []
    seen: set[str] = set()
    for index, (name, data) in enumerate(strategies.items()):
        for key, measured in data["measured"].items():
            predicted = data["predicted"].get(key)
            if predicted is None or measured <= 0 or predicted <= 0:
                continue
            family = key.split(".")[0]
            axes.scatter(
                measured,
                predicted,
                marker=markers.get(family, "x"),
                color=colours(index % 10),
                label=name if name not in seen else None,
                s=36,
                alpha=0.85,
            )
            seen.add(name)
            values += [measured, predicted]
    if values:
        low, high = min(values) / 1.5, max(values) * 1.5
        axes.plot(
            [low, high], [low, high], color="black", linewidth=1, label="predicted = measured"
        )
        for factor in (0.8, 1.2):
            axes.plot(
                [low, high], [low * factor, high * factor], color="grey", linewidth=0.6, ls="--"
            )
        axes.set_xlim(low, high)
        axes.set_ylim(low, high)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("measured on the testbed")
    axes.set_ylabel("predicted by the simulator")
    names = [f"{m} {k}" for k, m in markers.items()]
    shapes = ", ".join(names[:4]) + "\n" + ", ".join(names[4:])
    axes.set_title(f"prediction against measurement (dashed: ±20 %)\n{shapes}", fontsize=8)
    axes.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
