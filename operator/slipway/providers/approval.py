"""Approval providers (a human gate): what their `.triggered` means.

The run's result so far (the worst result of its finished tasks, read from the run's status)
decides whether the task is approved at once (`automatic`) or waits for people; either way
the provider answers at once, so `startTimeout` never ends a wait for a person. Decisions
arrive through the gateway (`slipway.gateway.approvals`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from slipway.api.sequencerun import SequenceRunStatus
from slipway.api.taskexecution import TaskExecutionStatus
from slipway.api.taskprovider import TaskProviderSpec
from slipway.constants import SEQUENCERUN_PLURAL, TASKEXECUTION_PLURAL
from slipway.engine.approvals import result_so_far, start_approval
from slipway.engine.decisions import KubeEvent, Trigger
from slipway.engine.objects import build_event, involved
from slipway.kube.client import Ref
from slipway.providers.context import DispatchContext, ExecutionRef

log = logging.getLogger(__name__)

EVENT_WAITING = "ApprovalWaiting"
EVENT_AUTOMATIC = "ApprovedAutomatically"


async def start(
    ctx: DispatchContext, execution: ExecutionRef, provider: TaskProviderSpec, order: Trigger
) -> None:
    """Start the approval of `order.provider`: approve at once or wait for people. Idempotent
    (a repeated trigger finds the entry no longer pending and changes nothing)."""
    approval = provider.approval
    if approval is None:
        raise ValueError(f"TaskProvider {order.provider} is not an approval provider")
    run = await ctx.kube.get(Ref(SEQUENCERUN_PLURAL, execution.namespace, execution.spec.run))
    status = SequenceRunStatus.model_validate((run or {}).get("status") or {})
    so_far = result_so_far(
        t.result for t in status.tasks if t.index < execution.spec.index and t.result
    )
    now = datetime.now(UTC)

    def change(body: dict[str, Any]) -> dict[str, Any] | None:
        current = TaskExecutionStatus.model_validate(body.get("status") or {})
        patch = start_approval(
            current,
            provider=order.provider,
            triggered_id=order.triggered_id,
            approval=approval,
            so_far=so_far,
            at=now,
        )
        return patch or None

    ref = Ref(TASKEXECUTION_PLURAL, execution.namespace, execution.name)
    updated = await ctx.kube.update_status(ref, change)
    if updated is None:
        return
    record: dict[str, Any] = next(
        (p for p in updated["status"].get("providers", []) if p.get("name") == order.provider),
        {},
    )
    automatic = record.get("phase") == "Finished"
    said = record.get("message") if automatic else record.get("lastStatusMessage")
    event = KubeEvent(
        "Normal", EVENT_AUTOMATIC if automatic else EVENT_WAITING, f"{order.provider}: {said}"
    )
    about = involved("TaskExecution", execution.namespace, execution.name, execution.uid)
    await ctx.kube.post_event(build_event(about, event, now))
