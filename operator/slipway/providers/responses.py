"""Record what a provider reported in its TaskExecution's status.

Used by the gateway (tool callbacks), by synchronous answers to a delivery, and by failed
deliveries. Writes go through `Kube.update_status` (optimistic concurrency), because the
execution's own handler writes the same status.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from slipway.api.common import Reason, Result
from slipway.api.taskexecution import TaskExecutionStatus
from slipway.constants import TASKEXECUTION_PLURAL
from slipway.engine.decisions import Patch
from slipway.engine.executions import ResponseRejectedError, apply_response, fail_provider
from slipway.engine.sizes import DataLimits
from slipway.events import TaskResponse
from slipway.kube.client import Kube, Ref


def _status(body: dict[str, Any]) -> TaskExecutionStatus:
    return TaskExecutionStatus.model_validate(body.get("status") or {})


def _input(body: dict[str, Any]) -> dict[str, Any]:
    return (body.get("spec") or {}).get("input") or {}


def response_patch(
    status: TaskExecutionStatus,
    response: TaskResponse,
    at: datetime | None = None,
    *,
    limits: DataLimits | None = None,
    input_data: dict[str, Any] | None = None,
) -> Patch:
    """The status patch of a tool's `.started`/`.status.changed`/`.finished` (see
    `engine.responses.apply_response`, which raises ResponseRejectedError; an output over
    `limits` fails the provider with `DataTooLarge`)."""
    return apply_response(
        status,
        triggered_id=response.triggered_id,
        phase=response.phase,
        result=Result(response.result) if response.result else None,
        message=_message(response),
        output=response.output,
        at=at or response.time or datetime.now(UTC),
        limits=limits,
        input_data=input_data,
    )


def data_too_large(updated: dict[str, Any] | None, response: TaskResponse) -> str | None:
    """The message of a `.finished` whose output was not kept for its size (the provider
    ended `DataTooLarge`), read from the execution as written; None otherwise."""
    if updated is None or response.phase != "finished":
        return None
    record = next(
        (p for p in _status(updated).providers if p.triggered_id == response.triggered_id), None
    )
    if record is not None and record.reason == Reason.DATA_TOO_LARGE:
        return record.message
    return None


async def record_response(
    kube: Kube,
    namespace: str,
    execution: str,
    response: TaskResponse,
    check: Callable[[dict[str, Any]], None] | None = None,
    limits: DataLimits | None = None,
) -> dict[str, Any] | None:
    """Apply a tool's `.started`/`.status.changed`/`.finished` to the execution. `check`,
    given the execution as read, may refuse by raising (the caller's own error). Raises
    ResponseRejectedError (404: no such execution or triggered id; 409: already finished).
    An output over `limits` fails the provider with `DataTooLarge` (see `data_too_large`).
    Returns the execution as written (None: nothing changed)."""
    ref = Ref(TASKEXECUTION_PLURAL, namespace, execution)
    at = response.time or datetime.now(UTC)

    def change(body: dict[str, Any]) -> dict[str, Any] | None:
        if check is not None:
            check(body)
        return (
            response_patch(_status(body), response, at, limits=limits, input_data=_input(body))
            or None
        )

    try:
        updated = await kube.update_status(ref, change)
    except ResponseRejectedError as error:
        if error.status != 404:
            raise  # finished: final in every copy, however old
        # Judged on this process's last copy of the execution, which another replica may
        # have overtaken since (a hand-over: the new owner recorded the `.triggered` this
        # answers). Judged again on the API server's copy.
        fresh = await kube.get(ref)
        if fresh is None:
            raise
        updated = await kube.update_status(ref, change, known=fresh)
    if updated is None and await kube.get(ref) is None:
        raise ResponseRejectedError(404, f"TaskExecution {namespace}/{execution} does not exist")
    return updated


async def record_failure(
    kube: Kube,
    namespace: str,
    execution: str,
    *,
    provider: str,
    triggered_id: str,
    reason: Reason,
    message: str,
) -> None:
    """Mark one provider of the execution finished with `fail` (e.g. its event could not be
    delivered). A provider that finished meanwhile is left as it is."""
    ref = Ref(TASKEXECUTION_PLURAL, namespace, execution)
    now = datetime.now(UTC)

    def change(body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            patch = fail_provider(
                _status(body),
                provider=provider,
                triggered_id=triggered_id,
                reason=reason,
                message=message,
                at=now,
            )
        except ResponseRejectedError:
            return None
        return patch or None

    await kube.update_status(ref, change)


async def record_finished(
    kube: Kube,
    namespace: str,
    execution: str,
    *,
    triggered_id: str,
    result: Result,
    message: str,
    output: dict[str, Any],
    limits: DataLimits | None = None,
) -> bool:
    """Mark the provider that was sent `triggered_id` finished with a result computed in this
    process (the built-in evaluation): started and finished at once. False when that no
    longer applies: the execution is gone, it or the provider finished meanwhile (a timeout,
    an abort), or `triggered_id` is not the current attempt's."""
    ref = Ref(TASKEXECUTION_PLURAL, namespace, execution)
    now = datetime.now(UTC)

    def change(body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            patch = apply_response(
                _status(body),
                triggered_id=triggered_id,
                phase="finished",
                result=result,
                message=message,
                output=output,
                at=now,
                limits=limits,
                input_data=_input(body),
            )
        except ResponseRejectedError:
            return None
        return patch or None

    return await kube.update_status(ref, change) is not None


def _message(response: TaskResponse) -> str | None:
    """The tool's message, with the reason its result was turned into `fail`, if it was."""
    parts = [p for p in (response.message, response.result_note) if p]
    return "; ".join(parts) or None
