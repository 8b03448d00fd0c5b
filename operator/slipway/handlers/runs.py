"""A SequenceRun's worker: ask the engine what to do, do it, sleep until something changes.

Each turn starts from the newest copy of the run this process has (the watch's, or its own
last write when the watch has not brought that back yet), takes its Shipyard from kopf's
index and its current TaskExecution from the index or this process's last write of it, and
lets `decide_run` say what to do. This module only carries the decision out, in the order
that keeps a crash harmless.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slipway import faults, logs, metrics
from slipway.api.sequencerun import SequenceRunSpec, SequenceRunStatus
from slipway.api.shipyard import ShipyardSpec
from slipway.api.taskexecution import TaskExecutionStatus
from slipway.constants import SEQUENCERUN_PLURAL, SHIPYARD_PLURAL, TASKEXECUTION_PLURAL
from slipway.engine.decisions import FinishExecution, RunDecision
from slipway.engine.objects import build_event, build_execution, build_linked_run, involved
from slipway.engine.queue import needs_queue
from slipway.engine.responses import finish_execution as finished_patch
from slipway.engine.runs import RunView, current_execution, decide_run
from slipway.handlers import queue
from slipway.handlers.executions import SpecCache, start_execution
from slipway.handlers.indexes import ExecutionIndex, ProviderIndex, ShipyardIndex, version_of
from slipway.handlers.refused import finish_refused, refused
from slipway.handlers.runtime import Runtime
from slipway.kube.client import Kube, Ref, newest
from slipway.kube.errors import KubeError

Body = dict[str, Any]


def run_view(body: Body, spec: SequenceRunSpec | None = None) -> RunView:
    """The engine's view of a SequenceRun object (`spec`: already validated, as for
    `executions.execution_view`)."""
    meta = body["metadata"]
    return RunView(
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta["uid"],
        created=datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00")),
        labels=meta.get("labels") or {},
        annotations=meta.get("annotations") or {},
        spec=spec or SequenceRunSpec.model_validate(body.get("spec") or {}),
        status=SequenceRunStatus.model_validate(body.get("status") or {}),
    )


async def run_worker(
    rt: Runtime,
    namespace: str,
    name: str,
    shipyards: ShipyardIndex,
    executions: ExecutionIndex,
    providers: ProviderIndex | None = None,
) -> None:
    """Drive one run until it is finished (cancelled when the object is deleted or the
    operator stops). No turn reads the run from the API."""
    key = (SEQUENCERUN_PLURAL, namespace, name)
    ref = Ref(SEQUENCERUN_PLURAL, namespace, name)
    rt.wakeups.register(key)
    specs = SpecCache()
    limits = rt.dispatch.data_limits
    try:
        while True:
            body = newest(rt.supervisor.latest(key), rt.kube.written(ref))
            if body is None:
                return
            view = run_view(body, specs.get(body, SequenceRunSpec.model_validate))
            shipyard = await find_shipyard(rt.kube, shipyards, namespace, view.spec.shipyard)
            current = current_execution(view)
            known = {}
            if current is not None:
                status = await execution_status(rt.kube, executions, view, current)
                if status is not None:
                    known[current] = status
            try:
                if needs_queue(view.status.phase, view.spec, shipyard):
                    async with queue.lock(namespace):  # one admission at a time, from the API
                        others = await queue.members(rt.kube, namespace, shipyards)
                        decision = decide_run(
                            view, shipyard, known, datetime.now(UTC), others, limits
                        )
                        await perform(rt, body, decision, providers)
                else:
                    decision = decide_run(view, shipyard, known, datetime.now(UTC), (), limits)
                    await perform(rt, body, decision, providers)
            except KubeError as error:
                if not refused(error):
                    raise
                await finish_refused(rt.kube, ref, error, ("data", "tasks"))
                return
            if decision.finished:
                rt.kube.forget(ref)  # keep no copy of a finished run's (possibly large) body
                return
            await rt.wakeups.sleep(key, decision.wake_at)
    finally:
        rt.wakeups.forget(key)


async def execution_status(
    kube: Kube, index: ExecutionIndex, run: RunView, name: str
) -> TaskExecutionStatus | None:
    """The status of the run's TaskExecution `name` (None: it does not exist): from this
    process's last write of it when that is newer than the index, else from the index; a
    finished one the index keeps no status of, or one not seen yet, is read from the API."""
    entry = next((e for e in index.get((run.namespace, run.name), []) if e.name == name), None)
    ref = Ref(TASKEXECUTION_PLURAL, run.namespace, name)
    written = kube.written(ref)
    if written is not None and (entry is None or version_of(written) >= entry.version):
        return TaskExecutionStatus.model_validate(written.get("status") or {})
    if entry is not None and entry.status is not None:
        return TaskExecutionStatus.model_validate(entry.status)
    body = await kube.get(ref)
    return TaskExecutionStatus.model_validate(body.get("status") or {}) if body else None


async def find_shipyard(
    kube: Kube, index: ShipyardIndex, namespace: str, name: str
) -> ShipyardSpec | None:
    """The run's Shipyard from kopf's index; when the index does not have it, from the API:
    Shipyards and runs arrive on separate watches, so a run applied together with its
    Shipyard can be seen first, and must not be judged Invalid for that."""
    found = list(index.get((namespace, name), []))
    if found:
        spec = found[0]
        return spec if isinstance(spec, ShipyardSpec) else ShipyardSpec.model_validate(spec)
    body = await kube.get(Ref(SHIPYARD_PLURAL, namespace, name))
    return ShipyardSpec.model_validate(body["spec"]) if body else None


async def perform(
    rt: Runtime, body: Body, decision: RunDecision, providers: ProviderIndex | None = None
) -> None:
    """Carry out a run decision: children first, then the status that records them, then
    the Events (queued, never waited for)."""
    meta = body["metadata"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    kube = rt.kube
    run_body = body
    for new in decision.create_executions:
        body = build_execution(new, name, uid)
        created = await kube.ensure_created(TASKEXECUTION_PLURAL, namespace, body)
        faults.reach("after-execution-created")
        if created is not None and providers is not None:
            # Its worker starts now, not when the watch brings the new object back.
            start_execution(rt, created, providers)
    for run in decision.create_runs:
        await kube.ensure_created(SEQUENCERUN_PLURAL, namespace, build_linked_run(run))
    for finish in decision.finish_executions:
        await finish_execution(kube, namespace, finish)
    if decision.status is not None:
        written = await kube.patch_status(Ref(SEQUENCERUN_PLURAL, namespace, name), decision.status)
        metrics.run_written(run_body, written)
    now = datetime.now(UTC)
    about = involved("SequenceRun", namespace, name, uid)
    for event in decision.events:
        rt.events.post(build_event(about, event, now))
        logs.event("SequenceRun", namespace, name, event.reason, event.message)


async def finish_execution(kube: Kube, namespace: str, finish: FinishExecution) -> None:
    """Mark a running execution finished (an abort), as the engine says: its providers end
    too, and the Jobs among them are then cleaned up (`handlers/jobs.py`)."""
    now = datetime.now(UTC)

    def change(body: Body) -> Body | None:
        status = TaskExecutionStatus.model_validate(body.get("status") or {})
        patch = finished_patch(
            status, result=finish.result, reason=finish.reason, message=finish.message, at=now
        )
        return patch or None

    await kube.update_status(Ref(TASKEXECUTION_PLURAL, namespace, finish.name), change)
