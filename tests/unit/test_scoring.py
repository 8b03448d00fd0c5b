"""Scoring as API.md states it: objective verdicts, points, total score, key SLIs."""

from __future__ import annotations

import math
from typing import Any

import pytest

from slipway.api.slo import SLO, parse_slo
from slipway.engine.scoring import SLIError, SLIValue, evaluate


def sets(*criteria_sets: list[str]) -> list[dict[str, list[str]]]:
    """`pass`/`warning` lists from plain lists of criteria."""
    return [{"criteria": criteria} for criteria in criteria_sets]


def make_slo(
    *objectives: dict[str, Any],
    total: dict[str, Any] | None = None,
    comparison: dict[str, Any] | None = None,
) -> SLO:
    document: dict[str, Any] = {
        "objectives": list(objectives),
        "total_score": total if total is not None else {"pass": "90%", "warning": "75%"},
    }
    if comparison is not None:
        document["comparison"] = comparison
    return parse_slo(document)


@pytest.mark.parametrize(
    ("objective", "value", "status", "score", "message"),
    [
        ({"pass": sets(["<=1"])}, 0.5, "pass", 1.0, "pass: 0.5 meets <=1"),
        ({"pass": sets(["<=1"])}, 1, "pass", 1.0, "pass: 1 meets <=1"),
        ({"pass": sets(["<1"])}, 1, "fail", 0.0, "fail: 1 misses pass (<1)"),
        ({"pass": sets(["=0"])}, 0, "pass", 1.0, "meets =0"),
        ({"pass": sets([">=99.5"])}, 99.9, "pass", 1.0, "meets >=99.5"),
        ({"pass": sets(["<=1"]), "warning": sets(["<=5"])}, 3, "warning", 0.5,
         "warning: 3 misses pass (<=1) but meets warning (<=5)"),
        ({"pass": sets(["<=1"]), "warning": sets(["<=5"]), "weight": 4}, 3, "warning", 2.0,
         "warning"),
        ({"pass": sets(["<=1"]), "warning": sets(["<=5"])}, 7, "fail", 0.0,
         "fail: 7 misses pass (<=1) and warning (<=5)"),
        ({"pass": sets(["<=1"]), "warning": sets(["<=0.1"])}, 0.5, "pass", 1.0, "pass"),
        ({"pass": sets([">=1", "<=5"])}, 3, "pass", 1.0, "pass: 3 meets >=1 and <=5"),
        ({"pass": sets([">=1", "<=5"])}, 6, "fail", 0.0, "fail: 6 misses pass (<=5)"),
        ({"pass": sets([">=1", "<=5"])}, 0, "fail", 0.0, "fail: 0 misses pass (>=1)"),
        ({"pass": sets(["<1"], [">9"])}, 10, "pass", 1.0, "pass: 10 meets >9"),
        ({"pass": sets(["<1"], [">9"])}, 5, "fail", 0.0, "misses pass (<1 or >9)"),
        ({"pass": sets([">=1", "<=2"], [">=8", "<=9"])}, 8.5, "pass", 1.0, "meets >=8 and <=9"),
        ({"pass": sets(["<=1"]), "warning": sets([">=2", "<=3"], [">=9"])}, 9, "warning", 0.5,
         "meets warning (>=9)"),
        ({"pass": sets(["<=1"]), "weight": 3}, None, "fail", 0.0,
         "fail: no value (no value received)"),
        ({"pass": sets(["<=1"])}, SLIError("prometheus: connection refused"), "fail", 0.0,
         "fail: no value (prometheus: connection refused)"),
        ({"pass": sets(["<=1"])}, math.nan, "fail", 0.0, "not a finite number (nan)"),
        ({"pass": sets(["<=1"])}, math.inf, "fail", 0.0, "not a finite number (inf)"),
        ({}, 3, "info", 0.0, "informative only (no pass criteria): 3"),
        ({"warning": sets(["<1"])}, 3, "info", 0.0, "informative only"),
        ({"pass": [], "weight": 5}, 3, "info", 0.0, "informative only"),
        ({}, SLIError("timeout"), "info", 0.0,
         "informative only (no pass criteria): no value (timeout)"),
    ],
)  # fmt: skip
def test_objective_verdicts(
    objective: dict[str, Any], value: SLIValue, status: str, score: float, message: str
) -> None:
    """Pass earns the weight, warning (checked when pass fails) half, fail or no value 0; AND
    within a set, OR across sets; no pass criteria is informative."""
    report = evaluate(make_slo({"sli": "x", **objective}), {"x": value})
    (result,) = report.objectives
    assert (result.status, result.score) == (status, score)
    assert message in result.message
    assert result.value == (
        value if isinstance(value, int | float) and math.isfinite(value) else None
    )


