"""Aggregating an SLI's earlier values into the one value relative criteria compare with.

Percentiles are Keptn v1's: linear interpolation between the sorted values at the 1-based rank
`p·(n+1)`, clamped to the smallest value below rank 1 and to the largest at or above rank n.
With the usual handful of earlier results this differs from the "inclusive" definition (numpy's
default, rank `p·(n-1)+1`) only at the tails: p90 of [100, 200, 300] is 300 here, 280 there.
Keeping Keptn's keeps verdicts of existing SLO files the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from slipway.api.slo import AggregateFunction

_PERCENTILES: dict[str, float] = {"p50": 0.50, "p90": 0.90, "p95": 0.95}


def aggregate(values: Sequence[float], function: AggregateFunction) -> float | None:
    """`avg`, `p50`, `p90` or `p95` of `values`; None when there are none."""
    if not values:
        return None
    if function == "avg":
        return math.fsum(values) / len(values)
    return percentile(values, _PERCENTILES[function])


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` (0..1) percentile of a non-empty sequence, Keptn v1's way (see above)."""
    ordered = sorted(values)
    rank = fraction * (len(ordered) + 1)
    if rank < 1.0:
        return ordered[0]
    if rank >= len(ordered):
        return ordered[-1]
    below = int(rank)  # 1-based rank of the value just below
    lower, upper = ordered[below - 1], ordered[below]
    return lower + (rank - below) * (upper - lower)
