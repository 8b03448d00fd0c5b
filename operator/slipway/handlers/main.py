"""The one module that registers every kopf handler of the operator.

Each handler is a few lines that delegate to a module beside this one; business rules live in
`slipway.engine`. `configure` is the single place where kopf's settings are chosen.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from slipway.api.taskprovider import TaskProviderSpec
from slipway.constants import (
    ANNOTATION_PREFIX,
    FINALIZER,
    GROUP,
    LABEL_RUN,
    SEQUENCERUN_PLURAL,
    SHIPYARD_PLURAL,
    TASKEXECUTION_PLURAL,
    TASKPROVIDER_PLURAL,
    VERSION,
)
from slipway.handlers import executions, jobs, runs, shipyards
from slipway.handlers.supervisor import Supervisor
from slipway.providers.job import JobWatch


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    """Every kopf setting the operator changes, each with its reason."""
    # Watching one namespace needs no discovery of namespaces or CRDs, and then needs no
    # right to list namespaces (without it kopf would retry for a minute before starting).
    if memo.settings.namespace:
        settings.scanning.disabled = True
    # Our own finalizer name, so `kubectl get -o yaml` says whose it is.
    settings.persistence.finalizer = FINALIZER
    # Keep kopf's bookkeeping under our own prefix, not kopf.zalando.org/…, so it never
    # collides with another kopf operator watching the same objects.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    # Ask the API server to end each watch after 5 minutes and give the client a little
    # longer: a silently dropped connection is noticed within minutes, not never.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    # Only warnings and errors from kopf become Kubernetes Events; the operator posts its
    # own Events for every run transition, so kopf's per-handler chatter would be noise.
    settings.posting.level = logging.WARNING
    # Bound every API call so a hung connection cannot stall a handler forever.
    settings.networking.request_timeout = 60


# Handlers are `async def` even where they await nothing: kopf runs plain functions in a
# thread pool, a thread hop per watch event, and asyncio objects must not be touched there.


# ------------------------------------------------------------------ indexes (kept by kopf
# from its watches, rebuilt after a restart: what the workers read instead of listing)
@kopf.index(GROUP, VERSION, SHIPYARD_PLURAL)
async def shipyards_by_name(namespace: Any, name: Any, spec: Any, **_: Any) -> Any:
    return {(namespace, name): dict(spec)}


@kopf.index(GROUP, VERSION, TASKPROVIDER_PLURAL)
async def providers_by_task(namespace: Any, name: Any, spec: Any, **_: Any) -> Any:
    return {(namespace, spec.get("task")): (name, dict(spec))}


@kopf.index(GROUP, VERSION, TASKEXECUTION_PLURAL)
async def executions_by_run(namespace: Any, name: Any, spec: Any, status: Any, **_: Any) -> Any:
    return {(namespace, spec.get("run")): (name, dict(status))}


# ------------------------------------------------------------------ workers and wake-ups
# Every watch event of a run or an execution hands its body to the supervisor, which starts
# the object's worker while it runs; events also wake the workers that depend on the object.
@kopf.on.startup()
async def supervisor(memo: Any, **_: Any) -> None:
    """One supervisor for the process's workers."""
    memo.supervisor = Supervisor()


@kopf.on.cleanup()
async def stop_workers(memo: Any, **_: Any) -> None:
    await memo.supervisor.stop()


@kopf.on.event(GROUP, VERSION, SEQUENCERUN_PLURAL)
async def run_changed(namespace: Any, name: Any, body: Any, memo: Any, **kwargs: Any) -> None:
    key = (SEQUENCERUN_PLURAL, namespace, name)
    if kwargs["type"] == "DELETED":
        memo.supervisor.gone(key)
        return

    def worker() -> Any:
        return runs.run_worker(
            memo.kube,
            memo.wakeups,
            namespace,
            name,
            lambda: memo.supervisor.latest(key),
            kwargs["shipyards_by_name"],
            kwargs["executions_by_run"],
            kwargs["logger"],
        )

    memo.supervisor.observe(key, body, _running(body.get("status")), worker)
    memo.wakeups.wake(key)


