"""How several results combine: the worst wins (`fail` > `warning` > `pass`)."""

from __future__ import annotations

from collections.abc import Iterable

from slipway.api.common import RESULT_ORDER, Result


def as_result(value: object) -> Result:
    """`value` as a Result; None and anything unknown count as `fail`."""
    if isinstance(value, Result):
        return value
    if isinstance(value, str) and value in {r.value for r in Result}:
        return Result(value)
    return Result.FAIL


def worst(results: Iterable[Result | None]) -> Result:
    """The worst of `results`; a missing (None) or unknown result counts as `fail`; no results
    at all give `pass` (nothing went wrong)."""
    rank = 0
    for value in results:
        rank = max(rank, RESULT_ORDER.index(as_result(value)))
    return RESULT_ORDER[rank]


def succeeded(result: Result) -> bool:
    """Whether `result` counts as success (`pass` or `warning`): condition `Succeeded=True`."""
    return result in (Result.PASS, Result.WARNING)
