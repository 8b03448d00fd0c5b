"""The one module that registers every kopf handler of the operator.

Each handler is a few lines that delegate to a module beside this one; business rules live in
`slipway.engine`. `configure` is the single place where kopf's settings are chosen. Every
handler has an explicit `id=` (kopf would otherwise derive one from the function's name and
record progress under it, so a rename would look like a new handler to a running cluster),
and its arguments are typed: `memo` is the process's `Runtime`.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from slipway.api.shipyard import ShipyardSpec
from slipway.api.taskprovider import TaskProviderSpec
from slipway.constants import (
    ANNOTATION_PREFIX,
    GROUP,
    LABEL_RUN,
    SEQUENCERUN_PLURAL,
    SHIPYARD_PLURAL,
    TASKEXECUTION_PLURAL,
    TASKPROVIDER_PLURAL,
    VERSION,
)
from slipway.handlers import executions, jobs, queue, runs, shipyards
from slipway.handlers.diffbase import EventOnlyDiffBaseStorage
from slipway.handlers.indexes import (
    JobIndex,
    PodIndex,
    ProviderIndex,
    ShipyardIndex,
    execution_entry,
    finished_with_jobs,
    parsed_provider,
    parsed_shipyard,
    running,
)
from slipway.handlers.runtime import Runtime


@kopf.on.startup(id="configure")
async def configure(settings: kopf.OperatorSettings, memo: Runtime, **_: Any) -> None:
    """Every kopf setting the operator changes, each with its reason."""
    # Watching one namespace needs no discovery of namespaces or CRDs, and then needs no
    # right to list namespaces (without it kopf would retry for a minute before starting).
    if memo.settings.namespace:
        settings.scanning.disabled = True
    # Keep kopf's bookkeeping under our own prefix, not kopf.zalando.org/…, so it never
    # collides with another kopf operator watching the same objects. (No handler here needs
    # a finalizer: the workers are started from watch events, not kopf daemons.)
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    # …and no copy of each run, execution, Job or Pod at each watch event for change
    # detection that no handler of theirs uses (`handlers/diffbase.py`).
    settings.persistence.diffbase_storage = EventOnlyDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    # Ask the API server to end each watch after 5 minutes and give the client a little
    # longer: a silently dropped connection is noticed within minutes, not never.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    # Only warnings and errors from kopf become Kubernetes Events; the operator posts its
    # own Events (run started and finished, failures), so kopf's chatter would be noise.
    settings.posting.level = logging.WARNING
    # Bound every API call so a hung connection cannot stall a handler forever.
    settings.networking.request_timeout = 60


# Handlers are `async def` even where they await nothing: kopf runs plain functions in a
# thread pool, a thread hop per watch event, and asyncio objects must not be touched there.


# ------------------------------------------------------------------ indexes (kept by kopf
# from its watches, rebuilt after a restart: what the workers read instead of listing)
@kopf.index(GROUP, VERSION, SHIPYARD_PLURAL, id="shipyards_by_name")
async def shipyards_by_name(
    namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], ShipyardSpec | dict[str, Any]]:
    namespace = namespace or ""  # namespaced kinds only: always set
    return {(namespace, name): parsed_shipyard(spec)}


@kopf.index(GROUP, VERSION, TASKPROVIDER_PLURAL, id="providers_by_task")
async def providers_by_task(
    namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], tuple[str, TaskProviderSpec | dict[str, Any]]]:
    namespace = namespace or ""  # namespaced kinds only: always set
    return {(namespace, str(spec.get("task"))): (name, parsed_provider(spec))}


# ------------------------------------------------------------------ workers and wake-ups
# Every watch event of a run or an execution hands its body to the supervisor, which starts
# the object's worker while it runs; events also wake the workers that depend on the object.
@kopf.on.cleanup(id="stop_workers")
async def stop_workers(memo: Runtime, **_: Any) -> None:
    await memo.supervisor.stop()
    await memo.events.stop()


@kopf.on.startup(id="history_cleanup")
async def history_cleanup(memo: Runtime, **_: Any) -> None:
    """The history clean-up loop (`handlers/retention.py`)."""
    memo.retention.start()


@kopf.on.cleanup(id="stop_history_cleanup")
async def stop_history_cleanup(memo: Runtime, **_: Any) -> None:
    await memo.retention.stop()


@kopf.on.event(GROUP, VERSION, SEQUENCERUN_PLURAL, id="run_changed")
async def run_changed(
    namespace: str | None,
    name: str,
    body: kopf.Body,
    type: str,
    memo: Runtime,
    **kwargs: Any,
) -> None:
    namespace = namespace or ""  # namespaced kinds only: always set
    shipyards_by_name: ShipyardIndex = kwargs["shipyards_by_name"]
    providers_by_task: ProviderIndex = kwargs["providers_by_task"]
    key = (SEQUENCERUN_PLURAL, namespace, name)
    if queue.frees_queue(type, body):  # a slot or a place in line frees up
        memo.wakeups.wake_all(SEQUENCERUN_PLURAL, namespace)
    if not running(body.get("status")):  # one more finished run: history may be over limit
        memo.retention.poke()
    if type == "DELETED":
        memo.supervisor.gone(key)
        return

    def worker() -> Any:
        return runs.run_worker(
            memo, namespace, name, shipyards_by_name, memo.executions, providers_by_task
        )

    memo.supervisor.observe(key, body, running(body.get("status")), worker)
    memo.wakeups.wake(key)


@kopf.on.event(GROUP, VERSION, TASKEXECUTION_PLURAL, id="execution_changed")
async def execution_changed(
    namespace: str | None,
    name: str,
    spec: kopf.Spec,
    body: kopf.Body,
    type: str,
    memo: Runtime,
    **kwargs: Any,
) -> None:
    namespace = namespace or ""  # namespaced kinds only: always set
    providers_by_task: ProviderIndex = kwargs["providers_by_task"]
    key = (TASKEXECUTION_PLURAL, namespace, name)
    run = str(spec.get("run"))
    memo.wakeups.wake((SEQUENCERUN_PLURAL, namespace, run))
    if type == "DELETED":
        memo.executions.forget(namespace, run, name)
        memo.supervisor.gone(key)
        return
    memo.executions.note(namespace, run, execution_entry(name, body))
    executions.start_execution(memo, dict(body), providers_by_task)
    if finished_with_jobs(body.get("status")):  # its Jobs may still run: abort, restart
        await jobs.execution_finished(
            memo.kube, body, kwargs["slipway_jobs"], kwargs["slipway_job_pods"]
        )


@kopf.on.event(GROUP, VERSION, TASKPROVIDER_PLURAL, id="provider_changed")
async def provider_changed(namespace: str | None, memo: Runtime, **_: Any) -> None:
    namespace = namespace or ""  # namespaced kinds only: always set
    memo.wakeups.wake_all(TASKEXECUTION_PLURAL, namespace)


@kopf.on.event(GROUP, VERSION, SHIPYARD_PLURAL, id="shipyard_changed")
async def shipyard_changed(namespace: str | None, memo: Runtime, **_: Any) -> None:
    namespace = namespace or ""  # namespaced kinds only: always set
    memo.wakeups.wake_all(SEQUENCERUN_PLURAL, namespace)


# ------------------------------------------------------------------ the work
@kopf.on.create(GROUP, VERSION, SHIPYARD_PLURAL, id="shipyard_ready")
@kopf.on.update(GROUP, VERSION, SHIPYARD_PLURAL, field="spec", id="shipyard_ready")
@kopf.on.resume(GROUP, VERSION, SHIPYARD_PLURAL, id="shipyard_ready")
async def shipyard_ready(body: kopf.Body, patch: kopf.Patch, memo: Runtime, **_: Any) -> None:
    shipyards.check(body, patch, memo.events)


@kopf.on.create(GROUP, VERSION, TASKPROVIDER_PLURAL, id="provider_kind")
@kopf.on.update(GROUP, VERSION, TASKPROVIDER_PLURAL, field="spec", id="provider_kind")
@kopf.on.resume(GROUP, VERSION, TASKPROVIDER_PLURAL, id="provider_kind")
async def provider_kind(spec: kopf.Spec, patch: kopf.Patch, **_: Any) -> None:
    """Record which kind of provider this is, for the KIND column of `kubectl get`."""
    try:
        patch.status["kind"] = TaskProviderSpec.model_validate(dict(spec)).kind.value
    except ValueError as error:  # retrying cannot fix an invalid spec
        raise kopf.PermanentError(str(error)) from error


# ------------------------------------------------------------------ Jobs of job providers
# Slipway's Jobs and their Pods carry the run label. kopf keeps both, reduced to what the
# outcome needs, in indexes; every event of either records the attempt's `.started` or
# `.finished` without reading the API (see `handlers/jobs.py`).
@kopf.index("batch", "v1", "jobs", labels={LABEL_RUN: kopf.PRESENT}, id="slipway_jobs")
async def slipway_jobs(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]] | None:
    namespace = namespace or ""  # namespaced kinds only: always set
    return jobs.index_job(namespace, name, body)


@kopf.index("v1", "pods", labels={LABEL_RUN: kopf.PRESENT}, id="slipway_job_pods")
async def slipway_job_pods(
    namespace: str | None, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]] | None:
    namespace = namespace or ""  # namespaced kinds only: always set
    return jobs.index_pod(namespace, body)


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_RUN: kopf.PRESENT}, id="job_event")
async def job_event(
    namespace: str | None,
    name: str,
    body: kopf.Body,
    type: str,
    memo: Runtime,
    **kwargs: Any,
) -> None:
    namespace = namespace or ""  # namespaced kinds only: always set
    slipway_job_pods: PodIndex = kwargs["slipway_job_pods"]
    await jobs.job_changed(memo.job_watch, type, namespace, name, body, slipway_job_pods)


@kopf.on.event("v1", "pods", labels={LABEL_RUN: kopf.PRESENT}, id="job_pod_event")
async def job_pod_event(
    namespace: str | None,
    body: kopf.Body,
    memo: Runtime,
    **kwargs: Any,
) -> None:
    namespace = namespace or ""  # namespaced kinds only: always set
    slipway_jobs: JobIndex = kwargs["slipway_jobs"]
    slipway_job_pods: PodIndex = kwargs["slipway_job_pods"]
    await jobs.pod_changed(memo.job_watch, namespace, body, slipway_jobs, slipway_job_pods)