def test_targets_report_thresholds_and_whether_met() -> None:
    """Every criterion of pass and warning is reported with its threshold and verdict, by set."""
    report = evaluate(
        make_slo(
            {
                "sli": "x",
                "pass": sets(["<=1", ">=0"], ["=7"]),
                "warning": sets(["<=5"]),
            }
        ),
        {"x": 3},
    )
    targets = report.objectives[0].targets
    assert [[(t.criteria, t.threshold, t.met) for t in s] for s in targets.pass_] == [
        [("<=1", 1.0, False), (">=0", 0.0, True)],
        [("=7", 7.0, False)],
    ]
    assert [[(t.criteria, t.threshold, t.met) for t in s] for s in targets.warning] == [
        [("<=5", 5.0, True)]
    ]


def test_targets_without_a_value_are_not_met() -> None:
    """With no value, no target is met (a relative one without history neither)."""
    report = evaluate(make_slo({"sli": "x", "pass": sets(["<=1", "<=+10%"])}), {"x": None})
    assert [(t.threshold, t.met) for t in report.objectives[0].targets.pass_[0]] == [
        (1.0, False),
        (None, False),
    ]


def test_report_carries_objective_identity() -> None:
    """Each objective reports its SLI, display name (the SLI's when unset), weight and key flag."""
    report = evaluate(
        make_slo(
            {"sli": "a", "displayName": "Latency", "pass": sets(["<1"]), "weight": 2},
            {"sli": "b", "pass": sets(["<1"]), "key_sli": True},
        ),
        {"a": 0, "b": 0},
    )
    assert [(o.sli, o.display_name, o.weight, o.key_sli) for o in report.objectives] == [
        ("a", "Latency", 2, False),
        ("b", "b", 1, True),
    ]


def outcome_objectives(
    cases: list[tuple[int, str]],
) -> tuple[list[dict[str, Any]], dict[str, SLIValue]]:
    """Objectives (pass <=1, warning <=5) and values producing each wanted outcome."""
    values: dict[str, SLIValue] = {"pass": 0, "warning": 3, "fail": 9, "info": 1, "missing": None}
    objectives: list[dict[str, Any]] = []
    measured: dict[str, SLIValue] = {}
    for index, (weight, outcome) in enumerate(cases):
        name = f"sli{index}"
        objective: dict[str, Any] = {"sli": name, "weight": weight}
        if outcome != "info":
            objective.update(pass_=sets(["<=1"]), warning=sets(["<=5"]))
        objectives.append(objective)
        measured[name] = values[outcome]
    return objectives, measured


@pytest.mark.parametrize(
    ("cases", "total", "score", "result", "earned", "maximum"),
    [
        ([(1, "pass")], None, 100.0, "pass", 1, 1),
        ([(9, "pass"), (1, "fail")], None, 90.0, "pass", 9, 10),
        ([(19, "pass"), (1, "warning")], None, 97.5, "pass", 19.5, 20),
        ([(3, "pass"), (1, "warning")], None, 87.5, "warning", 3.5, 4),
        ([(1, "pass"), (1, "warning")], None, 75.0, "warning", 1.5, 2),
        ([(1, "pass"), (1, "fail")], None, 50.0, "fail", 1, 2),
        ([(2, "pass"), (1, "fail")], None, 200 / 3, "fail", 2, 3),
        ([(1, "warning")], None, 50.0, "fail", 0.5, 1),
        ([(1, "pass"), (1, "missing")], None, 50.0, "fail", 1, 2),
        ([(1, "pass"), (5, "info")], None, 100.0, "pass", 1, 1),
        ([(1, "fail"), (1, "info")], None, 0.0, "fail", 0, 1),
        ([(1, "info"), (2, "info")], None, 100.0, "pass", 0, 0),
        ([(1, "pass"), (1, "warning")], {"pass": "90%"}, 75.0, "fail", 1.5, 2),
        ([(1, "fail")], {"pass": "0%"}, 0.0, "pass", 0, 1),
        ([(1, "pass"), (1, "fail")], {"pass": "50"}, 50.0, "pass", 1, 2),
        ([(1, "pass"), (2, "fail")], {"pass": "90%", "warning": "33.33%"}, 100 / 3, "warning",
         1, 3),
        ([(2, "pass"), (1, "fail")], {"pass": "66.666666666667%"}, 200 / 3, "pass", 2, 3),
        ([(57, "pass"), (43, "fail")], {"pass": "57%"}, 57.0, "pass", 57, 100),  # 56.99999999999999
    ],
)  # fmt: skip
def test_total_score_and_result(
    cases: list[tuple[int, str]],
    total: dict[str, Any] | None,
    score: float,
    result: str,
    earned: float,
    maximum: float,
) -> None:
    """score = 100 x earned / weights of scored objectives (none scored: 100, pass); pass at
    >= pass%, else warning at >= warning% when set, else fail."""
    objectives, values = outcome_objectives(cases)
    report = evaluate(make_slo(*objectives, total=total), values)
    assert report.score == pytest.approx(score)
    assert report.result == result
    assert (report.totals.earned, report.totals.maximum) == (earned, maximum)
    assert report.message.startswith(f"{result}: ")


