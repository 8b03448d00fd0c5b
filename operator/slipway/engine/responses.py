"""What providers' answers do to a TaskExecution's status (imported by `executions`).

Each function returns a merge patch of the status subresource (`{}`: nothing to change);
the handler writes it with the resourceVersion it read, then asks `decide_execution` what
follows (the task may have finished).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from slipway.api.common import Phase, Reason, Result
from slipway.api.taskexecution import ProviderRecord, TaskExecutionStatus
from slipway.engine.data import deep_merge, merge_outputs
from slipway.engine.decisions import Patch, Trigger
from slipway.engine.patches import finish_status, status_patch
from slipway.engine.sizes import DataLimits, json_size


class ResponseRejectedError(Exception):
    """A response that cannot be applied: `status` 404 (no provider of the current attempt
    was sent a `.triggered` with that id) or 409 (the execution, or that provider, already
    finished); `message` says which, for the tool."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def apply_response(
    status: TaskExecutionStatus,
    *,
    triggered_id: str,
    phase: Literal["started", "status.changed", "finished"],
    result: Result | None,
    message: str | None,
    output: Mapping[str, Any] | None,
    at: datetime,
    limits: DataLimits | None = None,
    input_data: Mapping[str, Any] | None = None,
) -> Patch:
    """Record a provider's `.started`, `.status.changed` or `.finished` (answering the
    `.triggered` event `triggered_id` of the current attempt) at time `at`.

    A `.finished` whose output is over `limits` (default `DataLimits()`) finishes the
    provider with `fail`, reason `DataTooLarge` and a message giving the sizes, and its output
    is not kept: over `max_task_output` together with the outputs of the attempt's providers
    that finished before, or making the run's data (`input_data`, the execution's input,
    merged with those outputs) larger than `max_run_data`.

    A `.status.changed` or `.finished` with no `.started` before it counts as started too;
    `.finished` without a result counts as `fail`. Returns a patch writing the whole
    `providers` list, or `{}` when the response changes nothing (an exact repeat, or a late
    `.started` for a provider that already finished). Raises `ResponseRejectedError`: 409
    when the execution finished, or for a `.status.changed`/`.finished` of a finished
    provider; 404 when no current provider entry has that triggered id.
    """
    if status.phase == Phase.FINISHED:
        raise ResponseRejectedError(
            409,
            f"the task already finished ({_result(status.result)}); "
            "responses to it are no longer accepted",
        )
    new = status.copied()
    record = next((p for p in new.providers if p.triggered_id == triggered_id), None)
    if record is None:
        raise ResponseRejectedError(
            404,
            f"no .triggered event with id {triggered_id!r} was sent for the current attempt of "
            "this task",
        )
    if record.phase == Phase.FINISHED:
        if phase == "started":
            return {}
        raise ResponseRejectedError(
            409, f"provider {record.name} already finished ({_result(record.result)})"
        )
    if record.phase == Phase.PENDING or record.started_at is None:
        record.phase = Phase.STARTED
        record.started_at = record.started_at or at
    if phase == "status.changed":
        record.last_status_message = message
    elif phase == "finished":
        too_large = (
            _too_large(new, record, output, limits or DataLimits(), input_data) if output else None
        )
        if too_large is not None:
            end_provider(record, Reason.DATA_TOO_LARGE, too_large, at)
            return status_patch(status, new)
        record.phase = Phase.FINISHED
        record.result = result or Result.FAIL
        record.message = message if result is not None or message else "finished without a result"
        record.output = copy.deepcopy(dict(output)) if output else None
        record.finished_at = at
    return status_patch(status, new)


