"""decide_run: validation, start and snapshot, stepping through tasks, data, stop on fail,
finish with the worst result, links, abort, idempotence and crash recovery."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slipway.api.common import Phase, Reason, Result
from slipway.api.sequencerun import SequenceRunSpec, SequenceRunStatus
from slipway.api.shipyard import ShipyardSpec
from slipway.api.taskexecution import TaskExecutionSpec, TaskExecutionStatus
from slipway.engine.decisions import FinishExecution, KubeEvent, RunDecision
from slipway.engine.links import linked_run_name
from slipway.engine.runs import RunView, decide_run, evaluation_score, run_context

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)
T2 = T0 + timedelta(minutes=2)
T3 = T0 + timedelta(minutes=3)

SHIPYARD = ShipyardSpec.model_validate(
    {
        "stages": [
            {
                "name": "dev",
                "sequences": [
                    {
                        "name": "one",
                        "tasks": [
                            {"name": "fetch", "properties": {"url": "u"}},
                            {"name": "check", "timeout": "1h"},
                            {"name": "report"},
                        ],
                    },
                    {"name": "two", "tasks": [{"name": "x"}]},
                ],
            },
            {
                "name": "prod",
                "sequences": [
                    {
                        "name": "one",
                        "tasks": [{"name": "deploy"}],
                        "triggeredOn": [{"event": "dev.one.finished"}],
                    },
                    {
                        "name": "rollback",
                        "tasks": [{"name": "undo"}],
                        "triggeredOn": [
                            {"event": "dev.one.finished", "selector": {"match": {"result": "fail"}}}
                        ],
                    },
                ],
            },
        ]
    }
)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies it."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def new_run(
    stage: str = "dev",
    sequence: str = "one",
    *,
    data: dict[str, Any] | None = None,
    abort: bool = False,
    annotations: dict[str, str] | None = None,
) -> RunView:
    return RunView(
        namespace="ns",
        name="run-1",
        uid="uid-1",
        created=T0,
        labels={},
        annotations=annotations or {},
        spec=SequenceRunSpec(
            shipyard="osint", stage=stage, sequence=sequence, data=data or {"n": 1}, abort=abort
        ),
        status=SequenceRunStatus(),
    )


def applied(run: RunView, decision: RunDecision) -> RunView:
    """The run after the handler wrote the decision's status patch."""
    status = merge_patch(run.status.to_wire(), decision.status or {})
    return replace(run, status=SequenceRunStatus.model_validate(status))


def finished(
    result: Result | None,
    reason: Reason | None = None,
    output: dict[str, Any] | None = None,
    message: str | None = None,
) -> TaskExecutionStatus:
    return TaskExecutionStatus(
        phase=Phase.FINISHED,
        result=result,
        reason=reason or Reason.COMPLETED,
        message=message,
        started_at=T0,
        finished_at=T1,
        output=output,
    )


def started_run() -> RunView:
    """A run that started at T0: task 0 (fetch) reached."""
    run = new_run()
    return applied(run, decide_run(run, SHIPYARD, {}, T0))


def at_task(index: int, outputs: list[dict[str, Any] | None]) -> RunView:
    """A run whose tasks before `index` passed with `outputs` (one per task)."""
    run = started_run()
    for i in range(index):
        name = run.status.tasks[i].execution or ""
        run = applied(
            run, decide_run(run, None, {name: finished(Result.PASS, output=outputs[i])}, T1)
        )
    return run


