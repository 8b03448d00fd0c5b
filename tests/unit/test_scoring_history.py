"""Earlier evaluations: which are compared with, how their values aggregate, relative criteria."""

from __future__ import annotations

from typing import Any

import pytest

from slipway.api.slo import Comparison, parse_slo
from slipway.engine.report import Result
from slipway.engine.scoring import (
    EarlierEvaluation,
    SLIError,
    SLIValue,
    evaluate,
    select_history,
)


def earlier(
    result: Result, value: SLIValue = None, invalidated: bool = False, name: str = ""
) -> EarlierEvaluation:
    """An earlier evaluation with `value` for SLI `x` (none when None)."""
    values = {} if value is None else {"x": value}
    return EarlierEvaluation(result=result, values=values, invalidated=invalidated, id=name)


HISTORY = [  # newest first
    earlier("pass", 100.0),
    earlier("fail", 200.0),
    earlier("warning", 300.0),
    earlier("pass", 400.0, invalidated=True),
    earlier("pass", 500.0),
    earlier("warning", 600.0),
    earlier("pass", 700.0),
]


@pytest.mark.parametrize(
    ("comparison", "positions"),
    [
        (None, [0]),
        ({"compare_with": "single_result"}, [0]),
        ({"compare_with": "single_result", "include_result_with_score": "all"}, [0]),
        ({}, [0, 1, 2]),
        ({"compare_with": "several_results"}, [0, 1, 2]),
        ({"compare_with": "several_results", "number_of_comparison_results": 5}, [0, 1, 2, 4, 5]),
        ({"compare_with": "several_results", "number_of_comparison_results": 99},
         [0, 1, 2, 4, 5, 6]),
        ({"compare_with": "several_results", "include_result_with_score": "pass"}, [0, 4, 6]),
        ({"compare_with": "several_results", "include_result_with_score": "pass_or_warn"},
         [0, 2, 4]),
        ({"compare_with": "several_results", "include_result_with_score": "pass",
          "number_of_comparison_results": 2}, [0, 4]),
    ],
)  # fmt: skip
def test_select_history(comparison: dict[str, Any] | None, positions: list[int]) -> None:
    """Newest first, never invalidated, filtered by overall result, then the newest N (1 for
    single_result)."""
    document: dict[str, Any] = {"total_score": {"pass": "90%"}}
    if comparison is not None:
        document["comparison"] = comparison
    resolved = parse_slo(document).comparison
    assert [position for position, _ in select_history(HISTORY, resolved)] == positions


def test_filter_applies_before_the_limit() -> None:
    """single_result with include pass takes the newest *passing* evaluation, not the newest."""
    history = [earlier("fail", 1.0), earlier("warning", 2.0), earlier("pass", 3.0)]
    comparison = Comparison(compare_with="single_result", include_result_with_score="pass")
    assert select_history(history, comparison) == [(2, history[2])]


def test_invalidated_never_count_even_when_newest() -> None:
    """Invalidated evaluations are skipped and do not use up the N."""
    history = [earlier("pass", 1.0, invalidated=True), earlier("pass", 2.0)]
    comparison = Comparison(compare_with="single_result")
    assert select_history(history, comparison) == [(1, history[1])]


def relative_slo(criteria: list[str], comparison: dict[str, Any]) -> Any:
    return parse_slo(
        {
            "comparison": comparison,
            "objectives": [{"sli": "x", "pass": [{"criteria": criteria}]}],
            "total_score": {"pass": "90%"},
        }
    )


@pytest.mark.parametrize(
    ("function", "compared"),
    [("avg", 200.0), ("p50", 200.0), ("p90", 300.0), ("p95", 300.0)],
)
def test_compared_value_aggregates_the_chosen_values(function: str, compared: float) -> None:
    """The compared value is avg/p50/p90/p95 of the SLI in the chosen earlier evaluations."""
    history = [earlier("pass", 300.0), earlier("pass", 100.0), earlier("pass", 200.0)]
    slo = relative_slo(
        ["<=+10%"], {"compare_with": "several_results", "aggregate_function": function}
    )
    report = evaluate(slo, {"x": 1.0}, history)
    assert report.objectives[0].compared_value == pytest.approx(compared)