@kopf.on.event(GROUP, VERSION, TASKEXECUTION_PLURAL)
async def execution_changed(
    namespace: Any, name: Any, spec: Any, body: Any, memo: Any, **kwargs: Any
) -> None:
    key = (TASKEXECUTION_PLURAL, namespace, name)
    memo.wakeups.wake((SEQUENCERUN_PLURAL, namespace, spec.get("run")))
    if kwargs["type"] == "DELETED":
        memo.supervisor.gone(key)
        return

    def worker() -> Any:
        return executions.execution_worker(
            memo.dispatch,
            memo.wakeups,
            namespace,
            name,
            lambda: memo.supervisor.latest(key),
            kwargs["providers_by_task"],
            kwargs["logger"],
        )

    memo.supervisor.observe(key, body, _running(body.get("status")), worker)
    memo.wakeups.wake(key)


@kopf.on.event(GROUP, VERSION, TASKPROVIDER_PLURAL)
async def provider_changed(namespace: Any, memo: Any, **_: Any) -> None:
    memo.wakeups.wake_all(TASKEXECUTION_PLURAL, namespace)


@kopf.on.event(GROUP, VERSION, SHIPYARD_PLURAL)
async def shipyard_changed(namespace: Any, memo: Any, **_: Any) -> None:
    memo.wakeups.wake_all(SEQUENCERUN_PLURAL, namespace)


# ------------------------------------------------------------------ the work
@kopf.on.create(GROUP, VERSION, SHIPYARD_PLURAL)
@kopf.on.update(GROUP, VERSION, SHIPYARD_PLURAL, field="spec")
@kopf.on.resume(GROUP, VERSION, SHIPYARD_PLURAL)
async def shipyard_ready(body: Any, patch: kopf.Patch, **_: Any) -> None:
    shipyards.check(body, patch)


def _running(status: Any) -> bool:
    return bool((status or {}).get("phase") != "Finished")


@kopf.on.create(GROUP, VERSION, TASKPROVIDER_PLURAL)
@kopf.on.update(GROUP, VERSION, TASKPROVIDER_PLURAL, field="spec")
@kopf.on.resume(GROUP, VERSION, TASKPROVIDER_PLURAL)
async def provider_kind(spec: Any, patch: kopf.Patch, **_: Any) -> None:
    """Record which kind of provider this is, for the KIND column of `kubectl get`."""
    try:
        patch.status["kind"] = TaskProviderSpec.model_validate(dict(spec)).kind.value
    except ValueError as error:  # retrying cannot fix an invalid spec
        raise kopf.PermanentError(str(error)) from error


# ------------------------------------------------------------------ Jobs of job providers
# Slipway's Jobs and their Pods carry the run label. kopf keeps both, reduced to what the
# outcome needs, in indexes; every event of either records the attempt's `.started` or
# `.finished` without reading the API (see `handlers/jobs.py`).
@kopf.on.startup()
async def job_watch(memo: Any, **_: Any) -> None:
    """One JobWatch for the process: what it recorded is remembered across all Jobs."""
    memo.job_watch = JobWatch(memo.kube)


@kopf.index("batch", "v1", "jobs", labels={LABEL_RUN: kopf.PRESENT})
async def slipway_jobs(namespace: Any, name: Any, body: Any, **_: Any) -> Any:
    return jobs.index_job(namespace, name, body)


@kopf.index("v1", "pods", labels={LABEL_RUN: kopf.PRESENT})
async def slipway_job_pods(namespace: Any, body: Any, **_: Any) -> Any:
    return jobs.index_pod(namespace, body)


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_RUN: kopf.PRESENT})
async def job_event(namespace: Any, name: Any, body: Any, memo: Any, **kwargs: Any) -> None:
    await jobs.job_changed(
        memo.job_watch, kwargs["type"], namespace, name, body, kwargs["slipway_job_pods"]
    )


@kopf.on.event("v1", "pods", labels={LABEL_RUN: kopf.PRESENT})
async def job_pod_event(namespace: Any, body: Any, memo: Any, **kwargs: Any) -> None:
    await jobs.pod_changed(
        memo.job_watch, namespace, body, kwargs["slipway_jobs"], kwargs["slipway_job_pods"]
    )


@kopf.on.event(GROUP, VERSION, TASKEXECUTION_PLURAL, when=lambda status, **_: not _running(status))
async def finished_execution_jobs(body: Any, memo: Any, **kwargs: Any) -> None:
    await jobs.execution_finished(
        memo.kube, body, kwargs["slipway_jobs"], kwargs["slipway_job_pods"]
    )
