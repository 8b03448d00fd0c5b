"""SequenceRun: one triggered run of one sequence in one stage, with its input data."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from slipway.api.common import (
    Condition,
    Data,
    Name,
    ObjectName,
    Phase,
    Reason,
    Result,
    SlipwayModel,
    StatusModel,
    conditions_field,
)
from slipway.api.shipyard import MAX_TASKS, Sequence


def _immutable(field: str) -> JsonDict:
    """A transition rule that `spec.<field>` keeps its value once the run exists."""
    return {
        "rule": f"self.{field} == oldSelf.{field}",
        "message": (
            f"spec.{field} cannot change once a SequenceRun exists; "
            "create a new SequenceRun instead"
        ),
    }


class RunPhase(StrEnum):
    """Where a run is: `Pending` (accepted), `Queued` (waiting for a concurrency slot),
    `Started`, `Suspended` (held before its next task) or `Finished`."""

    PENDING = "Pending"
    QUEUED = "Queued"
    STARTED = "Started"
    SUSPENDED = "Suspended"
    FINISHED = "Finished"


class SequenceRunSpec(SlipwayModel):
    """Which sequence to run, where, with what data. Only `abort` and `suspend` may change
    once created."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _immutable("shipyard"),
                _immutable("stage"),
                _immutable("sequence"),
                {
                    "rule": (
                        "has(self.data) == has(oldSelf.data)"
                        " && (!has(self.data) || self.data == oldSelf.data)"
                    ),
                    "message": (
                        "spec.data cannot change once a SequenceRun exists; "
                        "create a new SequenceRun instead"
                    ),
                },
                {
                    "rule": (
                        "!(has(oldSelf.abort) && oldSelf.abort) || (has(self.abort) && self.abort)"
                    ),
                    "message": (
                        "spec.abort cannot go back from true to false: an aborted run stays "
                        "aborted; create a new SequenceRun to run again"
                    ),
                },
            ]
        }
    )

    shipyard: ObjectName
    """The Shipyard (in this namespace) that defines the sequence."""

    stage: Name
    """The stage to run in."""

    sequence: Name
    """The sequence to run, as defined in that stage."""

    data: Data = Field(default_factory=dict)
    """Input data: every task's `.triggered` event carries it (plus the outputs of the tasks
    before it and `data.<task>` = the task's properties)."""

    abort: bool = False
    """Set to true to stop the run: running Jobs are deleted, remote tools get no further
    events, the run finishes `fail` with reason `Aborted`, and linked sequences do not start.
    May change after creation only from false to true."""

    suspend: bool = False
    """Set to true to hold the run before its next task (the task already running finishes
    normally); phase `Suspended`, condition `Suspended`. Set back to false to resume. The
    next task's clocks start when it is triggered, so no timeout counts while the run is
    held, except the running task's. A suspended run keeps its concurrency slot."""


class TaskRecord(StatusModel):
    """What happened to one task of the run (one entry per task reached)."""

    name: Name
    """The task's name."""

    index: Annotated[int, Field(ge=0, le=MAX_TASKS - 1)]
    """The task's position in the sequence, from 0."""

    execution: Annotated[str, Field(max_length=253)] | None = None
    """The TaskExecution carrying it out: `<run>-<index>-<task>`."""

    phase: Phase = Phase.PENDING
    """`Pending` (not yet triggered), `Started` or `Finished`."""

    result: Result | None = None
    """`pass`, `warning` or `fail` once finished."""

    reason: Reason | None = None
    """Why it finished: `Completed`, `Failed`, `TimedOut`, `Aborted`, `NoProvider`,
    `DataTooLarge`."""

    message: str | None = None
    """What happened, for a person."""

    started_at: datetime | None = None
    """When it was triggered."""

    finished_at: datetime | None = None
    """When it finished."""

    output: Data | None = None
    """The task's output: the data of its providers' `.finished` events, merged. Not copied
    here (see the TaskExecution) when the run's copies would pass its data limit."""


class QueueRecord(StatusModel):
    """The concurrency queue a run belongs to (its sequence sets `concurrency`)."""

    key: Annotated[str, Field(max_length=1024)]
    """The rendered key: runs of the same Shipyard with the same key share the queue."""

    limit: Annotated[int, Field(ge=1)]
    """How many runs of the queue may be started at once (this run's sequence's limit)."""


class SequenceRunStatus(StatusModel):
    """Where the run is (written by the operator only)."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The `metadata.generation` the status describes."""

    phase: RunPhase | None = None
    """`Pending` (accepted, not started), `Queued` (waiting for a concurrency slot),
    `Started`, `Suspended` (held before its next task) or `Finished`. Unset: not yet seen by
    the operator."""

    result: Result | None = None
    """The worst result of the tasks that ran (`pass`, `warning` or `fail`), once finished."""

    reason: Reason | None = None
    """Why it finished: `Completed`, `Failed` (a task failed), `TimedOut`, `Aborted`,
    `Invalid` (unknown Shipyard, stage or sequence), `NoProvider` or `DataTooLarge` (its data,
    or a task's output, over a limit)."""

    message: str | None = None
    """What happened, for a person (names what was not found when `Invalid`)."""

    context: Annotated[str, Field(max_length=128)] | None = None
    """The correlation id carried by every event of this run (CloudEvent extension
    `slipwaycontext`); a linked run keeps the context of the run that started it."""

    current_task: Name | None = None
    """The task being carried out now (the last one, once finished)."""

    tasks: list[TaskRecord] = Field(default_factory=list, max_length=MAX_TASKS)
    """One entry per task reached, in order."""

    data: Data | None = None
    """The run's data: `spec.data` deep-merged with the output of every finished task (maps
    merge; for anything else the later value wins)."""

    started_at: datetime | None = None
    """When the run started."""

    finished_at: datetime | None = None
    """When the run finished."""

    sequence: Sequence | None = None
    """The sequence definition, copied from the Shipyard when the run started: later edits of
    the Shipyard do not change a run under way."""

    queue: QueueRecord | None = None
    """The concurrency queue of the run (set when its sequence has `concurrency`)."""

    score: Annotated[float, Field(ge=0, le=100)] | None = None
    """The score (0-100) of the last evaluation task of the run, if any."""

    conditions: list[Condition] = conditions_field()
    """`Succeeded`: `Unknown` while running; `True` when finished with `pass` or `warning`;
    `False` otherwise. `kubectl wait --for=condition=Succeeded` waits on it. `Suspended`:
    `True` while `spec.suspend` holds the run (reason `Suspending` while its current task
    still runs), `False` after a resume."""
