"""Fixtures shared by every layer's tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from sim.wire.keys import KeyStore


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory) -> Path:
    """The key directory of the tests that need keys but no particular ones: one for the
    whole run, shared by the xdist workers (the key store locks it while it makes a key), so
    that the test CA and each actor's identity are made once."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's directory, above each worker's own
    return base / "keys"


@pytest.fixture(scope="session")
def keystore(key_dir) -> KeyStore:
    """A test CA and actors' identities, made once per test run (see key_dir)."""
    return KeyStore(key_dir)


@pytest.fixture(scope="session")
def calibrated_profile(tmp_path_factory, keystore) -> Path:
    """A profile written by a real ``wssim calibrate --quick`` (some twenty seconds), once for
    the tests that read it: the CLI's (every op, then a run that uses it), the HTTP layer's
    and the testbed run's (its costs). They are in one xdist group, "testbed"."""
    from tests.cli.conftest import wssim

    out = tmp_path_factory.mktemp("calibrated") / "profile.json"
    env = {**os.environ, "WSSIM_KEY_DIR": str(keystore.directory)}
    result = wssim("calibrate", "--out", out, "--quick", timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def trace_dir(tmp_path_factory) -> Path:
    """Every trace of ``tests.traces.TRACES`` (one session, two application messages), made
    once for the tests that check traces with other tools (one xdist group, "traces"):
    <trace_dir>/<label>/, the private keys the runs used in <trace_dir>/keys."""
    from tests.traces import make_traces

    base = tmp_path_factory.mktemp("traces")
    make_traces(base)
    return base


@pytest.fixture(scope="session")
def xmlsec1() -> str:
    """The xmlsec1 command, the independent XML Signature / Encryption implementation."""
    path = shutil.which("xmlsec1")
    if path is None:
        pytest.fail("xmlsec1 is required (Debian package xmlsec1; .ci/run installs it)")
    return path


@pytest.fixture
def wssim_here(capsys, monkeypatch):
    """``wssim`` run in this process: the command's own parser, handlers and error reports,
    without an interpreter start-up each (the tests of ``python -m sim.cli`` itself run it in
    a subprocess). Returns what ``wssim`` returns: exit status, stdout, stderr."""
    from sim.cli import main

    monkeypatch.setenv("COLUMNS", "80")  # help laid out as in a subprocess without a terminal
    # No plot helper forked from here: main() has set its SIGTERM handler (which raises
    # KeyboardInterrupt), and a helper terminated as soon as it is forked (a run refused
    # right after it started) could take it before its own: the child then carried on as
    # this test process (with xdist: a worker whose parent waits for it forever). The
    # helper is exercised by the subprocess runs.
    monkeypatch.setattr("sim.report.plot_helper.start_plot_helper", lambda: None)

    def call(*args) -> subprocess.CompletedProcess:
        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        capsys.readouterr()
        try:
            code = main([str(arg) for arg in args])
        except SystemExit as exit_:  # --help
            code = exit_.code
        finally:
            for number, handler in handlers.items():
                signal.signal(number, handler)
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out.out, out.err)

    return call


#: Modules (or tests: node id prefixes) whose tests share an expensive module- or
#: session-scoped fixture (a JVM, a KDC, a browser, result directories, a testbed run) or
#: measure CPU time, by xdist group: a group runs in one worker, so that its fixtures are
#: made once and its CPU measurements never overlap.
XDIST_GROUPS = {
    # the traces of every strategy and variant (trace_dir), checked by xmlsec1, WSS4J (its
    # programs compiled once), OpenSAML and the BSP rules
    "traces": (
        "tests/interop/test_bsp_rules.py",
        "tests/interop/test_ours_read_wss4j.py",
        "tests/interop/test_saml_independent.py",
        "tests/interop/test_wss4j_reads_ours.py",
        "tests/cli/test_trace_verification.py",
        "tests/cli/test_trace_gcm.py",
        "tests/cli/test_trace_independent.py",
    ),
    # a throw-away MIT realm and a kerberos trace
    "mit-krb5": ("tests/interop/test_mit_krb5.py",),
    # one running Dask scheduler
    "dask": ("tests/cli/test_backends.py",),
    # the result directories of tests/report/conftest.py and one Chromium
    "report-results": (
        "tests/report/test_report_browser.py",
        "tests/report/test_report_cli.py",
        "tests/report/test_results_store.py",
    ),
    # processes pinned to cores whose CPU time is measured, one at a time, and the tests
    # reading the session's one `wssim calibrate` (calibrated_profile)
    "testbed": (
        "tests/testbed/",
        "tests/cli/test_cli.py::test_calibrate_writes_a_profile_of_every_op_that_a_run_then_uses",
    ),
}


def _group_of(nodeid: str) -> str | None:
    for group, prefixes in XDIST_GROUPS.items():
        if any(nodeid.startswith(prefix) for prefix in prefixes):
            return group
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests of XDIST_GROUPS, and run the groups and the tests marked slow first
    (a long test started last would keep one worker busy after the others ended)."""
    for item in items:
        group = _group_of(item.nodeid)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(
        key=lambda item: (
            not (item.get_closest_marker("xdist_group") or item.get_closest_marker("slow"))
        )
    )
