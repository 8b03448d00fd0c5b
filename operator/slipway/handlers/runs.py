"""A SequenceRun's worker: ask the engine what to do, do it, sleep until something changes.

The run is read fresh from the API server on every turn (never from memory), its Shipyard
and TaskExecutions come from kopf's indexes, and `decide_run` says what to do. This module
only carries the decision out, in the order that keeps a crash harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, cast

import kopf

from slipway import faults
from slipway.api.sequencerun import SequenceRunSpec, SequenceRunStatus
from slipway.api.shipyard import ShipyardSpec
from slipway.api.taskexecution import TaskExecutionStatus
from slipway.constants import (
    API_VERSION,
    SEQUENCERUN_PLURAL,
    SHIPYARD_PLURAL,
    TASKEXECUTION_PLURAL,
)
from slipway.engine.decisions import FinishExecution, RunDecision
from slipway.engine.responses import finish_execution as finished_patch
from slipway.engine.runs import RunView, decide_run
from slipway.handlers.wakeups import Wakeups
from slipway.kube.client import Kube, Ref, newest

Body = dict[str, Any]


def run_view(body: Body) -> RunView:
    """The engine's view of a SequenceRun object."""
    meta = body["metadata"]
    return RunView(
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta["uid"],
        created=datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00")),
        labels=meta.get("labels") or {},
        annotations=meta.get("annotations") or {},
        spec=SequenceRunSpec.model_validate(body.get("spec") or {}),
        status=SequenceRunStatus.model_validate(body.get("status") or {}),
    )


def executions_of(entries: Iterable[tuple[str, Body]]) -> dict[str, TaskExecutionStatus]:
    """The run's TaskExecutions (from the index) as the engine wants them."""
    return {name: TaskExecutionStatus.model_validate(status or {}) for name, status in entries}


async def run_worker(
    kube: Kube,
    wakeups: Wakeups,
    namespace: str,
    name: str,
    live: Callable[[], Body | None],
    shipyards: Any,
    executions: Any,
    logger: logging.Logger | kopf.ObjectLogger,
) -> None:
    """Drive one run until it is finished (cancelled when the object is deleted or the
    operator stops).

    `live()` is the run as its watch last delivered it; the worker's own last write is used
    instead while the watch has not delivered it yet, so no turn reads the API."""
    key = (SEQUENCERUN_PLURAL, namespace, name)
    wakeups.register(key)
    written: Body | None = None
    try:
        while True:
            body = newest(live(), written)
            if body is None:
                return
            view = run_view(body)
            shipyard = await find_shipyard(kube, shipyards, namespace, view.spec.shipyard)
            decision = decide_run(
                view,
                shipyard,
                executions_of(executions.get((namespace, name), [])),
                datetime.now(UTC),
            )
            written = await perform(kube, body, decision, logger) or written
            if decision.finished:
                return
            await wakeups.sleep(key, decision.wake_at)
    finally:
        wakeups.forget(key)


async def find_shipyard(kube: Kube, index: Any, namespace: str, name: str) -> ShipyardSpec | None:
    """The run's Shipyard from kopf's index; when the index does not have it, from the API:
    Shipyards and runs arrive on separate watches, so a run applied together with its
    Shipyard can be seen first, and must not be judged Invalid for that."""
    found = list(index.get((namespace, name), []))
    if found:
        return ShipyardSpec.model_validate(found[0])
    body = await kube.get(Ref(SHIPYARD_PLURAL, namespace, name))
    return ShipyardSpec.model_validate(body["spec"]) if body else None


async def perform(
    kube: Kube, body: Body, decision: RunDecision, logger: logging.Logger | kopf.ObjectLogger
) -> Body | None:
    """Carry out a run decision: children first, then the status that records them.
    Returns the run as written (None when its status did not change)."""
    meta = body["metadata"]
    namespace = meta["namespace"]
    owner = {
        "apiVersion": API_VERSION,
        "kind": "SequenceRun",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    for new in decision.create_executions:
        created = await kube.ensure_created(
            TASKEXECUTION_PLURAL,
            namespace,
            {
                "apiVersion": API_VERSION,
                "kind": "TaskExecution",
                "metadata": {"name": new.name, "labels": new.labels, "ownerReferences": [owner]},
                "spec": new.spec.to_wire(),
            },
        )
        logger.info("TaskExecution %s %s", new.name, "created" if created else "already existed")
        faults.reach("after-execution-created")
    for run in decision.create_runs:
        await kube.ensure_created(
            SEQUENCERUN_PLURAL,
            namespace,
            {
                "apiVersion": API_VERSION,
                "kind": "SequenceRun",
                "metadata": {
                    "name": run.name,
                    "labels": run.labels,
                    "annotations": run.annotations,
                },
                "spec": run.spec.to_wire(),
            },
        )
        logger.info("linked SequenceRun %s started", run.name)
    for finish in decision.finish_executions:
        await finish_execution(kube, namespace, finish)
    written = None
    if decision.status is not None:
        written = await kube.patch_status(
            Ref(SEQUENCERUN_PLURAL, namespace, meta["name"]), decision.status
        )
    for event in decision.events:
        kopf.event(
            cast(kopf.Body, body), type=event.type, reason=event.reason, message=event.message
        )
    return written


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
