"""Decisions for a SequenceRun: validate and start it, step through its tasks, finish it.

`decide_run` is a pure function of the run, its Shipyard, the run's TaskExecutions and the
time. It reads only what the resources say, so an operator killed at any instant and started
again recomputes the same decision and completes it (child names are deterministic, creation
tolerates AlreadyExists). Once a run has started, only the sequence snapshot in its status is
used: edits of the Shipyard do not change a run under way (links are read from the live
Shipyard when the run finishes).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slipway.api.common import ConditionStatus, Phase, Reason, Result
from slipway.api.sequencerun import (
    QueueRecord,
    RunPhase,
    SequenceRunSpec,
    SequenceRunStatus,
    TaskRecord,
)
from slipway.api.shipyard import Sequence, ShipyardSpec
from slipway.api.taskexecution import TaskExecutionSpec, TaskExecutionStatus, execution_name
from slipway.constants import ANNOTATION_CONTEXT
from slipway.engine.conditions import SUCCEEDED, conditions_with
from slipway.engine.data import deep_merge
from slipway.engine.decisions import FinishExecution, KubeEvent, NewExecution, RunDecision
from slipway.engine.inputs import check_inputs, problems_message
from slipway.engine.links import linked_runs
from slipway.engine.objects import execution_labels
from slipway.engine.patches import finish_status, status_patch
from slipway.engine.queue import (
    KeyTemplateError,
    Member,
    QueueSpec,
    admit,
    queue_message,
    render_key,
)
from slipway.engine.results import as_result, succeeded, worst
from slipway.engine.sizes import DataLimits, json_size

#: Condition reason while a run is under way.
RUNNING = "Running"
#: Kubernetes Event reasons posted on a run: its start and its end (a failed task is told by
#: the run's end and by its execution's own Warning); each task's steps are in the status.
EVENT_RUN_STARTED = "RunStarted"
EVENT_RUN_FINISHED = "RunFinished"
EVENT_RUN_QUEUED = "RunQueued"
EVENT_RUN_SUSPENDED = "RunSuspended"
EVENT_RUN_RESUMED = "RunResumed"
#: The condition saying whether `spec.suspend` holds the run, and its reasons.
SUSPENDED = "Suspended"
SUSPENDING = "Suspending"
RESUMED = "Resumed"
QUEUED = "Queued"
#: Task reasons a run takes over when that task fails (any other failure is `Failed`).
_PASSED_ON = (Reason.TIMED_OUT, Reason.NO_PROVIDER, Reason.ABORTED, Reason.DATA_TOO_LARGE)


@dataclass(frozen=True)
class RunView:
    """What the engine reads of a SequenceRun: identity, metadata, spec and status."""

    namespace: str
    name: str
    uid: str
    created: datetime
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    spec: SequenceRunSpec
    status: SequenceRunStatus


def run_context(run: RunView) -> str:
    """The run's correlation id: the `slipway.dev/context` annotation when set (a linked run
    keeps its parent's; the gateway passes a caller's), else the run's uid. Deterministic."""
    return run.annotations.get(ANNOTATION_CONTEXT) or run.uid


def current_execution(run: RunView) -> str | None:
    """The name of the TaskExecution `decide_run` reads: the last task reached (None: the
    run has not reached one, or it finished)."""
    if run.status.phase == RunPhase.FINISHED or not run.status.tasks:
        return None
    record = run.status.tasks[-1]
    return record.execution or execution_name(run.name, record.index, record.name)


def decide_run(
    run: RunView,
    shipyard: ShipyardSpec | None,
    executions: Mapping[str, TaskExecutionStatus],
    now: datetime,
    members: Seq[Member] = (),
    limits: DataLimits | None = None,
) -> RunDecision:
    """What to do for `run` now.

    `shipyard`: the run's Shipyard (None: it does not exist); read to validate and snapshot a
    new run, and for the links of a finishing one. `executions`: the TaskExecutions of this
    run that exist, by name (a status may be empty). A finished run gives
    `RunDecision(finished=True)` and nothing else, every time. The same arguments always give
    the same decision. `limits` (default `DataLimits()`): a run whose data is over
    `max_run_data` finishes `fail`/`DataTooLarge` at once, without copying its data.

    `members`: the other runs of the namespace as the concurrency queue sees them (see
    `slipway.engine.queue`); only read when a run of a sequence with `concurrency` has not
    started yet.
    """
    limits = limits or DataLimits()
    if run.status.phase == RunPhase.FINISHED:
        return RunDecision(finished=True)
    if run.status.phase in (None, RunPhase.PENDING, RunPhase.QUEUED) or run.status.sequence is None:
        return _start(run, shipyard, now, members, limits)
    return _advance(run, run.status.sequence, shipyard, executions, now, limits)