def test_totals_count_statuses_and_thresholds() -> None:
    """Totals count objectives per status and echo the thresholds in percent."""
    objectives, values = outcome_objectives(
        [(1, "pass"), (1, "pass"), (1, "warning"), (1, "fail"), (1, "missing"), (1, "info")]
    )
    totals = evaluate(make_slo(*objectives), values).totals
    assert (totals.passed, totals.warnings, totals.failed, totals.informative) == (2, 1, 2, 1)
    assert (totals.pass_threshold, totals.warning_threshold) == (90.0, 75.0)
    no_warning = evaluate(make_slo(*objectives, total={"pass": "80"}), values).totals
    assert (no_warning.pass_threshold, no_warning.warning_threshold) == (80.0, None)


@pytest.mark.parametrize(
    ("key_value", "result", "key_failed", "message"),
    [
        (0, "pass", [], "pass: score 100 >= 90%"),
        (9, "fail", ["key"], "fail: key SLI key failed (score 95)"),
        (None, "fail", ["key"], "fail: key SLI key failed (score 95)"),
        (SLIError("boom"), "fail", ["key"], "fail: key SLI key failed"),
        (math.nan, "fail", ["key"], "fail: key SLI key failed"),
        (3, "pass", [], "pass: score 97.5 >= 90%"),
    ],
)
def test_key_sli(key_value: SLIValue, result: str, key_failed: list[str], message: str) -> None:
    """A key SLI that fails or has no value fails the evaluation whatever the score; one that
    warns earns half its weight and does not."""
    objectives = [
        {"sli": "key", "key_sli": True, "pass": sets(["<=1"]), "warning": sets(["<=5"])},
        {"sli": "other", "weight": 19, "pass": sets(["<=1"])},
    ]
    report = evaluate(make_slo(*objectives), {"key": key_value, "other": 0})
    assert report.result == result
    assert report.key_sli_failed == key_failed
    assert message in report.message


def test_key_sli_fails_the_evaluation_even_in_the_warning_band() -> None:
    """A failed key SLI wins over a score that would have been a warning."""
    objectives = [
        {"sli": "key", "key_sli": True, "weight": 1, "pass": sets(["<=1"])},
        {"sli": "other", "weight": 4, "pass": sets(["<=1"])},
    ]
    report = evaluate(make_slo(*objectives), {"key": 5, "other": 0})
    assert (report.score, report.result) == (80.0, "fail")


def test_informative_key_sli_never_fails_the_evaluation() -> None:
    """A key SLI without pass criteria is informative: even without a value it cannot fail."""
    objectives: list[dict[str, Any]] = [
        {"sli": "key", "key_sli": True},
        {"sli": "other", "pass": sets(["<=1"])},
    ]
    report = evaluate(make_slo(*objectives), {"other": 0})
    assert (report.result, report.key_sli_failed, report.objectives[0].status) == (
        "pass",
        [],
        "info",
    )


def test_several_key_slis_are_all_named() -> None:
    """Every failed key SLI is listed, in SLO order."""
    objectives = [
        {"sli": "a", "key_sli": True, "pass": sets(["<1"])},
        {"sli": "b", "key_sli": True, "pass": sets(["<1"])},
        {"sli": "c", "key_sli": True, "pass": sets(["<1"])},
    ]
    report = evaluate(make_slo(*objectives), {"a": 5, "b": 0, "c": None})
    assert report.key_sli_failed == ["a", "c"]
    assert "key SLI a, c failed" in report.message


def test_empty_objective_list_fails() -> None:
    """An SLO without objectives fails, with score 0."""
    report = evaluate(make_slo(), {"x": 1})
    assert (report.result, report.score, report.objectives) == ("fail", 0.0, [])
    assert report.message == "fail: the SLO has no objectives"


def test_values_no_objective_names_are_ignored() -> None:
    """Extra SLI values change nothing; an objective whose SLI is absent has no value."""
    slo = make_slo({"sli": "x", "pass": sets(["<1"])}, {"sli": "y", "pass": sets(["<1"])})
    report = evaluate(slo, {"x": 0, "unrelated": 99})
    assert [o.status for o in report.objectives] == ["pass", "fail"]
    assert report.objectives[1].message == "fail: no value (no value received)"


def test_objectives_on_the_same_sli_are_judged_separately() -> None:
    """Two objectives may name one SLI; each is scored on its own."""
    slo = make_slo({"sli": "x", "pass": sets(["<1"])}, {"sli": "x", "pass": sets(["<10"])})
    report = evaluate(slo, {"x": 5})
    assert ([o.status for o in report.objectives], report.score) == (["fail", "pass"], 50.0)


def test_integer_values_are_numbers() -> None:
    """Integer SLI values are reported as floats and compared numerically."""
    report = evaluate(make_slo({"sli": "x", "pass": sets(["<=600"])}), {"x": 600})
    assert report.objectives[0].value == 600.0
    assert isinstance(report.objectives[0].value, float)
    assert report.result == "pass"
