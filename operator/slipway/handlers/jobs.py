"""Follow the Jobs that run job providers, and their Pods.

kopf keeps two in-memory indexes from its watches (rebuilt after a restart before any handler
runs): Slipway's Jobs by (namespace, name) and their Pods by (namespace, Job name), each
reduced to what `job_outcome` reads. Every event of a Job or of one of its Pods then asks
`JobWatch.observe` what the attempt's state is, with no API read of Jobs or Pods.

A TaskExecution that finishes while a Job of it still runs (its run was aborted) is finished
by its run, not by its own worker, which stops at once: `execution_finished` deletes those
Jobs, and does the same for any finished execution after an operator restart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from slipway.api.common import Phase
from slipway.engine.executions import decide_execution
from slipway.engine.job_manifest import ANNOTATION_TRIGGERED_ID, jobs_to_clean_up
from slipway.events import task_triggered_id
from slipway.handlers.executions import execution_view
from slipway.kube.client import Kube
from slipway.providers.job import JobWatch, delete_job
from slipway.providers.job_outcome import job_ended, job_view, owner_job, pod_view, pods_done

Key = tuple[str, str]
Body = Mapping[str, Any]


def index_job(namespace: str, name: str, body: Body) -> dict[Key, dict[str, Any]] | None:
    """Index entry of a Job of Slipway's (None: not one)."""
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    if ANNOTATION_TRIGGERED_ID not in annotations:
        return None
    return {(namespace, name): job_view(body)}


def index_pod(namespace: str, body: Body) -> dict[Key, dict[str, Any]] | None:
    """Index entry of a Pod run by a Job (None: no Job controls it)."""
    job = owner_job(body)
    if job is None:
        return None
    return {(namespace, job): pod_view(body)}


async def job_changed(
    watch: JobWatch,
    event_type: str | None,
    namespace: str,
    name: str,
    body: Body,
    pods: Mapping[Key, Iterable[Mapping[str, Any]]],
) -> None:
    """A Job was added, changed or deleted."""
    await watch.observe(
        job_view(body), list(pods.get((namespace, name), [])), deleted=event_type == "DELETED"
    )


async def pod_changed(
    watch: JobWatch,
    namespace: str,
    body: Body,
    jobs: Mapping[Key, Iterable[Mapping[str, Any]]],
    pods: Mapping[Key, Iterable[Mapping[str, Any]]],
) -> None:
    """A Pod of a Job changed (or went): its Job's state may have changed too."""
    job = owner_job(body)
    if job is None:
        return
    # A copy: kopf's index changes while this awaits (seen with a real kubelet's pace).
    for known in list(jobs.get((namespace, job), [])):
        await watch.observe(known, list(pods.get((namespace, job), [])))


async def execution_finished(
    kube: Kube,
    body: Body,
    jobs: Mapping[Key, Iterable[Mapping[str, Any]]],
    pods: Mapping[Key, Iterable[Mapping[str, Any]]],
) -> list[str]:
    """Delete the Jobs still running for a finished TaskExecution's providers that never
    finished or that the engine ended (the engine's `cleanup` of a finished execution).
    Only Jobs in the index are looked at: no API read. Returns the Jobs deleted."""
    view = execution_view(dict(body))
    if view.status.phase != Phase.FINISHED:
        return []
    decision = decide_execution(
        view,
        [],
        datetime.now(UTC),
        lambda provider, attempt: task_triggered_id(view.namespace, view.name, provider, attempt),
    )
    deleted = []
    for name in jobs_to_clean_up(view.name, view.status, decision.cleanup):
        key = (view.namespace, name)
        running = [
            job
            for job in jobs.get(key, [])
            if not job_ended(job) and not (job.get("metadata") or {}).get("deletionTimestamp")
        ]
        if running and not pods_done(list(pods.get(key, []))):
            await delete_job(kube, view.namespace, name)
            deleted.append(name)
    return deleted