def test_start_writes_the_status_and_creates_the_first_execution() -> None:
    """A valid new run: Started, context, snapshot, data, task 0 record, Unknown condition."""
    decision = decide_run(new_run(), SHIPYARD, {}, T0)
    status = SequenceRunStatus.model_validate(decision.status)
    assert status.phase == Phase.STARTED
    assert status.context == "uid-1"
    assert status.started_at == T0
    assert status.sequence == SHIPYARD.sequence("dev", "one")
    assert status.data == {"n": 1}
    assert status.current_task == "fetch"
    assert [(t.name, t.index, t.execution, t.phase, t.started_at) for t in status.tasks] == [
        ("fetch", 0, "run-1-0-fetch", Phase.STARTED, T0)
    ]
    [condition] = status.conditions
    assert (condition.type, condition.status, condition.reason) == (
        "Succeeded",
        "Unknown",
        "Running",
    )
    assert [e.reason for e in decision.events] == ["RunStarted"]
    assert not decision.finished
    assert decision.create_runs == []
    assert decision.finish_executions == []


def test_start_creates_the_execution_with_spec_and_labels() -> None:
    """The first TaskExecution: deterministic name, the snapshot's task, context, input = data."""
    [new] = decide_run(new_run(), SHIPYARD, {}, T0).create_executions
    assert new.name == "run-1-0-fetch"
    sequence = SHIPYARD.sequence("dev", "one")
    assert sequence is not None
    assert new.spec == TaskExecutionSpec(
        run="run-1",
        index=0,
        shipyard="osint",
        stage="dev",
        sequence="one",
        task=sequence.tasks[0],
        context="uid-1",
        input={"n": 1},
    )
    assert new.labels == {
        "slipway.dev/shipyard": "osint",
        "slipway.dev/stage": "dev",
        "slipway.dev/sequence": "one",
        "slipway.dev/task": "fetch",
        "slipway.dev/run": "run-1",
    }


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({}, "uid-1"),
        ({"slipway.dev/context": "abc"}, "abc"),
        ({"slipway.dev/context": ""}, "uid-1"),
    ],
    ids=["uid", "annotation", "empty annotation"],
)
def test_run_context(annotations: dict[str, str], expected: str) -> None:
    """run_context: the context annotation, else the uid; status and execution carry it."""
    run = new_run(annotations=annotations)
    assert run_context(run) == expected
    decision = decide_run(run, SHIPYARD, {}, T0)
    assert decision.status is not None
    assert decision.status["context"] == expected
    assert decision.create_executions[0].spec.context == expected


INVALID: list[tuple[str, ShipyardSpec | None, str, str, list[str]]] = [
    ("no Shipyard", None, "dev", "one", ["Shipyard 'osint' not found"]),
    ("unknown stage", SHIPYARD, "qa", "one", ["stage 'qa' not found", "stages: dev, prod"]),
    (
        "unknown sequence",
        SHIPYARD,
        "dev",
        "three",
        ["sequence 'three' not found in stage 'dev'", "sequences: one, two"],
    ),
]


