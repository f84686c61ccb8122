"""Means with 95% confidence intervals, the unit of every claim: a prompt (and seed), never a draw.

Random-k draws of one prompt are averaged first, so five draws of one prompt count as one sample and
the interval says how much the claim would move with other prompts. Student's t interval on the means
of the units; a single unit has no interval (NaN bounds)."""
from __future__ import annotations

from collections import defaultdict
from typing import Hashable, Iterable

import numpy as np

CONFIDENCE = 0.95


def mean_interval(values: Iterable[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high) of the values' mean; NaN bounds for fewer than two values."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if x.size < 2:
        return mean, float("nan"), float("nan")
    from scipy.stats import t

    half = float(t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


def unit_means(pairs: Iterable[tuple[Hashable, float]]) -> list[float]:
    """The mean value of each unit, from (unit, value) pairs (a unit's draws averaged into one sample)."""
    groups: dict[Hashable, list[float]] = defaultdict(list)
    for unit, value in pairs:
        if value is not None and np.isfinite(value):
            groups[unit].append(value)
    return [float(np.mean(v)) for v in groups.values()]


def separated(upper: tuple[float, float, float], lower: tuple[float, float, float]) -> bool:
    """Whether the first interval lies wholly above the second (both bounds known)."""
    return bool(np.isfinite(upper[1]) and np.isfinite(lower[2]) and upper[1] > lower[2])
