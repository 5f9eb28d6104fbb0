"""Streaming statistics of application messages: bounded memory however long the run.

Latency quantiles are exact while the run has at most ``EXACT_LATENCIES`` completed messages
in the measured window, and come from a log-bucket histogram (relative error below 0.1 %)
beyond that; counts, sums, means and maxima are always exact.

Throughput is goodput: the messages completed inside the measured window (their end in it,
as nodes count their jobs), so it never exceeds what the bottleneck serves, however much is
offered; ``offered_per_s`` counts the messages started in it. Batch means (``batches``
equal time batches of the window) give one long run its confidence intervals; ``mser5``
finds a truncation point (an automatic warm-up) in an output series.
The rows of messages.csv are ``message_log.MessageLog``'s.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence

import numpy as np

EXACT_LATENCIES = 1_000_000
_BUCKET = math.log1p(0.001)  # 0.1 % wide buckets
#: distinct op-count tuples tracked by identity before they are folded into totals
OP_STEP_KINDS = 4096


def message_stats(run) -> MessageStats:
    """The statistics of one strategy in one replication of ``run`` (a scenario's
    ``run`` section): its window, batches, and whether records are kept for MSER-5."""
    return MessageStats(run.warmup_s, run.duration_s, run.batches, keep=run.warmup == "mser5")


class MessageStats:
    """Folds finished application messages of the measured window into running totals."""

    def __init__(self, warmup: float, end: float, batches: int = 0, keep: bool = False) -> None:
        self.warmup = warmup
        self.end = end
        self.started = 0
        self.completed = 0
        #: messages started before the window's end, and those of them ended by then: the
        #: difference is what is still in flight when the window closes
        self.opened = 0
        self.closed = 0
        #: messages completed (ok) inside the window, whenever they started: the goodput
        self.departures = 0
        #: batch means: per time batch of the window, the latency sum and count of the
        #: messages started in it, and the completions ending in it
        self.batches = batches
        self.batch_width = (end - warmup) / batches if batches else 0.0
        self.batch_latency = [0.0] * batches
        self.batch_count = [0] * batches
        self.batch_departures = [0] * batches
        #: capacity: the demand of the metered sessions ((role, resource) -> seconds), and
        #: their application messages
        self.demand: dict[tuple[str, str], float] = {}
        self.demand_messages = 0
        #: with ``keep`` (an automatic warm-up): every record and its op steps, in start
        #: order, and the records in the order they ended, to summarize again from a
        #: truncation point found after the run
        self.keep = keep
        self.kept: dict[int, list] = {}
        self.ended: list = []
        self.failed = 0
        self.latency_sum = 0.0
        self.latency_max = 0.0
        self.latencies = array("d")
        #: log buckets of every latency, filled once ``latencies`` is full
        self.histogram: dict[int, int] = {}
        self.request_bytes = 0
        self.response_bytes = 0
        self.token_bytes = 0
        self.sts_exchanges = 0
        #: id of an op-counts tuple -> [the tuple, how many finished steps had it]; replayed
        #: steps share a few tuples, full fidelity makes new ones: folded into ``_op_totals``
        #: beyond ``OP_STEP_KINDS`` of them
        self._op_steps: dict[int, list] = {}
        self._op_totals: dict[str, int] = {}
        self.faults: dict[str, int] = {}

    def start(self, record) -> None:
        """A message (a ``MessageRecord``) starts."""
        self.begin_message(record.start)
        if self.keep:
            self.kept[id(record)] = [record, None]

    def begin_message(self, start: float) -> None:
        """A message starts at ``start``."""
        if start < self.end:
            self.opened += 1
            if self.warmup <= start:
                self.started += 1

    def finish(self, record) -> None:
        """A message (a ``MessageRecord``) ends: ``end_message`` of its values."""
        if self.keep:
            self.kept[id(record)][1] = record.op_steps
            self.ended.append(record)
        self.end_message(
            record.start,
            record.end,
            record.ok,
            record.fault,
            record.recoveries,
            record.request_bytes,
            record.response_bytes,
            record.token_bytes,
            record.sts_exchanges,
            record.op_steps,
        )

    def end_message(
        self,
        start: float,
        end: float,
        ok: bool,
        fault: str | None,
        recoveries: int,
        request_bytes: int,
        response_bytes: int,
        token_bytes: int,
        sts_exchanges: int,
        op_steps: list,
    ) -> None:
        """A message started at ``start`` ends at ``end`` (``ok``, or failed with
        ``fault``), after ``recoveries``, with its byte counts and its steps' op counts."""
        window_end = self.end
        if end <= window_end and start < window_end:
            self.closed += 1
            if ok and self.warmup < end:
                self.departures += 1
                # the batch a time falls in, the last for any later (here and below)
                if self.batches:
                    k = int((end - self.warmup) / self.batch_width)
                    self.batch_departures[k if k < self.batches - 1 else self.batches - 1] += 1
        if not self.warmup <= start < window_end:
            return
        if ok:
            self.completed += 1
            latency = (end - start) * 1000
            if self.batches:
                b = int((start - self.warmup) / self.batch_width)
                if b >= self.batches:
                    b = self.batches - 1
                self.batch_latency[b] += latency
                self.batch_count[b] += 1
            self.latency_sum += latency
            if latency > self.latency_max:
                self.latency_max = latency
            if len(self.latencies) < EXACT_LATENCIES:
                self.latencies.append(latency)
            else:
                if not self.histogram:
                    for value in self.latencies:
                        self._bucket(value)
                self._bucket(latency)
        else:
            self.failed += 1
            code = fault or "wssim:NoResult"
            self.faults[code] = self.faults.get(code, 0) + 1
        if recoveries:
            self.faults["recovered"] = self.faults.get("recovered", 0) + recoveries
        self.request_bytes += request_bytes
        self.response_bytes += response_bytes
        self.token_bytes += token_bytes
        self.sts_exchanges += sts_exchanges
        kinds = self._op_steps
        for counts in op_steps:
            entry = kinds.get(id(counts))
            if entry is None:
                if len(kinds) >= OP_STEP_KINDS:
                    self._fold_op_steps()
                kinds[id(counts)] = [counts, 1]
            else:
                entry[1] += 1

    def add_demand(self, demand: dict[tuple[str, str], float], messages: int) -> None:
        """Add a metered session's demand on each resource and its application messages."""
        for key, seconds in demand.items():
            self.demand[key] = self.demand.get(key, 0.0) + seconds
        self.demand_messages += messages

    def truncated(self, warmup: float) -> MessageStats:
        """These statistics again from ``warmup`` on (``keep`` needed): every kept record
        started and finished anew, in its order; the demand carries over."""
        again = MessageStats(warmup, self.end, self.batches)
        for record, _ in self.kept.values():
            again.start(record)
        for record in self.ended:
            steps = record.op_steps
            record.op_steps = self.kept[id(record)][1]
            again.finish(record)
            record.op_steps = steps
        again.demand = dict(self.demand)
        again.demand_messages = self.demand_messages
        return again

    def ended_latencies(self) -> tuple[np.ndarray, np.ndarray]:
        """The latencies (ms) of the completed kept messages in the order they ended, and
        their end times: the output series an automatic warm-up reads."""
        done = [r for r in self.ended if r.ok]
        return (
            np.array([(r.end - r.start) * 1000 for r in done]),
            np.array([r.end for r in done]),
        )

    def _fold_op_steps(self) -> None:
        _add_op_steps(self._op_totals, self._op_steps)
        self._op_steps.clear()

    def _bucket(self, latency: float) -> None:
        bucket = int(math.log(max(latency, 1e-6) / 1e-6) / _BUCKET)
        self.histogram[bucket] = self.histogram.get(bucket, 0) + 1

    @property
    def ops(self) -> dict[str, int]:
        """How many of each op the finished messages of the window did."""
        totals = dict(self._op_totals)
        _add_op_steps(totals, self._op_steps)
        return totals

    def quantile(self, q: float) -> float:
        if not self.completed:
            return 0.0
        if self.completed <= len(self.latencies):
            return float(np.percentile(np.frombuffer(self.latencies, dtype=np.float64), q))
        rank = q / 100 * self.completed
        seen = 0
        for bucket in sorted(self.histogram):
            seen += self.histogram[bucket]
            if seen >= rank:
                return 1e-6 * math.exp((bucket + 0.5) * _BUCKET)
        return self.latency_max

    def summary(self, measured: float) -> dict:
        """The strategy's summary over a window of ``measured`` seconds: counts, goodput
        (``throughput_per_s``), offered load, what is in flight at the window's end, latency
        over the completed messages started in the window (``count`` of them), and, with
        ``batches``, batch means (``batch_means``)."""
        unfinished = self.started - self.completed - self.failed
        faults = dict(self.faults)
        if unfinished:
            faults["wssim:Unfinished"] = unfinished
        count = max(self.started, 1)
        summary = {
            "app_messages": self.started,
            "completed": self.completed,
            "failed": self.started - self.completed,
            "completed_in_window": self.departures,
            "throughput_per_s": self.departures / measured,
            "offered_per_s": self.started / measured,
            "in_flight_at_end": self.opened - self.closed,
            "latency_ms": {
                "mean": self.latency_sum / self.completed if self.completed else 0.0,
                "p50": self.quantile(50),
                "p95": self.quantile(95),
                "p99": self.quantile(99),
                "max": self.latency_max,
                "count": self.completed,
                "unstable": False,
            },
            "bytes_per_app_message": {
                "request": self.request_bytes / count,
                "response": self.response_bytes / count,
                "token_service": self.token_bytes / count,
            },
            "sts_requests": self.sts_exchanges,
            "crypto_ops_per_app_message": {op: n / count for op, n in sorted(self.ops.items())},
            "faults": dict(sorted(faults.items())),
        }
        if self.batches >= 2 and all(self.batch_count):
            summary["batch_means"] = {
                "batches": self.batches,
                "latency_ms.mean": [
                    s / n for s, n in zip(self.batch_latency, self.batch_count, strict=True)
                ],
                "throughput_per_s": [d / self.batch_width for d in self.batch_departures],
            }
        return summary