@pytest.mark.parametrize(
    ("shipyard", "stage", "sequence", "says"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_run_finishes_at_once(
    shipyard: ShipyardSpec | None, stage: str, sequence: str, says: list[str]
) -> None:
    """Unknown Shipyard/stage/sequence: fail Invalid at once, a message naming it, no child."""
    decision = decide_run(new_run(stage, sequence), shipyard, {}, T0)
    status = SequenceRunStatus.model_validate(decision.status)
    assert (status.phase, status.result, status.reason) == (
        Phase.FINISHED,
        Result.FAIL,
        Reason.INVALID,
    )
    assert status.message is not None
    for part in says:
        assert part in status.message
    assert status.finished_at == T0
    assert status.tasks == []
    assert status.sequence is None
    [condition] = status.conditions
    assert (condition.status, condition.reason) == ("False", "Invalid")
    assert decision.finished
    assert decision.create_executions == []
    assert decision.create_runs == []
    [event] = decision.events
    assert event.type == "Warning"
    assert status.message in event.message


def test_abort_before_start_finishes_aborted_and_creates_nothing() -> None:
    """A run created with abort: true finishes fail/Aborted without a task."""
    decision = decide_run(new_run(abort=True), SHIPYARD, {}, T0)
    status = SequenceRunStatus.model_validate(decision.status)
    assert (status.phase, status.result, status.reason) == (
        Phase.FINISHED,
        Result.FAIL,
        Reason.ABORTED,
    )
    assert decision.finished
    assert decision.create_executions == []
    assert decision.create_runs == []


@pytest.mark.parametrize("shipyard", [SHIPYARD, None], ids=["with shipyard", "without"])
def test_finished_run_decides_nothing(shipyard: ShipyardSpec | None) -> None:
    """A finished run: finished=True and nothing else, every time."""
    run = replace(
        new_run(abort=True), status=SequenceRunStatus(phase=Phase.FINISHED, result=Result.PASS)
    )
    assert decide_run(run, shipyard, {}, T3) == RunDecision(finished=True)


def test_missing_execution_is_created_again() -> None:
    """Crash recovery: a recorded task whose TaskExecution does not exist is created again,
    with the same name and spec, and the status is left alone."""
    first = decide_run(new_run(), SHIPYARD, {}, T0)
    run = started_run()
    decision = decide_run(run, SHIPYARD, {}, T2)
    assert decision.create_executions == first.create_executions
    assert decision.status is None
    assert decision.events == []
    assert not decision.finished


def test_missing_later_execution_is_created_again_with_the_data_it_had() -> None:
    """The re-created execution of task 1 gets the data as it was when task 1 was reached."""
    run = at_task(1, [{"found": 1}])
    [new] = decide_run(run, None, {}, T3).create_executions
    assert (new.name, new.spec.index, new.spec.input) == ("run-1-1-check", 1, {"n": 1, "found": 1})


def test_running_execution_changes_nothing() -> None:
    """A pending execution of the current task: nothing to do."""
    run = started_run()
    assert decide_run(run, SHIPYARD, {"run-1-0-fetch": TaskExecutionStatus()}, T1) == RunDecision()


def test_a_running_execution_writes_nothing_to_the_run() -> None:
    """While the task runs the run is idle: its record says Started since it was reached
    (one run write per task); the execution's start time is copied when it finishes."""
    run = started_run()
    assert run.status.tasks[0].phase == Phase.STARTED
    executions = {"run-1-0-fetch": TaskExecutionStatus(phase=Phase.STARTED, started_at=T1)}
    assert decide_run(run, SHIPYARD, executions, T2) == RunDecision()


def test_task_finished_pass_records_it_and_reaches_the_next_with_merged_data() -> None:
    """A passed task: recorded, its output merged into the data, the next task created with it."""
    run = started_run()
    execution = finished(Result.PASS, output={"found": {"a": 1}}, message="ok")
    decision = decide_run(run, SHIPYARD, {"run-1-0-fetch": execution}, T2)
    status = applied(run, decision).status
    first, second = status.tasks
    assert (first.phase, first.result, first.reason, first.message) == (
        Phase.FINISHED,
        Result.PASS,
        Reason.COMPLETED,
        "ok",
    )
    assert (first.started_at, first.finished_at, first.output) == (T0, T1, {"found": {"a": 1}})
    assert (second.name, second.index, second.phase, second.execution) == (
        "check",
        1,
        Phase.STARTED,
        "run-1-1-check",
    )
    assert status.data == {"n": 1, "found": {"a": 1}}
    assert status.current_task == "check"
    assert status.phase == Phase.STARTED
    [new] = decision.create_executions
    assert (new.name, new.spec.input, new.spec.task.name) == (
        "run-1-1-check",
        {"n": 1, "found": {"a": 1}},
        "check",
    )
    assert decision.events == []  # each task's steps are in the status, not in Events
    assert not decision.finished


def test_outputs_deep_merge_into_the_data_task_after_task() -> None:
    """Outputs merge: maps merge, other values the later task wins."""
    run = at_task(2, [{"m": {"a": 1}, "v": 1}, {"m": {"b": 2}, "v": [2]}])
    assert run.status.data == {"n": 1, "m": {"a": 1, "b": 2}, "v": [2]}
    [new] = decide_run(run, None, {}, T3).create_executions
    assert new.spec.input == run.status.data


def test_warning_continues() -> None:
    """A warning task does not stop the sequence."""
    run = started_run()
    decision = decide_run(run, SHIPYARD, {"run-1-0-fetch": finished(Result.WARNING)}, T2)
    assert [n.name for n in decision.create_executions] == ["run-1-1-check"]
    assert not decision.finished
    assert decision.events == []


FAILS: list[tuple[str, TaskExecutionStatus, Reason, str]] = [
    (
        "a failed task",
        finished(Result.FAIL, Reason.FAILED, message="bad number"),
        Reason.FAILED,
        "task fetch failed: bad number",
    ),
    (
        "a missing result counts as fail",
        finished(None, Reason.COMPLETED),
        Reason.FAILED,
        "task fetch failed",
    ),
    (
        "a timed-out task",
        finished(Result.FAIL, Reason.TIMED_OUT, message="late"),
        Reason.TIMED_OUT,
        "late",
    ),
    (
        "no provider",
        finished(Result.FAIL, Reason.NO_PROVIDER, message="create one"),
        Reason.NO_PROVIDER,
        "create one",
    ),
    (
        "an aborted execution",
        finished(Result.FAIL, Reason.ABORTED),
        Reason.ABORTED,
        "task fetch failed",
    ),
]


@pytest.mark.parametrize(
    ("execution", "reason", "says"), [c[1:] for c in FAILS], ids=[c[0] for c in FAILS]
)
def test_fail_stops_the_sequence(execution: TaskExecutionStatus, reason: Reason, says: str) -> None:
    """A failed task finishes the run fail with Failed or the task's own reason; nothing follows."""
    run = started_run()
    decision = decide_run(run, SHIPYARD, {"run-1-0-fetch": execution}, T2)
    status = applied(run, decision).status
    assert (status.phase, status.result, status.reason) == (Phase.FINISHED, Result.FAIL, reason)
    assert status.message is not None
    assert says in status.message
    assert status.finished_at == T2
    assert status.tasks[0].result == Result.FAIL
    assert len(status.tasks) == 1
    assert decision.create_executions == []
    assert decision.finished
    [condition] = status.conditions
    assert (condition.status, condition.reason) == ("False", reason.value)
    assert decision.events[-1].type == "Warning"
    assert decision.events[-1].reason == "RunFinished"


def test_failed_run_starts_links_whose_selector_matches_fail() -> None:
    """A failed run starts a `result: fail` link (not the selector-less one)."""
    run = started_run()
    decision = decide_run(run, SHIPYARD, {"run-1-0-fetch": finished(Result.FAIL)}, T2)
    assert [(r.spec.stage, r.spec.sequence) for r in decision.create_runs] == [("prod", "rollback")]


LAST: list[tuple[str, list[Result], Result, str]] = [
    ("all pass", [Result.PASS, Result.PASS, Result.PASS], Result.PASS, "True"),
    (
        "a warning makes the run warning",
        [Result.PASS, Result.WARNING, Result.PASS],
        Result.WARNING,
        "True",
    ),
]


@pytest.mark.parametrize(
    ("results", "expected", "condition"), [c[1:] for c in LAST], ids=[c[0] for c in LAST]
)
def test_last_task_finishes_with_the_worst_result_and_links(
    results: list[Result], expected: Result, condition: str
) -> None:
    """After the last task: Finished, worst result, Completed, Succeeded True, links started."""
    run = started_run()
    for i, result in enumerate(results):
        name = run.status.tasks[i].execution or ""
        decision = decide_run(run, SHIPYARD, {name: finished(result, output={f"t{i}": i})}, T2)
        run = applied(run, decision)
    status = run.status
    assert (status.phase, status.result, status.reason) == (
        Phase.FINISHED,
        expected,
        Reason.COMPLETED,
    )
    assert status.current_task == "report"
    assert status.data == {"n": 1, "t0": 0, "t1": 1, "t2": 2}
    [cond] = status.conditions
    assert (cond.status, cond.reason) == (condition, "Completed")
    assert decision.finished
    assert decision.create_executions == []
    [link] = decision.create_runs
    assert link.name == linked_run_name("run-1", "uid-1", "prod", "one")
    assert link.spec.data == status.data
    assert link.annotations == {"slipway.dev/context": "uid-1"}
    assert decision.events[-1] == KubeEvent(
        "Normal", "RunFinished", f"{expected.value} (Completed): {status.message}"
    )
    if expected == Result.WARNING:
        assert status.message is not None
        assert "warnings from check" in status.message


def test_later_decisions_use_the_snapshot_not_the_live_shipyard() -> None:
    """A Shipyard edited (or deleted) after the start does not change the run's tasks."""
    edited = ShipyardSpec.model_validate(
        {"stages": [{"name": "dev", "sequences": [{"name": "one", "tasks": [{"name": "other"}]}]}]}
    )
    run = started_run()
    for shipyard in (edited, None):
        decision = decide_run(run, shipyard, {"run-1-0-fetch": finished(Result.PASS)}, T2)
        [new] = decision.create_executions
        assert (new.name, new.spec.task.name) == ("run-1-1-check", "check")
        assert new.spec.task.timeout == "1h"


def test_no_links_when_the_shipyard_is_gone_at_the_end() -> None:
    """The run finishes from its snapshot; without a Shipyard no linked run starts."""
    run = at_task(2, [None, None])
    decision = decide_run(run, None, {"run-1-2-report": finished(Result.PASS)}, T3)
    assert decision.finished
    assert decision.create_runs == []
    assert applied(run, decision).status.result == Result.PASS


def test_abort_mid_task_finishes_the_execution_and_the_run() -> None:
    """Abort while a task runs: its execution finished Aborted, the run fail/Aborted, no links."""
    run = started_run()
    run = replace(run, spec=run.spec.model_copy(update={"abort": True}))
    decision = decide_run(
        run, SHIPYARD, {"run-1-0-fetch": TaskExecutionStatus(phase=Phase.STARTED)}, T2
    )
    assert decision.finish_executions == [
        FinishExecution(
            "run-1-0-fetch", Result.FAIL, Reason.ABORTED, "aborted (spec.abort is true)"
        )
    ]
    status = applied(run, decision).status
    assert (status.phase, status.result, status.reason) == (
        Phase.FINISHED,
        Result.FAIL,
        Reason.ABORTED,
    )
    assert (status.tasks[0].phase, status.tasks[0].reason) == (Phase.FINISHED, Reason.ABORTED)
    assert decision.create_runs == []
    assert decision.create_executions == []
    assert decision.finished
    [cond] = status.conditions
    assert (cond.status, cond.reason) == ("False", "Aborted")


def test_abort_after_the_task_finished_records_it_and_starts_nothing() -> None:
    """Abort when the current execution already finished: it is recorded; no next task, no links."""
    run = started_run()
    run = replace(run, spec=run.spec.model_copy(update={"abort": True}))
    decision = decide_run(
        run, SHIPYARD, {"run-1-0-fetch": finished(Result.PASS, output={"x": 1})}, T2
    )
    status = applied(run, decision).status
    assert decision.finish_executions == []
    assert status.tasks[0].result == Result.PASS
    assert status.data == {"n": 1, "x": 1}
    assert (status.result, status.reason) == (Result.FAIL, Reason.ABORTED)
    assert decision.create_executions == []
    assert decision.create_runs == []


def test_abort_with_the_execution_missing_finishes_without_finishing_it() -> None:
    """Abort when the current execution does not exist: nothing to finish, the run ends Aborted."""
    run = started_run()
    run = replace(run, spec=run.spec.model_copy(update={"abort": True}))
    decision = decide_run(run, SHIPYARD, {}, T2)
    assert decision.finish_executions == []
    assert decision.create_executions == []
    assert decision.finished


def test_same_inputs_give_the_same_decision() -> None:
    """Every step recomputed with the same inputs gives an equal decision (restart safety)."""
    run = started_run()
    executions = {"run-1-0-fetch": finished(Result.PASS, output={"a": 1})}
    steps: list[tuple[RunView, ShipyardSpec | None, dict[str, TaskExecutionStatus]]] = [
        (new_run(), SHIPYARD, {}),
        (new_run("qa"), SHIPYARD, {}),
        (run, SHIPYARD, {}),
        (run, SHIPYARD, executions),
        (at_task(2, [None, None]), SHIPYARD, {"run-1-2-report": finished(Result.PASS)}),
    ]
    for view, shipyard, existing in steps:
        assert decide_run(view, shipyard, existing, T2) == decide_run(view, shipyard, existing, T2)


def test_decide_run_does_not_mutate_its_inputs() -> None:
    """The run view, Shipyard and execution statuses are left as they were."""
    run = started_run()
    executions = {"run-1-0-fetch": finished(Result.PASS, output={"a": {"b": 1}})}
    before = (run.status.to_wire(), SHIPYARD.to_wire(), executions["run-1-0-fetch"].to_wire())
    decide_run(run, SHIPYARD, executions, T2)
    assert before == (
        run.status.to_wire(),
        SHIPYARD.to_wire(),
        executions["run-1-0-fetch"].to_wire(),
    )


def test_crash_after_creating_the_next_execution_before_the_status_write() -> None:
    """Killed after creating task 1's execution but before writing the status: the same
    decision again (the creation then meets AlreadyExists), no twin with another name."""
    run = started_run()
    executions: dict[str, TaskExecutionStatus] = {"run-1-0-fetch": finished(Result.PASS)}
    first = decide_run(run, SHIPYARD, executions, T2)
    executions["run-1-1-check"] = TaskExecutionStatus()
    again = decide_run(run, SHIPYARD, executions, T2)
    assert again == first


def test_a_whole_run_through_patches_passes_data_along() -> None:
    """Three tasks, each given the data so far plus the previous outputs, then Finished pass."""
    run = new_run(data={"number": "+44"})
    executions: dict[str, TaskExecutionStatus] = {}
    inputs = []
    for step in range(10):
        decision = decide_run(run, SHIPYARD, executions, T0 + timedelta(minutes=step))
        for new in decision.create_executions:
            inputs.append((new.spec.task.name, new.spec.input))
            executions[new.name] = finished(Result.PASS, output={new.spec.task.name: "done"})
        run = applied(run, decision)
        if decision.finished:
            break
    assert inputs == [
        ("fetch", {"number": "+44"}),
        ("check", {"number": "+44", "fetch": "done"}),
        ("report", {"number": "+44", "fetch": "done", "check": "done"}),
    ]
    assert (run.status.phase, run.status.result) == (Phase.FINISHED, Result.PASS)
    assert [t.name for t in run.status.tasks] == ["fetch", "check", "report"]
    assert decide_run(run, SHIPYARD, executions, T3) == RunDecision(finished=True)


@pytest.mark.parametrize(
    ("output", "score"),
    [
        ({"evaluation": {"score": 87.5, "result": "warning"}}, 87.5),
        ({"evaluation": {"score": 120}}, 100.0),
        ({"evaluation": {"score": True}}, None),
        ({"evaluation": "not a report"}, None),
        ({"number": "+44"}, None),
        (None, None),
    ],
)
def test_anevaluation_score_becomes_the_run_score(output: Any, score: float | None) -> None:
    """A finished task whose output holds an evaluation report sets the run's score."""
    assert evaluation_score(output) == score
