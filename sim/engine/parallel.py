"""Where the replications of a run execute: one ``Job`` per (strategies, replication), run
in this process (``InProcess``) or on a pool of worker processes (``ProcessPool``). Both
are ``Runner``s, asked for outcomes in job order, so a run's result does not depend on
where its jobs ran; ``DaskPool`` sends them to a Dask cluster.

``run_job`` runs one picklable Job anywhere: it is what a worker runs, a local one or a
Dask worker.
"""

from __future__ import annotations

import gc
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sim.engine.costs import CostProfile
from sim.engine.fidelity import Fidelity
from sim.engine.preparation import prepare
from sim.engine.replication import ProgressInfo, Replication, Tracer
from sim.engine.scenario import Scenario
from sim.engine.summary import Outcome, outcome_of
from sim.protocol.api import KeyLog

Progress = Callable[[ProgressInfo], None]


@dataclass(frozen=True)
class Job:
    """One replication of one group of strategies (one strategy, or a mixed run's all)."""

    scenario: Scenario
    group: tuple[str, ...]
    profile: CostProfile
    seed: np.random.SeedSequence
    fidelity: Fidelity
    max_sessions: int | None
    key_dir: str | os.PathLike
    #: the replication's number (0-based)
    index: int

    @property
    def label(self) -> str:
        """The group's name in rows and warnings (``a+b`` for a mixed run)."""
        return "+".join(self.group)


class Runner(Protocol):
    """Runs a run's jobs and hands their outcomes over in job order."""

    def get(self, k: int) -> Outcome:
        """The outcome of job ``k`` (asked for in increasing order, some maybe skipped
        at the end of a group when its confidence target is met)."""
        ...

    def close(self) -> None:
        """Stop whatever still runs."""
        ...


def _ticks(
    progress: Progress | None, job: Job, replications: int, end: float
) -> Callable[[float, int], None] | None:
    """A replication's progress callback (simulated time, messages started) as ProgressInfo."""
    if progress is None:
        return None

    def tick(t: float, count: int) -> None:
        progress(ProgressInfo(t, end, count, job.index + 1, replications, job.label))

    return tick


class InProcess:
    """Runs each job here when asked, with the strategies of its group prepared once (and
    the ``tracer`` and ``keylog``, which cannot leave this process); ``progress`` ticks
    fifty times a replication."""

    def __init__(
        self,
        jobs: list[Job],
        *,
        tracer: Tracer | None = None,
        keylog: KeyLog | None = None,
        progress: Progress | None = None,
        replications: int = 1,
    ) -> None:
        self.jobs = jobs
        self.tracer = tracer
        self.keylog = keylog
        self.progress = progress
        self.replications = replications
        self._prepared: dict[tuple[str, ...], tuple[dict, dict | None]] = {}

    def get(self, k: int) -> Outcome:
        job = self.jobs[k]
        prepared = self._prepared.get(job.group)
        if prepared is None:
            prepared = self._prepared[job.group] = prepare(
                job.scenario, job.group, job.fidelity, job.key_dir, self.keylog
            )
        built, scripts = prepared
        return _replicate(
            job,
            built,
            scripts,
            tracer=self.tracer,
            progress=_ticks(self.progress, job, self.replications, job.scenario.run.duration_s),
        )

    def close(self) -> None:
        pass


#: per worker process: strategies built and replay scripts recorded, by configuration
_PREPARED: dict[tuple, tuple[dict, dict | None]] = {}


def _prepared(job: Job) -> tuple[dict, dict | None]:
    """``prepare`` for a job, once per process and configuration."""
    key = (job.scenario.model_dump_json(), job.group, job.fidelity, str(job.key_dir))
    prepared = _PREPARED.get(key)
    if prepared is None:
        prepared = _PREPARED[key] = prepare(job.scenario, job.group, job.fidelity, job.key_dir)
    return prepared


def run_job(job: Job) -> Outcome:
    """Run one replication (in a worker process, or wherever ``job`` was sent); an error
    that would not survive the trip back (unpicklable) comes back as a RuntimeError, as a
    pool would otherwise wait for it forever."""
    try:
        return _run_here(job)
    except Exception as error:
        try:
            pickle.loads(pickle.dumps(error))
        except Exception:
            raise RuntimeError(f"{type(error).__name__}: {error}") from None
        raise


def _run_here(job: Job) -> Outcome:
    built, scripts = _prepared(job)
    return _replicate(job, built, scripts)