def _too_large(
    status: TaskExecutionStatus,
    record: ProviderRecord,
    output: Mapping[str, Any],
    limits: DataLimits,
    input_data: Mapping[str, Any] | None,
) -> str | None:
    """Why `output` cannot be kept (a message with the sizes), or None when it fits."""
    size = json_size(output)
    earlier = [p.output for p in status.providers if p is not record and p.output]
    total = size + sum(json_size(o) for o in earlier)
    if total > limits.max_task_output:
        others = f" ({total} bytes with the other providers' outputs)" if earlier else ""
        return (
            f"the output is {size} bytes of JSON{others}; a task's output may be at most "
            f"{limits.max_task_output} bytes (SLIPWAY_MAX_TASK_OUTPUT_BYTES): not kept"
        )
    if input_data is not None:
        merged = deep_merge(input_data, merge_outputs([*earlier, output]))
        data = json_size(merged)
        if data > limits.max_run_data:
            return (
                f"the output ({size} bytes of JSON) would make the run's data {data} bytes; "
                f"the limit is {limits.max_run_data} bytes (SLIPWAY_MAX_RUN_DATA_BYTES): "
                "not kept"
            )
    return None


def fail_provider(
    status: TaskExecutionStatus,
    *,
    provider: str,
    triggered_id: str,
    reason: Reason,
    message: str,
    at: datetime,
) -> Patch:
    """Finish provider `provider` with `fail` for `reason` (its `.triggered` could not be
    delivered after the retries, its Job failed, ...). `{}` when that no longer applies: the
    execution or the provider finished, or `triggered_id` is not the current attempt's (a
    late report about an earlier attempt changes nothing)."""
    if status.phase == Phase.FINISHED:
        return {}
    new = status.copied()
    record = next(
        (p for p in new.providers if p.name == provider and p.triggered_id == triggered_id), None
    )
    if record is None or record.phase == Phase.FINISHED:
        return {}
    end_provider(record, reason, message, at)
    return status_patch(status, new)


def note_delivery(status: TaskExecutionStatus, *, triggered_id: str, note: str) -> Patch:
    """Record how the delivery of `.triggered` to the provider with `triggered_id` went.
    `{}` when the execution or that provider finished meanwhile, or the id is stale."""
    if status.phase == Phase.FINISHED:
        return {}
    new = status.copied()
    record = next((p for p in new.providers if p.triggered_id == triggered_id), None)
    if record is None or record.phase == Phase.FINISHED or record.delivery == note:
        return {}
    record.delivery = note
    return status_patch(status, new)


def finish_execution(
    status: TaskExecutionStatus,
    *,
    result: Result,
    reason: Reason,
    message: str,
    at: datetime,
) -> Patch:
    """Finish the execution as the run decided (`FinishExecution`, e.g. abort): providers
    still running end with `fail` and the same reason (their work is then cleaned up by
    `decide_execution`, which sees the execution finished). `{}` if it already finished."""
    if status.phase == Phase.FINISHED:
        return {}
    new = status.copied()
    for record in new.providers:
        if record.phase != Phase.FINISHED:
            end_provider(record, reason, message, at)
    finish_status(new, result, reason, message, at)
    return status_patch(status, new)


def pending_triggers(status: TaskExecutionStatus) -> list[Trigger]:
    """The `.triggered` events of the current attempt not yet answered (providers still
    `Pending`): what to deliver again after an operator restart, since the operator may have
    stopped between recording an attempt and delivering it. Delivering one twice is allowed
    (same id). Empty once the execution finished or while a retry waits."""
    if status.phase == Phase.FINISHED or status.next_attempt_at is not None:
        return []
    return [
        Trigger(p.name, p.attempt or status.attempts, p.triggered_id)
        for p in status.providers
        if p.phase == Phase.PENDING and p.triggered_id
    ]


def end_provider(record: ProviderRecord, reason: Reason, message: str, at: datetime) -> None:
    """Finish a provider's entry (in place) with `fail` for a reason that is not its own
    report: timed out, aborted, delivery or Job failed."""
    record.phase = Phase.FINISHED
    record.result = Result.FAIL
    record.reason = reason
    record.message = message
    record.finished_at = at


def _result(result: Result | None) -> str:
    return result.value if result is not None else "no result"
