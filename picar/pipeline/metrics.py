"""Per-stage latency samples and counters for the loop, cheap enough to keep on in production."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np


class StageTimes:
    """A bounded ring of samples (ms) per stage; percentiles on demand."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._rings: dict[str, np.ndarray] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, stage: str, ms: float) -> None:
        with self._lock:
            ring = self._rings.get(stage)
            if ring is None:
                ring = self._rings[stage] = np.zeros(self.capacity, np.float64)
                self._counts[stage] = 0
            ring[self._counts[stage] % self.capacity] = ms
            self._counts[stage] += 1

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, (time.perf_counter() - t0) * 1000.0)

    def samples(self, stage: str) -> np.ndarray:
        with self._lock:
            ring = self._rings.get(stage)
            if ring is None:
                return np.zeros(0)
            n = min(self._counts[stage], self.capacity)
            return ring[:n].copy()

    def summary(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for stage in list(self._rings):
            s = self.samples(stage)
            if s.size:
                p50, p95, p99 = np.percentile(s, [50, 95, 99])
                out[stage] = {"p50": round(float(p50), 3), "p95": round(float(p95), 3),
                              "p99": round(float(p99), 3), "mean": round(float(s.mean()), 3),
                              "n": int(self._counts[stage])}
        return out
