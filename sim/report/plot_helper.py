"""The plots of a run drawn beside it: a helper process, forked when the run starts, imports
matplotlib while the run simulates, then draws ``write_plots`` while this process writes
the other outputs, on the machine's second core.

The helper runs the same ``write_plots`` on the same values (sent pickled), so the files
are the ones this process would write. A plot that fails raises its error here, in
``wait``, after the other outputs are written (where ``write_plots`` raised it before),
with the helper's traceback as its cause; a helper that is gone (killed, or never started:
one core, no ``fork``) leaves the plots to this process.

Writing ``results.sqlite`` there too was tried: the helper then finished last (this
process waited 1.4 to 1.6 s for it at the issue's workload, against 0.02 s with the store
written here).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import traceback
from pathlib import Path


class RemoteTraceback(Exception):
    """The traceback of an error raised in the helper (the cause of the error raised here)."""

    def __str__(self) -> str:
        return str(self.args[0])


class PlotHelper:
    """``write_plots`` in a forked helper process: ``start`` hands it a run's values,
    ``wait`` returns the paths written (or raises the plot's error)."""

    def __init__(self) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, self._conn), daemon=True)
        # Ctrl-C and SIGTERM held back across the fork: the helper's handlers must be in
        # place first (with this process's handler, a signal arriving in the child before
        # they are could raise KeyboardInterrupt out of the fork and run this process's code)
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
        try:
            self._process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        child.close()
        self._job: tuple | None = None
        self._sent = False

    def start(self, out: Path, summary: dict, messages, **kwargs) -> None:
        """Begin drawing ``write_plots(out, summary, messages, **kwargs)`` in the helper."""
        self._job = (out, summary, messages, kwargs)
        try:
            self._conn.send(self._job)
            self._sent = True
        except (OSError, EOFError):
            self._sent = False

    def wait(self) -> list[Path]:
        """The plots written; a plot's error raised here (the helper's traceback as its
        cause). Drawn here when the helper is gone."""
        if self._job is None:
            raise RuntimeError("PlotHelper.wait before start")
        reply = None
        if self._sent:
            try:
                reply = self._conn.recv()
            except (OSError, EOFError):
                reply = None
        self.close()
        if reply is None:  # the helper died: drawn here, as without it
            from sim.report.plots import write_plots

            out, summary, messages, kwargs = self._job
            return write_plots(out, summary, messages, **kwargs)
        status, value, text = reply
        if status == "ok":
            return value
        raise value from RemoteTraceback(text)

    def close(self) -> None:
        """Stop the helper (idle, or drawing what is no longer wanted)."""
        self._conn.close()
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=5.0)
        if self._process.is_alive():  # SIGTERM still held back or ignored: no waiting forever
            self._process.kill()
            self._process.join()


def start_plot_helper() -> PlotHelper | None:
    """A PlotHelper, or None where it cannot help (one core) or cannot run (no fork)."""
    import multiprocessing

    if (os.cpu_count() or 1) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    try:
        return PlotHelper()
    except OSError:
        return None


#: the signals blocked from the fork until the helper's handlers are set
_HELD = {signal.SIGINT, signal.SIGTERM}


def _ignore(signum, frame) -> None:
    """Ctrl-C, in the helper: nothing to do."""


def _serve(conn, parent_end) -> None:
    """The helper: import the plots, then draw the one job it is sent."""
    parent_end.close()  # so that the pipe ends (EOF) when the run's process goes
    # Ctrl-C reaches the whole process group: the run stops cleanly and still wants its
    # plots; the helper ends when this process closes the pipe or terminates it. A handler
    # doing nothing rather than SIG_IGN: a process ignoring SIGINT is one of the run's
    # worker pool (tests/cli/test_interrupt.py waits for those).
    signal.signal(signal.SIGINT, _ignore)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
    with contextlib.suppress(Exception):  # raised again by the job, where it is reported
        importlib.import_module("sim.report.plots")  # the import is what is done early
    try:
        try:
            out, summary, messages, kwargs = conn.recv()
        except (OSError, EOFError):
            return
        try:
            from sim.report.plots import write_plots

            reply = ("ok", write_plots(out, summary, messages, **kwargs), "")
        except Exception as error:
            reply = ("error", error, traceback.format_exc())
        try:
            conn.send(reply)
        except (OSError, EOFError):
            return  # nobody waits any more
        except Exception:  # an error that does not pickle: its type and message, as text
            error = reply[1]
            conn.send(("error", RuntimeError(f"{type(error).__name__}: {error}"), reply[2]))
    except (OSError, EOFError):
        return
    finally:
        conn.close()
