"""A SequenceRun's worker: ask the engine what to do, do it, sleep until something changes.

Each turn starts from the newest copy of the run this process has (the watch's, or its own
last write when the watch has not brought that back yet), takes its Shipyard from kopf's
index and its current TaskExecution from the index or this process's last write of it, and
lets `decide_run` say what to do. This module only carries the decision out, in the order
that keeps a crash harmless.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from slipway import faults, logs, metrics
from slipway.api.sequencerun import SequenceRunSpec, SequenceRunStatus
from slipway.api.shipyard import ShipyardSpec
from slipway.api.taskexecution import TaskExecutionStatus
from slipway.constants import SEQUENCERUN_PLURAL, SHIPYARD_PLURAL, TASKEXECUTION_PLURAL
from slipway.engine.decisions import FinishExecution, RunDecision
from slipway.engine.objects import build_event, build_execution, build_linked_run, involved
from slipway.engine.queue import (
    KeyTemplateError,
    admits,
    needs_queue,
    queue_of,
    still_admitted,
    with_admitted,
)
from slipway.engine.responses import finish_execution as finished_patch
from slipway.engine.runs import RunView, current_execution, decide_run
from slipway.handlers import queue
from slipway.handlers.executions import SpecCache, start_execution
from slipway.handlers.indexes import ExecutionIndex, ProviderIndex, ShipyardIndex, version_of
from slipway.handlers.refused import finish_refused, refused
from slipway.handlers.runtime import Runtime
from slipway.kube.client import Fence, Kube, Ref, newest
from slipway.kube.errors import KubeError

Body = dict[str, Any]

log = logging.getLogger(__name__)

#: How long a run's worker waits for the watch after its status write met a newer version.
CONFLICT_WAIT = timedelta(seconds=1)


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
    # Which replica works which run, in the log: with several replicas, the first place
    # to look when following a run (docs/scaling.md).
    log.info("run %s/%s: worker started on %s", namespace, name, rt.membership.identity)
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
                        decision = await admission(rt, view, shipyard, known, shipyards)
                        await perform(rt, body, decision, providers)
                else:
                    decision = decide_run(view, shipyard, known, datetime.now(UTC), (), limits)
                    await perform(rt, body, decision, providers)
                    await release_slot(rt, view, decision)
            except KubeError as error:
                if error.conflict:
                    # Another replica wrote the run since the copy this decision was made
                    # from (a hand-over): the watch brings the newer copy; decide again.
                    await rt.wakeups.sleep(key, datetime.now(UTC) + CONFLICT_WAIT)
                    continue
                if not refused(error):
                    raise
                await finish_refused(rt.kube, ref, error, ("data", "tasks"))
                return
            if decision.finished:
                rt.supervisor.finished(key, body)
                rt.kube.forget(ref)  # keep no copy of a finished run's (possibly large) body
                return
            await rt.wakeups.sleep(key, decision.wake_at)
    finally:
        rt.wakeups.forget(key)


async def admission(
    rt: Runtime,
    view: RunView,
    shipyard: ShipyardSpec | None,
    known: dict[str, TaskExecutionStatus],
    shipyards: ShipyardIndex,
) -> RunDecision:
    """The decision for a run that waits for its queue, with its admission recorded in the
    queue's shared record first when it is admitted (`handlers/queue.py`). KubeError 409
    when another replica wrote that record since it was read: decide again."""
    namespace, name = view.namespace, view.name
    try:
        slot = queue_of(view.spec, shipyard)
    except KeyTemplateError:
        slot = None  # the decision finishes the run Invalid
    record = None
    if slot is not None:
        record = await rt.queues.read(namespace, view.spec.shipyard, slot.key)
    # Listed after the record was read: a run recorded there and missing here was deleted.
    others = await queue.members(rt.kube, namespace, shipyards)
    if record is not None and slot is not None:
        others = with_admitted(others, record.admitted, slot.key, name)
    limits = rt.dispatch.data_limits
    decision = decide_run(view, shipyard, known, datetime.now(UTC), others, limits)
    recorded = record is not None and name in record.admitted
    if record is not None and not recorded and admits(view.status.phase, decision.status):
        rt.membership.check(namespace, name)  # the fence, as before any write for a run
        await rt.queues.admit(record, name, still_admitted(record.admitted, others))
    return decision


async def release_slot(rt: Runtime, view: RunView, decision: RunDecision) -> None:
    """A run of a queue that this decision finished leaves its queue's record. Best effort:
    a finished run left on the record holds nothing (the next admission drops it)."""
    held = view.status.queue
    if held is None or not decision.status or decision.status.get("phase") != "Finished":
        return
    try:
        await rt.queues.release(view.namespace, view.spec.shipyard, held.key, view.name)
    except KubeError as error:
        log.debug("run %s/%s: leaving queue record: %s", view.namespace, view.name, error)


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
    version = meta.get("resourceVersion")
    kube = rt.kube
    run_body = body
    fence = rt.membership.fence(namespace, name)
    for new in decision.create_executions:
        child = build_execution(new, name, uid)
        created = await kube.ensure_created(TASKEXECUTION_PLURAL, namespace, child, fence)
        faults.reach("after-execution-created")
        if created is not None and providers is not None:
            # Its worker starts now, not when the watch brings the new object back.
            start_execution(rt, created, providers)
    for run in decision.create_runs:
        await kube.ensure_created(SEQUENCERUN_PLURAL, namespace, build_linked_run(run), fence)
    for finish in decision.finish_executions:
        await finish_execution(kube, namespace, finish, fence)
    if decision.status is not None:
        # With the version decided from (CAS): a replica that lost the run meanwhile
        # cannot write over its new owner's progress.
        ref = Ref(SEQUENCERUN_PLURAL, namespace, name)
        written = await kube.patch_status(ref, decision.status, version=version, fence=fence)
        metrics.run_written(run_body, written)
    now = datetime.now(UTC)
    about = involved("SequenceRun", namespace, name, uid)
    for event in decision.events:
        rt.events.post(build_event(about, event, now))
        logs.event("SequenceRun", namespace, name, event.reason, event.message)


async def finish_execution(
    kube: Kube, namespace: str, finish: FinishExecution, fence: Fence | None = None
) -> None:
    """Mark a running execution finished (an abort), as the engine says: its providers end
    too, and the Jobs among them are then cleaned up (`handlers/jobs.py`)."""
    now = datetime.now(UTC)

    def change(body: Body) -> Body | None:
        status = TaskExecutionStatus.model_validate(body.get("status") or {})
        patch = finished_patch(
            status, result=finish.result, reason=finish.reason, message=finish.message, at=now
        )
        return patch or None

    await kube.update_status(Ref(TASKEXECUTION_PLURAL, namespace, finish.name), change, fence=fence)
