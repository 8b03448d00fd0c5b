"""TaskExecution: one task of one run, created and owned by its SequenceRun."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field

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
from slipway.api.shipyard import MAX_TASKS, Task
from slipway.api.taskprovider import ProviderKind

#: Bound of the providers serving one task (keeps status objects small).
MAX_PROVIDERS = 16


def execution_name(run: str, index: int, task: str) -> str:
    """The deterministic name of a run's TaskExecution: `<run>-<index>-<task>`."""
    return f"{run}-{index}-{task}"


class TaskExecutionSpec(SlipwayModel):
    """What to carry out: set by the operator when the run reaches the task."""

    run: ObjectName
    """The SequenceRun this execution belongs to (also its owner)."""

    index: Annotated[int, Field(ge=0, le=MAX_TASKS - 1)]
    """The task's position in the sequence, from 0."""

    shipyard: ObjectName
    """The run's Shipyard."""

    stage: Name
    """The run's stage."""

    sequence: Name
    """The run's sequence."""

    task: Task
    """The task's definition as copied into the run (name, properties, timeouts, retries)."""

    context: Annotated[str, Field(max_length=128)]
    """The run's correlation id (CloudEvent extension `slipwaycontext`)."""

    input: Data = Field(default_factory=dict)
    """The run's data when the task was reached. Each provider's `.triggered` event carries it
    plus `data.<task>` = the task's properties and the run's shipyard, stage, sequence, task
    and run."""


#: Bound of the decisions kept per approval (keeps status objects small).
MAX_APPROVALS = 32


class ApprovalDecisionKind(StrEnum):
    """What a person decided about an approval."""

    APPROVE = "approve"
    REJECT = "reject"


class ApprovalRecord(StatusModel):
    """One person's decision about an approval task."""

    user: Annotated[str, Field(min_length=1, max_length=253)]
    """Who decided, as the API server authenticated them (TokenReview username)."""

    decision: ApprovalDecisionKind
    """`approve` or `reject`."""

    at: datetime
    """When the decision was recorded."""

    comment: Annotated[str, Field(max_length=1024)] | None = None
    """What they said."""


class ProviderRecord(StatusModel):
    """What one TaskProvider did for this execution (its current attempt)."""

    name: Annotated[str, Field(min_length=1, max_length=253)]
    """The TaskProvider's name."""

    kind: ProviderKind | None = None
    """`cloudEvent`, `job`, `evaluation` or `approval`."""

    attempt: Annotated[int, Field(ge=0)] = 0
    """The attempt this entry belongs to (1 for the first; 0: not yet triggered)."""

    triggered_id: Annotated[str, Field(max_length=256)] | None = None
    """The `id` of the `.triggered` event sent to this provider; its responses carry it as
    `triggeredid`."""

    triggered_at: datetime | None = None
    """When the operator decided to send its `.triggered` event (the start of its
    `startTimeout` and `timeout`)."""

    job: Annotated[str, Field(max_length=253)] | None = None
    """The Job running the current attempt (job providers only)."""

    phase: Phase = Phase.PENDING
    """`Pending` (not yet triggered), `Started` or `Finished`."""

    result: Result | None = None
    """The provider's verdict once finished; a missing or unknown result counts as `fail`."""

    message: str | None = None
    """The provider's message (from its `.finished` event, or why it failed)."""

    output: Data | None = None
    """The data of the provider's `.finished` event, minus the reserved keys."""

    started_at: datetime | None = None
    """When it reported `.started` (or `.finished` without a `.started` before it)."""

    finished_at: datetime | None = None
    """When it reported `.finished`."""

    last_status_message: str | None = None
    """The message of its last `.status.changed` event."""

    delivery: Annotated[str, Field(max_length=1024)] | None = None
    """How sending its `.triggered` went, e.g. `HTTP 202 after 1 try` (a tool that answered at
    once shows its answer instead; a failed delivery fails the provider with the error)."""

    deadline: datetime | None = None
    """When this provider's own time runs out (an approval's `timeout`): then it fails
    `TimedOut`."""

    approvals_required: Annotated[int, Field(ge=1)] | None = None
    """Approval providers: how many distinct approvals pass the task."""

    approvals: list[ApprovalRecord] = Field(default_factory=list, max_length=MAX_APPROVALS)
    """Approval providers: every decision, in order (who, what, when, the comment)."""

    reason: Reason | None = None
    """Why it finished when it did not report a result itself: `TimedOut` (no `.started` or
    `.finished` within `startTimeout`, or no `.finished` within `timeout`), `Failed` (the
    delivery of `.triggered` or its Job failed), `Aborted`."""


class TaskExecutionStatus(StatusModel):
    """Where the execution is (written by the operator only)."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The `metadata.generation` the status describes."""

    phase: Phase | None = None
    """`Pending` (waiting for a delay or a provider), `Started`, or `Finished`. Unset: not yet
    seen by the operator."""

    result: Result | None = None
    """The worst result of its providers (`fail` > `warning` > `pass`), once finished."""

    reason: Reason | None = None
    """Why it finished: `Completed`, `Failed`, `TimedOut`, `Aborted`, `NoProvider` or
    `DataTooLarge` (an output over a limit)."""

    message: str | None = None
    """What happened, for a person."""

    started_at: datetime | None = None
    """When the first attempt was triggered."""

    finished_at: datetime | None = None
    """When it finished."""

    attempts: Annotated[int, Field(ge=0)] = 0
    """How many attempts have been triggered (1 + retries so far)."""

    attempt_started_at: datetime | None = None
    """When the current attempt was triggered: its providers' `startTimeout` and `timeout`
    count from then."""

    next_attempt_at: datetime | None = None
    """When the next attempt (a retry after a failed one) is due; unset when no retry waits."""

    providers: list[ProviderRecord] = Field(
        default_factory=list,
        max_length=MAX_PROVIDERS,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    """One entry per TaskProvider serving the task, for the current attempt."""

    output: Data | None = None
    """The providers' outputs, deep-merged: merged into the run's data when the task
    finishes."""

    conditions: list[Condition] = conditions_field()
    """`Succeeded`: `Unknown` while running (reason `WaitingForProvider` while no provider
    serves the task), then `True` (pass or warning) or `False`."""