def _start(
    run: RunView,
    shipyard: ShipyardSpec | None,
    now: datetime,
    members: Seq[Member],
    limits: DataLimits,
) -> RunDecision:
    spec = run.spec
    new = run.status.copied()
    new.context = new.context or run_context(run)
    decision = RunDecision()
    size = json_size(spec.data)
    if size > limits.max_run_data:  # created without the gateway (kubectl): refuse here
        message = (
            f"the run's data is {size} bytes of JSON; the limit is {limits.max_run_data} "
            "bytes (SLIPWAY_MAX_RUN_DATA_BYTES)"
        )
        new.started_at = new.started_at or now
        return _finish(run, new, None, Result.FAIL, Reason.DATA_TOO_LARGE, message, now, decision)
    new.data = copy.deepcopy(spec.data)
    if spec.abort:
        new.started_at = new.started_at or now
        return _finish(run, new, None, Result.FAIL, Reason.ABORTED, _aborted(None), now, decision)
    problem, sequence = _lookup(spec, shipyard)
    concurrency = sequence.concurrency if sequence is not None else None
    new.queue = None  # set again below when the sequence (still) has a queue
    if concurrency is not None:
        try:
            key = render_key(concurrency.key, spec)
        except KeyTemplateError as error:
            problem, sequence = str(error), None
        else:
            queue = QueueSpec(key, concurrency.limit)
            new.queue = QueueRecord(key=key, limit=queue.limit)
            admission = admit(run.name, spec.shipyard, run.created, queue, members)
            if not admission.admitted:
                return _queued(run, new, queue_message(queue, admission), now, decision)
            new.message = None
    new.started_at = new.started_at or now
    if sequence is None:
        return _finish(run, new, None, Result.FAIL, Reason.INVALID, problem, now, decision)
    unfit = check_inputs(sequence.inputs, spec.data)
    if unfit:
        message = problems_message(unfit)
        return _finish(run, new, None, Result.FAIL, Reason.INVALID, message, now, decision)
    new.phase = RunPhase.STARTED
    new.sequence = sequence.model_copy(deep=True)
    new.tasks = []
    decision.events.append(
        KubeEvent(
            "Normal",
            EVENT_RUN_STARTED,
            f"started sequence {spec.stage}.{spec.sequence} of Shipyard {spec.shipyard} "
            f"({_count(len(sequence.tasks), 'task')}, context {new.context})",
        )
    )
    if spec.suspend:
        _hold(new, 0, decision, now)
    else:
        _reach_task(run, new, 0, decision, now)
    decision.status = status_patch(run.status, new)
    return decision


def _queued(
    run: RunView, new: SequenceRunStatus, message: str, now: datetime, decision: RunDecision
) -> RunDecision:
    """Wait in the queue: phase `Queued`, the runs ahead named in the message. The worker is
    woken when a run of the namespace that is in a queue changes."""
    if run.status.phase != RunPhase.QUEUED:
        decision.events.append(KubeEvent("Normal", EVENT_RUN_QUEUED, message))
    new.phase = RunPhase.QUEUED
    new.message = message
    new.conditions = conditions_with(
        new.conditions, SUCCEEDED, ConditionStatus.UNKNOWN, QUEUED, message, now
    )
    decision.status = status_patch(run.status, new) or None
    return decision


def _hold(new: SequenceRunStatus, index: int, decision: RunDecision, now: datetime) -> None:
    """`spec.suspend`: hold the run before task `index` (nothing runs meanwhile)."""
    assert new.sequence is not None
    task = new.sequence.tasks[index]
    position = f"{index + 1}/{len(new.sequence.tasks)}"
    message = f"suspended before task {task.name} ({position}): set spec.suspend to false to resume"
    if new.phase != RunPhase.SUSPENDED:
        decision.events.append(KubeEvent("Normal", EVENT_RUN_SUSPENDED, message))
    new.phase = RunPhase.SUSPENDED
    new.message = message
    new.conditions = conditions_with(
        new.conditions, SUSPENDED, ConditionStatus.TRUE, SUSPENDED, message, now
    )
    new.conditions = conditions_with(
        new.conditions, SUCCEEDED, ConditionStatus.UNKNOWN, SUSPENDED, message, now
    )


def _suspend_condition(run: RunView, new: SequenceRunStatus, now: datetime) -> None:
    """While a task runs: say that a suspend will hold the run after it (or that a resume
    came before it finished)."""
    record = new.tasks[-1]
    held = any(c.type == SUSPENDED and c.status == ConditionStatus.TRUE for c in new.conditions)
    if run.spec.suspend:
        message = f"suspend requested: the run holds once task {record.name} finishes"
        new.conditions = conditions_with(
            new.conditions, SUSPENDED, ConditionStatus.TRUE, SUSPENDING, message, now
        )
    elif held:
        new.conditions = conditions_with(
            new.conditions, SUSPENDED, ConditionStatus.FALSE, RESUMED, "resumed", now
        )


