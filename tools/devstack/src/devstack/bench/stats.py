"""The statistics the benchmarks report: percentiles, run medians and ratios.

Percentiles interpolate linearly between the two nearest ranks (the method numpy and
``statistics.quantiles(method="inclusive")`` call "linear"), so the p50 of an even count
is the mean of the middle two and the p99 of 100 values lies between the 99th and the
100th. A figure measured over several runs is reported as the median of the runs'
figures, next to each run's own, because this machine is shared and one run can be
slowed by a neighbour; a ratio is computed inside each run (both sides measured
minutes apart at most) before its median is taken.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class StatsError(ValueError):
    """A statistic was asked of values it is not defined for."""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) of ``values``, linearly interpolated."""
    if not values:
        raise StatsError("a percentile of no values is undefined; measure something")
    if not 0.0 <= q <= 100.0:
        raise StatsError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(ordered[low])
    weight = rank - low
    return float(ordered[low] * (1.0 - weight) + ordered[high] * weight)


@dataclass(frozen=True, slots=True)
class Summary:
    """The distribution of one run's measurements (latencies in ms, say)."""

    count: int
    p50: float
    p90: float
    p99: float
    maximum: float
    mean: float

    def to_json(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "p50": round(self.p50, 3),
            "p90": round(self.p90, 3),
            "p99": round(self.p99, 3),
            "max": round(self.maximum, 3),
            "mean": round(self.mean, 3),
        }


def summarize(values: Sequence[float]) -> Summary:
    """Count, p50, p90, p99, maximum and mean of ``values``."""
    if not values:
        raise StatsError("cannot summarise no values; the run measured nothing")
    return Summary(
        count=len(values),
        p50=percentile(values, 50),
        p90=percentile(values, 90),
        p99=percentile(values, 99),
        maximum=float(max(values)),
        mean=float(statistics.fmean(values)),
    )


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values that were measured (``None`` ones left out)."""
    present = [float(value) for value in values if value is not None]
    if not present:
        return None
    return float(statistics.median(present))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or ``None`` if either is missing or it is 0/0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def median_of_runs(runs: Sequence[Mapping[str, Any]], key: str) -> float | None:
    """The median over runs of one numeric field (runs lacking it are left out)."""
    return median(
        float(run[key]) for run in runs if isinstance(run.get(key), int | float)
    )


def ratios_per_run(
    runs: Sequence[Mapping[str, Any]], numerator: str, denominator: str
) -> list[float | None]:
    """``run[numerator] / run[denominator]`` for each run, measured side by side."""
    return [ratio(run.get(numerator), run.get(denominator)) for run in runs]


def rate(count: int, seconds: float) -> float | None:
    """Items per second, or ``None`` when no time passed (nothing to divide by)."""
    if seconds <= 0:
        return None
    return count / seconds