def mser5(series: Sequence[float] | np.ndarray, batch: int = 5) -> int:
    """MSER-5 (White 1997; Law & Kelton, *Simulation Modeling and Analysis*): how many
    leading observations of ``series`` to drop as the warm-up.

    The series is averaged in batches of ``batch``; the truncation drops the ``d`` first
    batch means that minimize the marginal standard error ``sum((Z_i - mean)^2) / (m - d)^2``
    of the ``m - d`` kept, ``d`` at most half of them (beyond, the run is too short to
    tell). Returns ``d * batch`` (0 for a series of fewer than two batches)."""
    values = np.asarray(series, dtype=float)
    m = len(values) // batch
    if m < 2:
        return 0
    means = values[: m * batch].reshape(m, batch).mean(axis=1)
    # sums and sums of squares of every suffix means[d:], d = 0 .. m - 1
    sums = np.cumsum(means[::-1])[::-1]
    squares = np.cumsum((means * means)[::-1])[::-1]
    kept = np.arange(m, 0, -1, dtype=float)
    spread = np.maximum(squares - sums * sums / kept, 0.0)
    statistic = spread / (kept * kept)
    half = m // 2
    return int(np.argmin(statistic[: half + 1])) * batch


def _add_op_steps(totals: dict[str, int], op_steps: dict[int, list]) -> None:
    """Add to ``totals`` the ops of ``op_steps`` (op-counts tuple and how many times)."""
    for counts, times in op_steps.values():
        for op, n in counts:
            totals[op] = totals.get(op, 0) + n * times


__all__ = [
    "EXACT_LATENCIES",
    "OP_STEP_KINDS",
    "MessageStats",
    "message_stats",
    "mser5",
]