def _lookup(spec: SequenceRunSpec, shipyard: ShipyardSpec | None) -> tuple[str, Sequence | None]:
    """The sequence the run names, or a message saying what was not found (and what exists)."""
    if shipyard is None:
        return f"Shipyard {spec.shipyard!r} not found in the run's namespace", None
    stage = shipyard.stage(spec.stage)
    if stage is None:
        known = ", ".join(s.name for s in shipyard.stages)
        return (
            f"stage {spec.stage!r} not found in Shipyard {spec.shipyard!r} (stages: {known})",
            None,
        )
    sequence = shipyard.sequence(spec.stage, spec.sequence)
    if sequence is None:
        known = ", ".join(s.name for s in stage.sequences)
        return (
            f"sequence {spec.sequence!r} not found in stage {spec.stage!r} of Shipyard "
            f"{spec.shipyard!r} (sequences: {known})"
        ), None
    return "", sequence


def _advance(
    run: RunView,
    sequence: Sequence,
    shipyard: ShipyardSpec | None,
    executions: Mapping[str, TaskExecutionStatus],
    now: datetime,
    limits: DataLimits,
) -> RunDecision:
    new = run.status.copied()
    decision = RunDecision()
    if not new.tasks:  # held before task 0, or a status without task records: reach task 0
        if run.spec.suspend and not run.spec.abort:
            _hold(new, 0, decision, now)
        elif run.spec.abort:
            return _finish(
                run, new, None, Result.FAIL, Reason.ABORTED, _aborted(None), now, decision
            )
        else:
            _reach_task(run, new, 0, decision, now)
        decision.status = status_patch(run.status, new) or None
        return decision
    record = new.tasks[-1]
    if record.phase == Phase.FINISHED and not run.spec.abort:
        # Recorded before a hold (spec.suspend): the run goes on once resumed.
        return _next(run, new, sequence, shipyard, record, now, decision)
    name = record.execution or execution_name(run.name, record.index, record.name)
    execution = executions.get(name)
    finished = execution is not None and execution.phase == Phase.FINISHED
    if run.spec.abort:
        if execution is not None and finished:
            _record(new, record, execution, now, limits)
        else:
            if execution is not None:
                decision.finish_executions.append(
                    FinishExecution(name, Result.FAIL, Reason.ABORTED, _aborted(None))
                )
            record.phase, record.result, record.reason = Phase.FINISHED, Result.FAIL, Reason.ABORTED
            record.message, record.finished_at = _aborted(None), now
        return _finish(run, new, None, Result.FAIL, Reason.ABORTED, _aborted(record), now, decision)
    if execution is None:
        # Recorded but missing: the operator stopped before creating it, or it was deleted.
        # The same name and spec as before: creating it again is safe.
        decision.create_executions.append(_new_execution(run, new, record.index))
        return decision
    if not finished:
        # Nothing to write while the task runs (its record says Started since it was
        # reached, and the execution's own status tells its steps), except what a suspend
        # or resume requested meanwhile.
        _suspend_condition(run, new, now)
        decision.status = status_patch(run.status, new) or None
        return decision
    _record(new, record, execution, now, limits)
    if record.result == Result.FAIL:
        reason = record.reason if record.reason in _PASSED_ON else Reason.FAILED
        message = f"task {record.name} failed: {record.message or 'no message'}"
        return _finish(run, new, shipyard, Result.FAIL, reason, message, now, decision)
    return _next(run, new, sequence, shipyard, record, now, decision)


def _next(
    run: RunView,
    new: SequenceRunStatus,
    sequence: Sequence,
    shipyard: ShipyardSpec | None,
    record: TaskRecord,
    now: datetime,
    decision: RunDecision,
) -> RunDecision:
    """Task `record` finished without failing: hold (suspend), reach the next, or finish."""
    if record.index + 1 < len(sequence.tasks):
        if run.spec.suspend:
            _hold(new, record.index + 1, decision, now)
        else:
            _reach_task(run, new, record.index + 1, decision, now)
        decision.status = status_patch(run.status, new) or None
        return decision
    result = worst(t.result for t in new.tasks)
    message = _completed(run, new, result)
    return _finish(run, new, shipyard, result, Reason.COMPLETED, message, now, decision)


