"""Plots of a run: latency CDF, utilization per role, bytes and crypto ops per message."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker as ticker
import numpy as np


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def latency_cdf(summary: dict, messages: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 5))
    for name in summary["strategies"]:
        latencies = np.sort(
            [
                m["latency_ms"]
                for m in messages
                if m["strategy"] == name and m["ok"] and m["replication"] == 0
            ]
        )
        if latencies.size:
            ax.plot(latencies, np.arange(1, latencies.size + 1) / latencies.size, label=name)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(ticker.FuncFormatter(_minor_label))
    ax.set_xlabel(
        "latency per application message, request sent to response verified (ms, log scale)"
    )
    ax.set_ylabel("fraction of messages completed within x")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Latency CDF per strategy — {summary['scenario']} (replication 1, after warm-up)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def utilization(summary: dict, path: Path) -> None:
    names = list(summary["strategies"])
    roles = sorted({r for s in summary["strategies"].values() for r in s["roles"]})
    fig, ax = plt.subplots(figsize=(max(8, len(names) * 1.1), 5))
    width = 0.8 / max(len(roles), 1)
    x = np.arange(len(names))
    for i, role in enumerate(roles):
        values = [
            summary["strategies"][n]["roles"].get(role, {}).get("utilization", 0) * 100
            for n in names
        ]
        ax.bar(x + i * width, values, width, label=role)
    ax.set_xticks(x + width * (len(roles) - 1) / 2, names, rotation=30, ha="right")
    ax.set_ylabel("CPU utilization (% of the role's cores)")
    ax.set_title("CPU utilization per role, averaged over the measured period")
    ax.legend()
    ax.grid(True, axis="y", alpha=0.3)
    _save(fig, path)


PART_LABELS = {
    "request": "application request",
    "response": "application response",
    "token_service": "token service (RST/RSTR, amortized)",
}


def bytes_per_message(summary: dict, path: Path) -> None:
    names = list(summary["strategies"])
    parts = ("request", "response", "token_service")
    fig, ax = plt.subplots(figsize=(max(8, len(names) * 1.1), 5))
    bottom = np.zeros(len(names))
    for part in parts:
        values = (
            np.array([summary["strategies"][n]["bytes_per_app_message"][part] for n in names])
            / 1024
        )
        ax.bar(names, values, bottom=bottom, label=PART_LABELS[part])
        bottom += values
    ax.set_ylabel("KiB per application message (SOAP envelopes)")
    ax.set_title("Bytes on the wire per application message, split by exchange")
    ax.tick_params(axis="x", rotation=30)
    ax.legend()
    ax.grid(True, axis="y", alpha=0.3)
    _save(fig, path)


PUBLIC_KEY_OPS = (
    "rsa_sign",
    "rsa_verify",
    "rsa_encrypt",
    "rsa_decrypt",
    "rsa_keygen",
    "tls_handshake",
)
SYMMETRIC_AND_XML_OPS = (
    "hmac",
    "p_sha1",
    "ut_derive",
    "aes_encrypt",
    "aes_decrypt",
    "c14n",
    "digest",
    "xml_parse",
    "xml_serialize",
    "cache_lookup",
)


def crypto_ops(summary: dict, path: Path) -> None:
    """Two panels: the expensive public-key operations, then the cheap symmetric and XML ones."""
    names = list(summary["strategies"])
    stats = summary["strategies"]
    fig, axes = plt.subplots(1, 2, figsize=(max(12, len(names) * 1.6), 5.5))
    colors = plt.get_cmap("tab20")
    for ax, group, title in (
        (axes[0], PUBLIC_KEY_OPS, "Public-key operations (RSA, TLS handshakes)"),
        (axes[1], SYMMETRIC_AND_XML_OPS, "Symmetric, hashing and XML operations"),
    ):
        ops = [
            op
            for op in group
            if any(s["crypto_ops_per_app_message"].get(op) for s in stats.values())
        ]
        bottom = np.zeros(len(names))
        for op in ops:
            values = np.array([stats[n]["crypto_ops_per_app_message"].get(op, 0) for n in names])
            ax.bar(
                names,
                values,
                bottom=bottom,
                label=op,
                color=colors((PUBLIC_KEY_OPS + SYMMETRIC_AND_XML_OPS).index(op)),
            )
            bottom += values
        ax.set_ylabel("operations per application message (all nodes)")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=35)
        for label in ax.get_xticklabels():
            label.set_ha("right")
        if ops:
            ax.legend(fontsize=8, ncol=2)
        else:
            ax.text(0.5, 0.5, "none", transform=ax.transAxes, ha="center", color="0.4")
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(
        "Cryptographic and XML operations per application message (STS exchanges included)"
    )
    _save(fig, path)


def _minor_label(value: float, _pos) -> str:
    """Label 2, 3 and 5 times each decade on a log axis, the rest unlabelled."""
    mantissa = value / 10 ** np.floor(np.log10(value))
    return (
        f"{value:g}"
        if round(mantissa) in (2, 3, 5) and abs(mantissa - round(mantissa)) < 1e-6
        else ""
    )


def write_plots(out: Path, summary: dict, messages: list[dict]) -> list[Path]:
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    written = []
    for name, function, args in (
        ("latency_cdf.png", latency_cdf, (summary, messages)),
        ("utilization.png", utilization, (summary,)),
        ("bytes_per_message.png", bytes_per_message, (summary,)),
        ("crypto_ops.png", crypto_ops, (summary,)),
    ):
        function(*args, plots / name)
        written.append(plots / name)
    return written


def sweep_plots(out: Path, rows: list[dict], x_key: str) -> None:
    """Throughput and p99 latency against the first swept key, one line per strategy."""
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    for metric, label, name in (
        ("throughput_per_s", "completed messages per second", "throughput.png"),
        ("p99_ms", "p99 latency (ms)", "p99.png"),
    ):
        fig, ax = plt.subplots(figsize=(8, 5))
        for strategy in sorted({r["strategy"] for r in rows}):
            points = sorted(
                (r[x_key], r[metric])
                for r in rows
                if r["strategy"] == strategy and isinstance(r[x_key], (int, float))
            )
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=strategy)
        ax.set_xlabel(x_key)
        ax.set_ylabel(label)
        ax.set_title(f"{label} against {x_key}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        _save(fig, plots / name)
