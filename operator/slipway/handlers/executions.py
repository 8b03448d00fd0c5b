"""A TaskExecution's worker: trigger its providers, watch for timeouts, finish it.

Each turn reads the execution fresh, lets `decide_execution` compute the next status from
it (applied only if nobody changed the execution meanwhile: tool callbacks write it too),
then sends the triggers that status records. After an operator restart the first turn also
re-sends the triggers of providers that never answered (same event id: at-least-once
delivery, duplicates recognisable), because a crash may have come between recording a
trigger and sending it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import kopf

from slipway import faults
from slipway.api.taskexecution import TaskExecutionSpec, TaskExecutionStatus
from slipway.api.taskprovider import TaskProviderSpec
from slipway.constants import TASKEXECUTION_PLURAL
from slipway.engine.decisions import ExecutionDecision, Trigger
from slipway.engine.executions import ExecutionView, ProviderView, decide_execution, serves
from slipway.engine.responses import pending_triggers
from slipway.events import task_triggered_id
from slipway.handlers.wakeups import Wakeups
from slipway.kube.client import Ref, newest
from slipway.providers.context import DispatchContext, ExecutionRef
from slipway.providers.dispatch import trigger
from slipway.providers.job import delete_jobs

Body = dict[str, Any]


def execution_view(body: Body) -> ExecutionView:
    """The engine's view of a TaskExecution object."""
    meta = body["metadata"]
    return ExecutionView(
        namespace=meta["namespace"],
        name=meta["name"],
        created=datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00")),
        spec=TaskExecutionSpec.model_validate(body.get("spec") or {}),
        status=TaskExecutionStatus.model_validate(body.get("status") or {}),
    )


def providers_for(view: ExecutionView, index: Any) -> list[ProviderView]:
    """The TaskProviders (from the index) that serve this execution's task here."""
    spec = view.spec
    found = []
    for name, provider in index.get((view.namespace, spec.task.name), []):
        parsed = TaskProviderSpec.model_validate(provider)
        if serves(parsed, spec.shipyard, spec.stage, spec.task.name):
            found.append(ProviderView(name=name, spec=parsed))
    return found


async def execution_worker(
    ctx: DispatchContext,
    wakeups: Wakeups,
    namespace: str,
    name: str,
    live: Callable[[], Body | None],
    providers_index: Any,
    logger: logging.Logger | kopf.ObjectLogger,
) -> None:
    """Drive one execution until it is finished (cancelled when the object is deleted or the
    operator stops).

    `live()` is the execution as its watch last delivered it; each turn starts from it, or
    from the worker's own last write while the watch has not delivered that yet (a stale
    copy only costs a conflict and a read)."""
    ref = Ref(TASKEXECUTION_PLURAL, namespace, name)
    key = (TASKEXECUTION_PLURAL, namespace, name)
    wakeups.register(key)
    first_turn = True
    written: Body | None = None
    try:
        while True:
            seen: dict[str, Any] = {}

            def change(body: Body, seen: dict[str, Any] = seen) -> Body | None:
                view = execution_view(body)
                decision = decide_execution(
                    view,
                    providers_for(view, providers_index),
                    datetime.now(UTC),
                    lambda provider, attempt: task_triggered_id(namespace, name, provider, attempt),
                )
                seen.update(body=body, view=view, decision=decision)
                return decision.status

            known = newest(live(), written)
            if known is None:
                return  # deleted
            updated = await ctx.kube.update_status(ref, change, known=known)
            written = updated or written
            if "decision" not in seen:
                return  # the execution is gone
            decision: ExecutionDecision = seen["decision"]
            view = execution_view(updated) if updated is not None else seen["view"]
            orders = list(decision.triggers)
            if first_turn:
                sent = {o.triggered_id for o in orders}
                orders += [o for o in pending_triggers(view.status) if o.triggered_id not in sent]
                first_turn = False
            if orders:
                faults.reach("before-delivery")
            await _send(ctx, seen["body"], view, orders, providers_index)
            if decision.cleanup:  # Jobs of providers the engine ended: abort, timeout, retry
                uid = seen["body"]["metadata"]["uid"]
                execution = ExecutionRef(view.namespace, view.name, uid, view.spec)
                await delete_jobs(ctx, execution, decision.cleanup, view.status)
            for event in decision.events:
                kopf.event(
                    seen["body"], type=event.type, reason=event.reason, message=event.message
                )
            if decision.finished:
                return
            await wakeups.sleep(key, decision.wake_at)
    finally:
        wakeups.forget(key)


async def _send(
    ctx: DispatchContext, body: Body, view: ExecutionView, orders: list[Trigger], index: Any
) -> None:
    if not orders:
        return
    by_name = {p.name: p.spec for p in providers_for(view, index)}
    ref = ExecutionRef(view.namespace, view.name, body["metadata"]["uid"], view.spec)
    await asyncio.gather(
        *(trigger(ctx, ref, by_name[o.provider], o) for o in orders if o.provider in by_name)
    )
