"""Streaming statistics of application messages: bounded memory however long the run.

Latency quantiles are exact while the run has at most ``EXACT_LATENCIES`` completed messages
in the measured window, and come from a log-bucket histogram (relative error below 0.1 %)
beyond that; counts, sums, means and maxima are always exact.
"""

from __future__ import annotations

import math
from array import array

import numpy as np

EXACT_LATENCIES = 1_000_000
_BUCKET = math.log1p(0.001)  # 0.1 % wide buckets


class MessageStats:
    """Folds finished application messages of the measured window into running totals."""

    def __init__(self, warmup: float, end: float) -> None:
        self.warmup = warmup
        self.end = end
        self.started = 0
        self.completed = 0
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
        #: id of an op-counts tuple -> [the tuple, how many finished steps had it]
        self._op_steps: dict[int, list] = {}
        self.faults: dict[str, int] = {}

    def in_window(self, start: float) -> bool:
        return self.warmup <= start < self.end

    def start(self, record) -> None:
        if self.warmup <= record.start < self.end:
            self.started += 1

    def finish(self, record) -> None:
        if not self.warmup <= record.start < self.end:
            return
        if record.ok:
            self.completed += 1
            latency = (record.end - record.start) * 1000
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
            code = record.fault or "wssim:NoResult"
            self.faults[code] = self.faults.get(code, 0) + 1
        if record.recoveries:
            self.faults["recovered"] = self.faults.get("recovered", 0) + record.recoveries
        self.request_bytes += record.request_bytes
        self.response_bytes += record.response_bytes
        self.token_bytes += record.token_bytes
        self.sts_exchanges += record.sts_exchanges
        op_steps = self._op_steps
        for counts in record.op_steps:
            entry = op_steps.get(id(counts))
            if entry is None:
                op_steps[id(counts)] = [counts, 1]
            else:
                entry[1] += 1

    def _bucket(self, latency: float) -> None:
        bucket = int(math.log(max(latency, 1e-6) / 1e-6) / _BUCKET)
        self.histogram[bucket] = self.histogram.get(bucket, 0) + 1

    @property
    def ops(self) -> dict[str, int]:
        """How many of each op the finished messages of the window did."""
        totals: dict[str, int] = {}
        for counts, times in self._op_steps.values():
            for op, n in counts:
                totals[op] = totals.get(op, 0) + n * times
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
        unfinished = self.started - self.completed - self.failed
        faults = dict(self.faults)
        if unfinished:
            faults["wssim:Unfinished"] = unfinished
        count = max(self.started, 1)
        return {
            "app_messages": self.started,
            "completed": self.completed,
            "failed": self.started - self.completed,
            "throughput_per_s": self.completed / measured,
            "latency_ms": {
                "mean": self.latency_sum / self.completed if self.completed else 0.0,
                "p50": self.quantile(50),
                "p95": self.quantile(95),
                "p99": self.quantile(99),
                "max": self.latency_max,
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
