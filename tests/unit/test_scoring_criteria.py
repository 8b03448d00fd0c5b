"""Criteria grammar, thresholds, comparisons, and the aggregation of earlier values."""

from __future__ import annotations

import pytest

from slipway.api.slo import AggregateFunction
from slipway.engine.aggregation import aggregate, percentile
from slipway.engine.criteria import Criterion, Operator, compare, parse_criterion


@pytest.mark.parametrize(
    ("text", "operator", "amount", "relation"),
    [
        ("<600", "<", 600.0, "absolute"),
        ("<=1", "<=", 1.0, "absolute"),
        ("=0", "=", 0.0, "absolute"),
        (">=99.5", ">=", 99.5, "absolute"),
        (">.5", ">", 0.5, "absolute"),
        ("<1e3", "<", 1000.0, "absolute"),
        ("<=+10%", "<=", 10.0, "+%"),
        ("<10%", "<", 10.0, "+%"),
        (">=-10%", ">=", 10.0, "-%"),
        ("<=+5", "<=", 5.0, "+"),
        (">-5", ">", 5.0, "-"),
        ("=-5", "=", 5.0, "-"),
        (" < =  + 2.5 % ", "<=", 2.5, "+%"),
    ],
)
def test_parse_criterion(text: str, operator: str, amount: float, relation: str) -> None:
    """Operator, amount and relation come out of every form; a sign or `%` means relative."""
    criterion = parse_criterion(text)
    assert (criterion.operator, criterion.amount, criterion.relation) == (
        operator,
        amount,
        relation,
    )
    assert criterion.text == text
    assert criterion.relative is (relation != "absolute")


@pytest.mark.parametrize("text", ["600", "<<5", "=>5", "<=x", "", "<=+-5", "<inf", "<nan"])
def test_parse_criterion_rejects_text_outside_the_grammar(text: str) -> None:
    """Text the SLO model would reject raises ValueError here too."""
    with pytest.raises(ValueError, match="invalid criterion"):
        parse_criterion(text)


@pytest.mark.parametrize(
    ("text", "aggregate_value", "threshold"),
    [
        ("<600", None, 600.0),
        ("<600", 100.0, 600.0),
        ("<=+10%", 200.0, 220.0),
        ("<=10%", 200.0, 220.0),
        ("<=-10%", 200.0, 180.0),
        ("<=+10", 200.0, 210.0),
        ("<=-10", 200.0, 190.0),
        ("<=+10%", 100.0, 110.0),
        ("<=+0%", 0.0, 0.0),
        ("<=+10%", None, None),
        ("<=-10", None, None),
    ],
)
def test_threshold_resolution(
    text: str, aggregate_value: float | None, threshold: float | None
) -> None:
    """Absolute ignores history; +x% -> A(1+x/100), -x% -> A(1-x/100), +x -> A+x, -x -> A-x;
    a relative criterion without an aggregate has no threshold."""
    assert parse_criterion(text).threshold(aggregate_value) == threshold


@pytest.mark.parametrize(
    ("left", "operator", "right", "expected"),
    [
        (1.0, "<", 2.0, True),
        (2.0, "<", 2.0, False),
        (3.0, "<", 2.0, False),
        (2.0, "<=", 2.0, True),
        (2.5, "<=", 2.0, False),
        (2.0, "=", 2.0, True),
        (2.1, "=", 2.0, False),
        (2.0, ">=", 2.0, True),
        (1.5, ">=", 2.0, False),
        (3.0, ">", 2.0, True),
        (2.0, ">", 2.0, False),
        (0.0, "=", 0.0, True),
        (0.1 + 0.2, "=", 0.3, True),
        (110.0, "=", 100 * 1.1, True),
        (110.00000000000001, "<", 110.0, False),
        (110.0, ">", 110.00000000000001 - 1e-12, False),
        (1.0, "=", 1.000001, False),
    ],
)
def test_compare(left: float, operator: Operator, right: float, expected: bool) -> None:
    """The five operators; numbers within a relative 1e-9 are equal (float noise cannot flip)."""
    assert compare(left, operator, right) is expected


def test_relative_criterion_without_history_holds_for_any_value() -> None:
    """With no earlier value (threshold None) a relative criterion is met."""
    criterion = parse_criterion("<=+10%")
    assert criterion.holds(1e9, criterion.threshold(None))


def test_relative_equality_is_not_defeated_by_float_noise() -> None:
    """`=+10%` of 100 holds for 110 although 100*1.1 is 110.00000000000001 in binary."""
    criterion = parse_criterion("=+10%")
    assert criterion.holds(110.0, criterion.threshold(100.0))


def test_criterion_is_a_value() -> None:
    """Parsed criteria compare by value, so they can be cached or deduplicated."""
    assert parse_criterion("<=+10%") == Criterion("<=+10%", "<=", 10.0, "+%")


@pytest.mark.parametrize(
    ("values", "function", "expected"),
    [
        ([], "avg", None),
        ([], "p95", None),
        ([4.0], "avg", 4.0),
        ([4.0], "p50", 4.0),
        ([4.0], "p95", 4.0),
        ([100.0, 200.0, 600.0], "avg", 300.0),
        ([0.1, 0.2, 0.3], "avg", 0.2),
        ([300.0, 100.0, 200.0], "p50", 200.0),
        ([100.0, 200.0], "p50", 150.0),
        ([100.0, 200.0, 300.0], "p90", 300.0),
        ([100.0, 200.0, 300.0], "p95", 300.0),
        ([float(v) for v in range(1, 11)], "p50", 5.5),
        ([float(v) for v in range(1, 11)], "p90", 9.9),
        ([float(v) for v in range(1, 11)], "p95", 10.0),
        ([float(v) for v in range(1, 20)], "p95", 19.0),
        ([float(v) for v in range(1, 21)], "p95", 19.95),
        ([float(v) for v in range(1, 21)], "p90", 18.9),
    ],
)
def test_aggregate(
    values: list[float], function: AggregateFunction, expected: float | None
) -> None:
    """avg, and p50/p90/p95 by linear interpolation at rank p(n+1), clamped (Keptn v1's)."""
    result = aggregate(values, function)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [(0.0, 10.0), (0.2, 10.0), (0.25, 10.0), (0.5, 20.0), (0.6, 24.0), (0.75, 30.0), (1.0, 30.0)],
)
def test_percentile_clamps_below_first_and_above_last_rank(
    fraction: float, expected: float
) -> None:
    """Ranks below 1 give the smallest value, ranks at or above n the largest."""
    assert percentile([30.0, 10.0, 20.0], fraction) == pytest.approx(expected)