def _reach_task(
    run: RunView, new: SequenceRunStatus, index: int, decision: RunDecision, now: datetime
) -> None:
    """Append the record of task `index`, make it current, and create its execution."""
    assert new.sequence is not None
    task = new.sequence.tasks[index]
    name = execution_name(run.name, index, task.name)
    new.tasks.append(
        TaskRecord(name=task.name, index=index, execution=name, phase=Phase.STARTED, started_at=now)
    )
    new.current_task = task.name
    if new.phase == RunPhase.SUSPENDED:
        decision.events.append(
            KubeEvent("Normal", EVENT_RUN_RESUMED, f"resumed at task {task.name}")
        )
    if any(c.type == SUSPENDED and c.status == ConditionStatus.TRUE for c in new.conditions):
        new.conditions = conditions_with(
            new.conditions, SUSPENDED, ConditionStatus.FALSE, RESUMED, "resumed", now
        )
    new.phase = RunPhase.STARTED
    new.message = None
    position = f"{index + 1}/{len(new.sequence.tasks)}"
    message = f"running task {task.name} ({position})"
    new.conditions = conditions_with(
        new.conditions, SUCCEEDED, ConditionStatus.UNKNOWN, RUNNING, message, now
    )
    decision.create_executions.append(_new_execution(run, new, index))


def _new_execution(run: RunView, new: SequenceRunStatus, index: int) -> NewExecution:
    """The TaskExecution of task `index`; its input is the run's data as it is now, which is
    the data when the task was reached (the data changes only when a task finishes)."""
    assert new.sequence is not None
    task = new.sequence.tasks[index]
    spec = run.spec
    execution = TaskExecutionSpec(
        run=run.name,
        index=index,
        shipyard=spec.shipyard,
        stage=spec.stage,
        sequence=spec.sequence,
        task=task.model_copy(deep=True),
        context=new.context or run_context(run),
        input=copy.deepcopy(new.data or {}),
    )
    return NewExecution(
        name=execution_name(run.name, index, task.name),
        spec=execution,
        labels=execution_labels(execution),
    )


def _record(
    new: SequenceRunStatus,
    record: TaskRecord,
    execution: TaskExecutionStatus,
    now: datetime,
    limits: DataLimits,
) -> None:
    """Copy a finished execution into its task record; merge its output into the run data.
    The record keeps a copy of the output only while the run's copies stay within
    `max_run_data` (the execution keeps it in any case; the run's data has it merged)."""
    record.phase = Phase.FINISHED
    record.result = as_result(execution.result)
    record.reason = execution.reason
    record.message = execution.message
    record.started_at = execution.started_at or record.started_at
    record.finished_at = execution.finished_at or now
    record.output = copy.deepcopy(execution.output) if execution.output else None
    if record.output is not None:
        copies = sum(json_size(t.output) for t in new.tasks if t.output is not None)
        if copies > limits.max_run_data:
            record.output = None
            note = f"output not copied here (see TaskExecution {record.execution})"
            record.message = f"{record.message}; {note}" if record.message else note
    new.data = deep_merge(new.data or {}, execution.output or {})
    score = evaluation_score(execution.output)
    if score is not None:
        new.score = score


def evaluation_score(output: Mapping[str, Any] | None) -> float | None:
    """The score of an evaluation's report in a task's output (`evaluation.score`), clamped
    to 0..100 and rounded to two decimals (the report keeps the exact figure); None when the
    task was not an evaluation."""
    evaluation = (output or {}).get("evaluation")
    score = evaluation.get("score") if isinstance(evaluation, Mapping) else None
    if isinstance(score, int | float) and not isinstance(score, bool):
        return round(min(100.0, max(0.0, float(score))), 2)
    return None


def _finish(
    run: RunView,
    new: SequenceRunStatus,
    shipyard: ShipyardSpec | None,
    result: Result,
    reason: Reason,
    message: str,
    now: datetime,
    decision: RunDecision,
) -> RunDecision:
    """Finish the run; `shipyard` None: start no linked run (aborted, invalid)."""
    finish_status(new, result, reason, message, now)
    ok = succeeded(result)
    if shipyard is not None:
        last = new.tasks[-1] if new.tasks else None
        decision.create_runs = linked_runs(shipyard, run, result, last, new.data or {})
    decision.status = status_patch(run.status, new)
    decision.events.append(
        KubeEvent(
            "Normal" if ok else "Warning",
            EVENT_RUN_FINISHED,
            f"{result.value} ({reason.value}): {message}",
        )
    )
    decision.finished = True
    return decision


def _aborted(record: TaskRecord | None) -> str:
    where = f" during task {record.name}" if record is not None else ""
    return f"aborted{where} (spec.abort is true)"


def _completed(run: RunView, new: SequenceRunStatus, result: Result) -> str:
    text = (
        f"sequence {run.spec.stage}.{run.spec.sequence} finished with {result.value} "
        f"after {_count(len(new.tasks), 'task')}"
    )
    warnings = [
        f"{t.name}: {t.message}" if t.message else t.name
        for t in new.tasks
        if t.result == Result.WARNING
    ]
    if warnings:
        text += "; warnings from " + "; ".join(warnings)
    return text


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
