"""Status merge patches computed from two versions of a status model, and how a status finishes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slipway.api.common import ConditionStatus, Phase, Reason, Result, StatusModel
from slipway.api.sequencerun import RunPhase, SequenceRunStatus
from slipway.api.taskexecution import TaskExecutionStatus
from slipway.engine.conditions import SUCCEEDED, conditions_with
from slipway.engine.results import succeeded

Patch = dict[str, Any]


def status_patch(old: StatusModel, new: StatusModel) -> Patch:
    """A JSON merge patch taking the status `old` to `new`, top-level field by field: each
    changed field carries its whole new value (lists such as `tasks`, `providers` and
    `conditions` are written whole, as a merge patch replaces lists anyway); a field unset in
    `new` but set in `old` becomes null (deleted). Empty when nothing changed.

    Maps such as `data` are written whole too; the API server merges them with what is stored,
    which gives the same map since the engine's maps only grow (deep merge adds or replaces,
    never removes) — except a key whose new value is null, which a merge patch deletes."""
    before = old.to_wire()
    after = new.to_wire()
    patch: Patch = {key: value for key, value in after.items() if before.get(key) != value}
    patch.update({key: None for key in before if key not in after})
    return patch


def finish_status(
    new: SequenceRunStatus | TaskExecutionStatus,
    result: Result,
    reason: Reason,
    message: str,
    now: datetime,
) -> None:
    """Finish a run's or an execution's status (in place): phase `Finished`, the result, its
    reason and message, `finishedAt`, and condition `Succeeded` True for `pass`/`warning`,
    False for `fail`. The one rule for how anything of Slipway's finishes."""
    if isinstance(new, SequenceRunStatus):
        new.phase = RunPhase.FINISHED
    else:
        new.phase = Phase.FINISHED
    new.result, new.reason, new.message = result, reason, message
    new.finished_at = now
    if isinstance(new, TaskExecutionStatus):
        new.next_attempt_at = None
    new.conditions = conditions_with(
        new.conditions,
        SUCCEEDED,
        ConditionStatus.TRUE if succeeded(result) else ConditionStatus.FALSE,
        reason.value,
        message,
        now,
    )
