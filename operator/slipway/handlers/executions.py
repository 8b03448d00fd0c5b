"""A TaskExecution's worker: trigger its providers, watch for timeouts, finish it.

Each turn starts from the newest copy of the execution this process has (its watch's, or
its own last write), lets `decide_execution` compute the next status from it (applied only
if nobody changed the execution meanwhile: tool callbacks write it too; a stale copy costs a
conflict and a read),
then sends the triggers that status records. After an operator restart the first turn also
re-sends the triggers of providers that never answered (same event id: at-least-once
delivery, duplicates recognisable), because a crash may have come between recording a
trigger and sending it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from slipway import faults, logs
from slipway.api.taskexecution import TaskExecutionSpec, TaskExecutionStatus
from slipway.api.taskprovider import TaskProviderSpec
from slipway.constants import SEQUENCERUN_PLURAL, TASKEXECUTION_PLURAL
from slipway.engine.decisions import ExecutionDecision, Trigger
from slipway.engine.executions import (
    ExecutionView,
    ProviderView,
    ResponseRejectedError,
    decide_execution,
    serves,
)
from slipway.engine.objects import build_event, involved
from slipway.engine.responses import pending_triggers
from slipway.events import task_triggered_id
from slipway.handlers.indexes import ProviderIndex, running
from slipway.handlers.refused import finish_refused, refused
from slipway.handlers.runtime import Runtime
from slipway.kube.client import Ref, newest
from slipway.kube.errors import KubeError
from slipway.providers.context import DispatchContext, ExecutionRef
from slipway.providers.dispatch import Answer, trigger
from slipway.providers.job import delete_jobs

Body = dict[str, Any]

log = logging.getLogger(__name__)


def execution_view(body: Body, spec: TaskExecutionSpec | None = None) -> ExecutionView:
    """The engine's view of a TaskExecution object; `spec`, when given, is its spec already
    validated (a worker validates it once per `generation`, the status on every turn)."""
    meta = body["metadata"]
    return ExecutionView(
        namespace=meta["namespace"],
        name=meta["name"],
        created=datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00")),
        spec=spec or TaskExecutionSpec.model_validate(body.get("spec") or {}),
        status=TaskExecutionStatus.model_validate(body.get("status") or {}),
    )


class SpecCache:
    """An object's spec validated once per `metadata.generation` (the spec changes only
    with it), not on every turn of its worker."""

    def __init__(self) -> None:
        self._generation: object = None
        self._spec: Any = None

    def get(self, body: Body, parse: Any) -> Any:
        generation = (body.get("metadata") or {}).get("generation")
        if self._spec is None or generation is None or generation != self._generation:
            self._spec = parse(body.get("spec") or {})
            self._generation = generation
        return self._spec


def providers_for(view: ExecutionView, index: ProviderIndex) -> list[ProviderView]:
    """The TaskProviders (from the index) that serve this execution's task here."""
    spec = view.spec
    found = []
    for name, provider in index.get((view.namespace, spec.task.name), []):
        parsed = (
            provider
            if isinstance(provider, TaskProviderSpec)
            else TaskProviderSpec.model_validate(provider)
        )
        if serves(parsed, spec.shipyard, spec.stage, spec.task.name):
            found.append(ProviderView(name=name, spec=parsed))
    return found


