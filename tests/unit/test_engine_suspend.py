"""spec.suspend: a run holds before its next task, says so, and goes on when resumed; the
running task is not interrupted; abort still works while suspended."""

from __future__ import annotations

from dataclasses import replace

from slipway.api.common import Phase, Result
from slipway.api.sequencerun import RunPhase
from slipway.api.taskexecution import TaskExecutionStatus
from slipway.engine.runs import decide_run
from tests.unit.test_engine_runs import SHIPYARD, T0, T1, T2, applied, finished, new_run


def suspended(run):  # type: ignore[no-untyped-def]
    return replace(run, spec=run.spec.model_copy(update={"suspend": True}))


def resumed(run):  # type: ignore[no-untyped-def]
    return replace(run, spec=run.spec.model_copy(update={"suspend": False}))


def test_a_run_created_suspended_holds_before_its_first_task() -> None:
    run = suspended(new_run())
    decision = decide_run(run, SHIPYARD, {}, T0)
    assert decision.create_executions == []
    run = applied(run, decision)
    assert run.status.phase == RunPhase.SUSPENDED
    assert "suspended before task fetch (1/3)" in (run.status.message or "")
    assert [e.reason for e in decision.events] == ["RunStarted", "RunSuspended"]
    condition = next(c for c in run.status.conditions if c.type == "Suspended")
    assert condition.status == "True"
    again = decide_run(run, SHIPYARD, {}, T1)
    assert again.status is None
    assert again.create_executions == []
    go = decide_run(resumed(run), SHIPYARD, {}, T1)
    assert [e.name for e in go.create_executions] == ["run-1-0-fetch"]
    run = applied(resumed(run), go)
    assert run.status.phase == RunPhase.STARTED
    assert run.status.message is None
    assert next(c for c in run.status.conditions if c.type == "Suspended").status == "False"


def test_suspend_mid_run_lets_the_task_finish_then_holds() -> None:
    """Suspending while task 0 runs: condition Suspending, the task finishes and is
    recorded, task 1 is not reached until resumed, and is then reached once."""
    run = new_run()
    run = applied(run, decide_run(run, SHIPYARD, {}, T0))
    run = suspended(run)
    running = {"run-1-0-fetch": TaskExecutionStatus(phase=Phase.STARTED, started_at=T0)}
    waiting = decide_run(run, SHIPYARD, running, T1)
    run = applied(run, waiting)
    condition = next(c for c in run.status.conditions if c.type == "Suspended")
    assert (condition.status, condition.reason) == ("True", "Suspending")
    done = {"run-1-0-fetch": finished(Result.PASS, output={"a": 1})}
    held = decide_run(run, SHIPYARD, done, T1)
    assert held.create_executions == []
    run = applied(run, held)
    assert run.status.phase == RunPhase.SUSPENDED
    assert run.status.tasks[0].phase == Phase.FINISHED
    assert run.status.data == {"n": 1, "a": 1}
    assert decide_run(run, SHIPYARD, done, T2).status is None
    go = decide_run(resumed(run), SHIPYARD, done, T2)
    assert [e.name for e in go.create_executions] == ["run-1-1-check"]
    assert [e.reason for e in go.events] == ["RunResumed"]
    run = applied(resumed(run), go)
    assert [t.name for t in run.status.tasks] == ["fetch", "check"]


def test_abort_while_suspended_finishes_the_run() -> None:
    run = suspended(new_run())
    run = applied(run, decide_run(run, SHIPYARD, {}, T0))
    aborted = replace(run, spec=run.spec.model_copy(update={"abort": True}))
    decision = decide_run(aborted, SHIPYARD, {}, T1)
    assert decision.finished
    assert (decision.status or {})["reason"] == "Aborted"