def _replicate(
    job: Job,
    built: dict,
    scripts: dict | None,
    *,
    tracer: Tracer | None = None,
    progress: Callable[[float, int], None] | None = None,
) -> Outcome:
    """Run ``job``'s replication on its prepared strategies and replay scripts."""
    # The same seed for every strategy: common random numbers, a fair comparison.
    rep = Replication(
        job.scenario,
        built,
        job.profile,
        job.seed,
        job.fidelity,
        scripts=scripts,
        tracer=tracer,
        max_sessions=job.max_sessions,
        progress=progress,
    )
    rep.run()
    return outcome_of(rep, job.index, job.label)


class ProcessPool:
    """Jobs on worker processes, asked for in order: asking for job ``k`` makes sure jobs
    ``k`` to ``k + workers - 1`` are running, so the workers stay busy while the outcomes
    are taken in order (the same result as a sequential run). ``progress`` ticks once a
    replication. Workers ignore Ctrl-C; this process stops them (``close``) when it stops."""

    def __init__(
        self,
        workers: int,
        jobs: list[Job],
        *,
        progress: Progress | None = None,
        replications: int = 1,
    ) -> None:
        import multiprocessing

        # fork where the platform has it: workers inherit the loaded modules and keys
        methods = multiprocessing.get_all_start_methods()
        fork = "fork" in methods
        context = multiprocessing.get_context("fork" if fork else None)
        if fork:
            # Prepared here once, the strategies (and replay scripts) reach every worker
            # with the fork instead of being prepared again in each; frozen, the objects
            # made so far are left out of the workers' garbage collections, which would
            # otherwise write to (and so copy) every page they live on.
            for job in jobs:
                _prepared(job)
            gc.freeze()
        self.workers = min(workers, len(jobs))
        self.jobs = jobs
        self.progress = progress
        self.replications = replications
        try:
            self.pool = context.Pool(self.workers, initializer=_ignore_interrupts)
        except BaseException:
            gc.unfreeze()
            raise
        self.pending: dict[int, object] = {}

    def get(self, k: int) -> Outcome:
        for j in range(k, min(k + self.workers, len(self.jobs))):
            if j not in self.pending:
                self.pending[j] = self.pool.apply_async(run_job, (self.jobs[j],))
        outcome = self.pending.pop(k).get()
        _tick_done(self.progress, self.jobs[k], outcome, self.replications)
        return outcome

    def close(self) -> None:
        """Stop the workers, and with them what is still running or queued (an interrupted
        run, or one its confidence target stopped early)."""
        self.pool.terminate()
        self.pool.join()
        gc.unfreeze()


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C to the main process, and die quietly when it stops them."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _tick_done(progress: Progress | None, job: Job, outcome: Outcome, replications: int) -> None:
    """Progress of a replication run elsewhere: one tick when it is done."""
    if progress is not None:
        count = sum(s["app_messages"] for s in outcome.summaries.values())
        end = job.scenario.run.duration_s
        progress(ProgressInfo(end, end, count, job.index + 1, replications, job.label))


class DaskPool:
    """Jobs on a Dask cluster: the scheduler at ``scheduler``, or a LocalCluster of
    ``workers`` one-thread worker processes started here. Asked for in order like
    ``ProcessPool`` (as many jobs running ahead as the cluster has threads), so the result
    is the local pool's, replication for replication; each worker prepares a
    configuration's strategies once (``run_job``)."""

    def __init__(
        self,
        jobs: list[Job],
        *,
        scheduler: str | None = None,
        workers: int = 1,
        progress: Progress | None = None,
        replications: int = 1,
    ) -> None:
        from dask.distributed import Client, LocalCluster

        self.cluster = None
        if scheduler:
            self.client = Client(scheduler, timeout="10s")
        else:
            self.cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            self.client = Client(self.cluster)
        self.ahead = max(1, sum(self.client.nthreads().values()))
        self.jobs = jobs
        self.progress = progress
        self.replications = replications
        self.pending: dict[int, object] = {}

    def get(self, k: int) -> Outcome:
        for j in range(k, min(k + self.ahead, len(self.jobs))):
            if j not in self.pending:
                self.pending[j] = self.client.submit(run_job, self.jobs[j], pure=False)
        outcome = self.pending.pop(k).result()
        _tick_done(self.progress, self.jobs[k], outcome, self.replications)
        return outcome

    def close(self) -> None:
        """Cancel what still runs, and stop the cluster started here."""
        if self.pending:
            self.client.cancel(list(self.pending.values()))
            self.pending.clear()
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