def start_execution(rt: Runtime, body: Body, providers: ProviderIndex) -> None:
    """Hand a TaskExecution (as its watch, or its creator, has it) to the supervisor, which
    starts its worker unless it runs already."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    key = (TASKEXECUTION_PLURAL, namespace, name)

    def worker() -> Coroutine[Any, Any, None]:
        return execution_worker(rt, namespace, name, providers)

    rt.supervisor.observe(key, body, running(body.get("status")), worker)
    rt.wakeups.wake(key)


async def execution_worker(
    rt: Runtime, namespace: str, name: str, providers_index: ProviderIndex
) -> None:
    """Drive one execution until it is finished (cancelled when the object is deleted or the
    operator stops).

    What the deliveries of a turn bring back (a synchronous tool's answer, a delivery note)
    is recorded by the next turn's write, at once and together with what follows from it:
    a synchronous tool's task finishes in the same write that records its answer, and the
    run's worker is woken directly, not by the watch."""
    ctx = rt.dispatch
    ref = Ref(TASKEXECUTION_PLURAL, namespace, name)
    key = (TASKEXECUTION_PLURAL, namespace, name)
    rt.wakeups.register(key)
    first_turn = True
    answers: list[Answer] = []
    specs = SpecCache()
    try:
        while True:
            seen: dict[str, Any] = {}

            def change(
                body: Body, seen: dict[str, Any] = seen, answers: list[Answer] = answers
            ) -> Body | None:
                status, recorded = _with_answers(name, body.get("status") or {}, answers)
                spec = specs.get(body, TaskExecutionSpec.model_validate)
                view = execution_view({**body, "status": status}, spec)
                decision = decide_execution(
                    view,
                    providers_for(view, providers_index),
                    datetime.now(UTC),
                    lambda provider, attempt: task_triggered_id(namespace, name, provider, attempt),
                )
                seen.update(body=body, view=view, decision=decision)
                return {**recorded, **(decision.status or {})} or None

            known = newest(rt.supervisor.latest(key), rt.kube.written(ref))
            if known is None:
                return  # deleted
            fence = rt.membership.fence(namespace, str((known.get("spec") or {}).get("run")))
            try:
                updated = await ctx.kube.update_status(ref, change, known=known, fence=fence)
            except KubeError as error:
                if not refused(error):
                    raise
                await finish_refused(ctx.kube, ref, error, ("output", "providers"))
                return
            if "decision" not in seen:
                return  # the execution is gone
            decision: ExecutionDecision = seen["decision"]
            view = (
                execution_view(updated, seen["view"].spec) if updated is not None else seen["view"]
            )
            orders = list(decision.triggers)
            if first_turn:
                sent = {o.triggered_id for o in orders}
                orders += [o for o in pending_triggers(view.status) if o.triggered_id not in sent]
                first_turn = False
            if orders:
                faults.reach("before-delivery")
                fence()  # recorded under CAS; sent only while this replica still owns it
            answers = await _send(ctx, seen["body"], view, orders, providers_index)
            if decision.cleanup:  # Jobs of providers the engine ended: abort, timeout, retry
                uid = seen["body"]["metadata"]["uid"]
                execution = ExecutionRef(view.namespace, view.name, uid, view.created, view.spec)
                await delete_jobs(ctx, execution, decision.cleanup, view.status)
            if decision.events:
                now = datetime.now(UTC)
                about = involved("TaskExecution", namespace, name, seen["body"]["metadata"]["uid"])
                for event in decision.events:
                    rt.events.post(build_event(about, event, now))
                    logs.event("TaskExecution", namespace, name, event.reason, event.message)
            if decision.finished:
                rt.supervisor.finished(key, updated if updated is not None else known)
                rt.kube.forget(ref)  # keep no copy of a finished execution's outputs
                rt.wakeups.wake((SEQUENCERUN_PLURAL, namespace, view.spec.run))
                return
            if not answers:
                await rt.wakeups.sleep(key, decision.wake_at)
    finally:
        rt.wakeups.forget(key)


def _with_answers(name: str, status: Body, answers: list[Answer]) -> tuple[Body, Body]:
    """`status` with `answers` applied, and the patch that records them. An answer that no
    longer applies (the task or its provider finished meanwhile) is left out."""
    status = dict(status)
    recorded: Body = {}
    for answer in answers:
        try:
            patch = answer.patch(TaskExecutionStatus.model_validate(status))
        except ResponseRejectedError as error:
            log.warning("%s: synchronous answer not applied: %s", name, error.message)
            continue
        status.update(patch)
        recorded.update(patch)
    return status, recorded


async def _send(
    ctx: DispatchContext,
    body: Body,
    view: ExecutionView,
    orders: list[Trigger],
    index: ProviderIndex,
) -> list[Answer]:
    """Send `orders`; what came back, for the next write."""
    if not orders:
        return []
    by_name = {p.name: p.spec for p in providers_for(view, index)}
    uid = body["metadata"]["uid"]
    ref = ExecutionRef(view.namespace, view.name, uid, view.created, view.spec)
    answers = await asyncio.gather(
        *(trigger(ctx, ref, by_name[o.provider], o) for o in orders if o.provider in by_name)
    )
    return [answer for answer in answers if answer is not None]
