"""What the engine decides, as plain data the handlers carry out.

The engine never performs I/O: a handler loads the resources, calls `decide_run` or
`decide_execution` with the current time, and performs the returned decision in the order
its fields are listed (creations before the status write that depends on them), so an
operator killed between two steps recomputes the same decision on restart and finishes the
work without duplicates (names are deterministic; creation tolerates AlreadyExists).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slipway.api.common import Reason, Result
from slipway.api.sequencerun import SequenceRunSpec
from slipway.api.taskexecution import TaskExecutionSpec

Patch = dict[str, Any]


@dataclass(frozen=True)
class KubeEvent:
    """A Kubernetes Event to post on the object the decision is about."""

    type: str  # "Normal" or "Warning"
    reason: str  # CamelCase, e.g. "TaskStarted"
    message: str


@dataclass(frozen=True)
class NewExecution:
    """A TaskExecution to create (owned by the run), named `name`."""

    name: str
    spec: TaskExecutionSpec
    labels: dict[str, str]


@dataclass(frozen=True)
class NewRun:
    """A linked SequenceRun to create (owned by nobody), named `name`."""

    name: str
    spec: SequenceRunSpec
    labels: dict[str, str]
    annotations: dict[str, str]


@dataclass(frozen=True)
class FinishExecution:
    """Mark a still-running TaskExecution finished (abort): its own handler then cleans up."""

    name: str
    result: Result
    reason: Reason
    message: str


@dataclass
class RunDecision:
    """What to do for one SequenceRun now. Perform in this order:
    `create_executions`, `create_runs`, `finish_executions`, then `status` (a merge patch of
    the status subresource; None: unchanged), then `events`. `wake_at`: decide again at that
    time even if nothing changes (None: only when something changes)."""

    create_executions: list[NewExecution] = field(default_factory=list)
    create_runs: list[NewRun] = field(default_factory=list)
    finish_executions: list[FinishExecution] = field(default_factory=list)
    status: Patch | None = None
    events: list[KubeEvent] = field(default_factory=list)
    wake_at: datetime | None = None
    finished: bool = False


@dataclass(frozen=True)
class Trigger:
    """Send `<task>.triggered` to provider `provider` (attempt `attempt`, event id
    `triggered_id`). Sending the same trigger twice is allowed (at-least-once delivery; the
    id lets a tool drop the duplicate; a Job's name is derived from it)."""

    provider: str
    attempt: int
    triggered_id: str


@dataclass
class ExecutionDecision:
    """What to do for one TaskExecution now. Perform in this order: `status` (merge patch,
    written with the resourceVersion read, since tool callbacks write it too), then
    `triggers`, then `cleanup` (providers whose running work — a Job — must be deleted:
    finished by timeout or abort, or before a retry), then `events`. `wake_at` as for runs."""

    status: Patch | None = None
    triggers: list[Trigger] = field(default_factory=list)
    cleanup: list[str] = field(default_factory=list)
    events: list[KubeEvent] = field(default_factory=list)
    wake_at: datetime | None = None
    finished: bool = False
