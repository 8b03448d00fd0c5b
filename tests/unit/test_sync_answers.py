"""A synchronous tool's answer is recorded in the execution worker's next write, together
with what follows from it (the task finishing), in one status patch."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from slipway.api.common import Phase, Result
from slipway.api.taskexecution import TaskExecutionStatus
from slipway.events import TaskResponse
from slipway.handlers.executions import _with_answers
from slipway.providers.dispatch import Answer
from tests.unit.test_engine_executions import T0, A, decide, merge_patch, step, tid
from tests.unit.test_engine_executions import execution as new_execution


def finished(triggered_id: str, result: str = "pass") -> TaskResponse:
    return TaskResponse(
        task="check",
        phase="finished",
        triggered_id=triggered_id,
        context=None,
        source="tests/tool",
        id="answer-1",
        time=T0,
        message="ok",
        result=result,  # type: ignore[arg-type]  # a literal of the right values
        status=None,
        result_note=None,
        output={"check": {"n": 1}},
    )


def test_the_answer_and_the_finish_are_one_patch() -> None:
    """Applying a sync `.finished` then deciding gives the finished task in one write."""
    view, _ = step(new_execution(), [A], T0)
    stored: dict[str, Any] = view.status.to_wire()
    status, recorded = _with_answers(
        "ex", stored, [Answer(tid("a", 1), response=finished(tid("a", 1)))]
    )
    assert recorded["providers"][0]["phase"] == "Finished"
    after = replace(view, status=TaskExecutionStatus.model_validate(status))
    decision = decide(after, [A], T0)
    patch = {**recorded, **(decision.status or {})}
    final = TaskExecutionStatus.model_validate(merge_patch(stored, patch))
    assert (final.phase, final.result, final.output) == (
        Phase.FINISHED,
        Result.PASS,
        {"check": {"n": 1}},
    )
    assert decision.finished


def test_a_stale_answer_is_left_out_and_a_note_is_recorded() -> None:
    """An answer to another attempt changes nothing; an async tool's delivery note is kept."""
    view, _ = step(new_execution(), [A], T0)
    stored = view.status.to_wire()
    status, recorded = _with_answers(
        "ex",
        stored,
        [
            Answer(tid("a", 7), response=finished(tid("a", 7))),
            Answer(tid("a", 1), note="HTTP 202 after 1 try"),
        ],
    )
    assert recorded == {"providers": status["providers"]}
    assert status["providers"][0]["delivery"] == "HTTP 202 after 1 try"
    assert status["providers"][0]["phase"] == "Pending"