@pytest.mark.parametrize(
    ("criteria", "value", "threshold", "status"),
    [
        (["<=+10%"], 220.0, 220.0, "pass"),
        (["<=+10%"], 221.0, 220.0, "fail"),
        (["<=-10%"], 180.0, 180.0, "pass"),
        (["<=-10%"], 190.0, 180.0, "fail"),
        (["<=+10"], 210.0, 210.0, "pass"),
        (["<=-10"], 191.0, 190.0, "fail"),
        ([">=-5%"], 190.0, 190.0, "pass"),
        (["=+0%"], 200.0, 200.0, "pass"),
    ],
)
def test_relative_criteria_against_history(
    criteria: list[str], value: float, threshold: float, status: str
) -> None:
    """Relative criteria resolve against the aggregate A of earlier values (here A = 200)."""
    history = [earlier("pass", 150.0), earlier("pass", 250.0)]
    slo = relative_slo(criteria, {"compare_with": "several_results"})
    objective = evaluate(slo, {"x": value}, history).objectives[0]
    assert objective.compared_value == 200.0
    assert objective.targets.pass_[0][0].threshold == threshold
    assert objective.status == status


@pytest.mark.parametrize(
    "history",
    [
        [],
        [earlier("pass")],
        [earlier("pass", SLIError("down")), earlier("pass", float("nan"))],
        [earlier("fail", 1.0)],
        [earlier("pass", 1.0, invalidated=True)],
    ],
)
def test_without_an_earlier_value_relative_criteria_are_met(
    history: list[EarlierEvaluation],
) -> None:
    """No usable earlier value (none, missing, errors, filtered out): relative criteria hold,
    absolute ones are still judged."""
    slo = relative_slo(["<=+10%", "<600"], {"include_result_with_score": "pass"})
    passing = evaluate(slo, {"x": 599.0}, history).objectives[0]
    assert (passing.status, passing.compared_value) == ("pass", None)
    assert [(t.threshold, t.met) for t in passing.targets.pass_[0]] == [(None, True), (600.0, True)]
    assert "<=+10% [no earlier value]" in passing.message
    failing = evaluate(slo, {"x": 601.0}, history).objectives[0]
    assert failing.status == "fail"


def test_evaluations_without_the_sli_still_count_towards_n() -> None:
    """N counts evaluations (as Keptn): one lacking the SLI leaves fewer values, not older ones."""
    history = [earlier("pass"), earlier("pass", 100.0), earlier("pass", 900.0)]
    slo = relative_slo(
        ["<=+10%"], {"compare_with": "several_results", "number_of_comparison_results": 2}
    )
    assert evaluate(slo, {"x": 1.0}, history).objectives[0].compared_value == 100.0


def test_only_that_slis_values_are_aggregated() -> None:
    """Each objective aggregates its own SLI's earlier values."""
    history = [EarlierEvaluation(result="pass", values={"x": 10.0, "y": 1000.0})]
    slo = parse_slo(
        {
            "objectives": [
                {"sli": "x", "pass": [{"criteria": ["<=+10%"]}]},
                {"sli": "y", "pass": [{"criteria": ["<=+10%"]}]},
            ],
            "total_score": {"pass": "90%"},
        }
    )
    report = evaluate(slo, {"x": 11.0, "y": 1200.0}, history)
    assert [(o.compared_value, o.status) for o in report.objectives] == [
        (10.0, "pass"),
        (1000.0, "fail"),
    ]


def test_comparison_report_names_the_evaluations_used() -> None:
    """The report says how earlier results were chosen and which: ids, else #position."""
    history = [
        earlier("fail", 1.0, name="run-3"),
        earlier("pass", 1.0, name="run-2", invalidated=True),
        earlier("pass", 1.0),
        earlier("pass", 1.0, name="run-0"),
    ]
    slo = relative_slo(["<=+10%"], {"include_result_with_score": "pass"})
    comparison = evaluate(slo, {"x": 1.0}, history).comparison
    assert comparison.compared == ["#2", "run-0"]
    assert (
        comparison.compare_with,
        comparison.include_result_with_score,
        comparison.number_of_comparison_results,
        comparison.aggregate_function,
    ) == ("several_results", "pass", 3, "avg")
