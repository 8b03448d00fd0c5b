"""Which earlier TaskExecutions an evaluation compares with, and in what order."""

from __future__ import annotations

from typing import Any

from slipway.api.slo import parse_slo
from slipway.engine.scoring import EarlierEvaluation, evaluate
from slipway.providers.evaluation import earlier_evaluations, is_invalidated


def _execution(
    name: str,
    finished_at: str | None,
    result: str = "pass",
    value: float | None = 1.0,
    *,
    invalidated: str | None = None,
    report: bool = True,
) -> dict[str, Any]:
    annotations = {"slipway.dev/invalidated": invalidated} if invalidated is not None else {}
    status: dict[str, Any] = {"phase": "Finished" if finished_at else "Started"}
    if finished_at:
        status["finishedAt"] = finished_at
    if report:
        status["output"] = {
            "evaluation": {
                "result": result,
                "score": 100,
                "objectives": [{"sli": "latency", "value": value}],
            }
        }
    return {
        "metadata": {
            "name": name,
            "annotations": annotations,
            "creationTimestamp": "2024-05-01T00:00:00Z",
        },
        "status": status,
    }


def test_history_is_finished_reports_newest_first_without_the_current_one() -> None:
    """Unfinished executions, ones without a report and the current one are left out; the
    rest are ordered by finishedAt, newest first."""
    items = [
        _execution("run-a-1-evaluate", "2024-05-01T10:00:00Z", value=100),
        _execution("run-c-1-evaluate", "2024-05-01T12:00:00Z", value=300, result="warning"),
        _execution("run-b-1-evaluate", "2024-05-01T11:00:00+00:00", value=200),
        _execution("run-d-1-evaluate", None),
        _execution("run-e-1-evaluate", "2024-05-01T13:00:00Z", report=False),
        _execution("run-now-1-evaluate", "2024-05-01T14:00:00Z"),
    ]
    history = earlier_evaluations(items, current="run-now-1-evaluate")
    assert history == [
        EarlierEvaluation("warning", {"latency": 300.0}, False, "run-c-1-evaluate"),
        EarlierEvaluation("pass", {"latency": 200.0}, False, "run-b-1-evaluate"),
        EarlierEvaluation("pass", {"latency": 100.0}, False, "run-a-1-evaluate"),
    ]


def test_an_invalidated_evaluation_is_marked_and_never_compared_with() -> None:
    """`slipway.dev/invalidated: "true"` marks it; the scorer then skips it and compares with
    the next one."""
    items = [
        _execution("new", "2024-05-01T12:00:00Z", value=999, invalidated="true"),
        _execution("old", "2024-05-01T11:00:00Z", value=100),
    ]
    history = earlier_evaluations(items, current="now")
    assert [(e.id, e.invalidated) for e in history] == [("new", True), ("old", False)]
    slo = parse_slo(
        {
            "comparison": {"compare_with": "single_result"},
            "objectives": [{"sli": "latency", "pass": [{"criteria": ["<=+10%"]}]}],
            "total_score": {"pass": "90%"},
        }
    )
    report = evaluate(slo, {"latency": 105.0}, history)
    assert report.comparison.compared == ["old"]
    assert report.objectives[0].compared_value == 100.0
    assert report.result == "pass"


def test_unreadable_reports_are_skipped() -> None:
    """A report with an unknown result or a non-numeric value does not break the history."""
    items = [
        _execution("bad-result", "2024-05-01T12:00:00Z", result="maybe"),
        _execution("good", "2024-05-01T11:00:00Z", value=5),
    ]
    items.append(_execution("bad-value", "2024-05-01T10:00:00Z"))
    items[-1]["status"]["output"]["evaluation"]["objectives"][0]["value"] = "fast"
    assert [e.id for e in earlier_evaluations(items, current="x")] == ["good"]


def test_only_true_invalidates() -> None:
    """The annotation invalidates when it says true, in any case; anything else does not."""
    assert is_invalidated({"slipway.dev/invalidated": "true"})
    assert is_invalidated({"slipway.dev/invalidated": " True "})
    assert not is_invalidated({"slipway.dev/invalidated": "false"})
    assert not is_invalidated({"slipway.dev/invalidated": "yes"})
    assert not is_invalidated({})
