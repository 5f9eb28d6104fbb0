"""The HTML report of the flagship compare in headless Chromium: how big, how fast it opens.

Run: ``python -m pytest benchmarks/bench_report.py --benchmark-only``. Figures reported:
the report's size (target under 5 MB) and the wall time from navigation to every chart
drawn (target under 2 s; ``extra_info`` also has the first screen and the page's own
``performance.now()`` when the last chart was drawn).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.report.browser import Browser, chromium_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def flagship_report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("flagship")
    subprocess.run(
        [sys.executable, "-m", "sim.cli", "compare", ROOT / "scenarios/sct-vs-per-message.toml",
         "--set", "run.duration_s=20", "--replications", "2", "--out", out, "--force",
         "--report"],
        check=True, capture_output=True, cwd=ROOT,
    )  # fmt: skip
    return out / "report.html"


def test_flagship_report_opens_with_every_chart_drawn(benchmark, flagship_report, tmp_path):
    executable = chromium_path()
    if executable is None:
        pytest.fail("chromium is required (Debian package chromium; .ci/run installs it)")
    browser = Browser(executable, tmp_path / "chromium")
    marks: list = []

    def open_report() -> None:
        browser.open(flagship_report.as_uri())
        browser.wait_until("document.body.getAttribute('data-charts-drawn') !== null")
        marks.append(
            browser.evaluate(
                "['data-first-screen-ms', 'data-drawn-ms', 'data-charts-drawn']"
                ".map(function (a) { return Number(document.body.getAttribute(a)); })"
            )
        )

    try:
        benchmark.pedantic(open_report, rounds=5, warmup_rounds=1)
        assert browser.errors() == []
    finally:
        browser.close()
    first, last, charts = marks[-1]
    benchmark.extra_info.update(
        {
            "report_mb": round(flagship_report.stat().st_size / 1e6, 2),
            "charts": charts,
            "first_screen_ms": first,
            "all_charts_ms": last,
        }
    )
