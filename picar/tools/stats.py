"""The one way PiCAR's benchmarks summarise a list of timings: p50, p95, p99 and how many."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def percentiles(values: Sequence[float], digits: int = 2) -> dict[str, float]:
    """p50/p95/p99 (linear interpolation, numpy's default) rounded to ``digits``, and ``n``; NaN when empty."""
    if not len(values):
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "n": 0}
    p50, p95, p99 = np.percentile(np.asarray(values, dtype=float), [50, 95, 99])
    return {"p50": round(float(p50), digits), "p95": round(float(p95), digits), "p99": round(float(p99), digits),
            "n": len(values)}
