"""Job providers: each attempt of a task runs as a Kubernetes Job.

- `start_job` creates the attempt's Job (deterministic name, 409 = already there) and records
  its name in the provider's entry of the TaskExecution's status;
- `JobWatch.observe` turns what a Job and its Pods say (`job_outcome`) into the provider's
  `.started`/`.finished`, through the same rules as a tool's callback (`record_response`);
  a `.finished` the container already sent through the callback wins (the later report is
  refused with 409 and ignored);
- `delete_jobs` deletes the still-running Jobs of providers the engine ended (abort,
  timeout, before a retry), with their Pods; a Job whose work is over is kept for its logs
  until `ttlSecondsAfterFinished`.

The Job manifest is built by `job_manifest.build_job` (which also says why retries are the
engine's attempts, one Job each, and never Job-level retries); the verdict by `job_outcome`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from slipway.api.common import Reason, Result, parse_duration
from slipway.api.taskexecution import TaskExecutionStatus
from slipway.api.taskprovider import TaskProviderSpec
from slipway.constants import LABEL_TASK, TASKEXECUTION_PLURAL
from slipway.engine.decisions import Trigger
from slipway.engine.executions import ResponseRejectedError
from slipway.engine.job_manifest import (
    ANNOTATION_EXECUTION,
    ANNOTATION_PROVIDER,
    ANNOTATION_TRIGGERED_ID,
    build_job,
    job_annotations,
    job_labels,
    job_name,
    jobs_to_clean_up,
)
from slipway.engine.objects import callback_secret_name
from slipway.engine.patches import status_patch
from slipway.events import (
    SLIPWAYTOKEN,
    ResponsePhase,
    TaskResponse,
    to_json,
)
from slipway.events import callback_url as make_callback_url
from slipway.kube.client import Kube, Ref
from slipway.kube.errors import KubeError
from slipway.kube.tokens import TOKEN_KEY, ensure_job_token
from slipway.providers.context import build_triggered
from slipway.providers.job_outcome import JobOutcome, job_ended, job_outcome, pods_done
from slipway.providers.responses import record_failure, record_response

if TYPE_CHECKING:
    from slipway.providers.context import DispatchContext, ExecutionRef

log = logging.getLogger(__name__)

#: `source` of the `.started`/`.finished` responses read from Jobs (a URI reference).
JOB_SOURCE = "slipway.dev/operator/jobs"
#: Deleting a Job deletes it at once; the garbage collector then deletes its Pods (owned by
#: the Job). Nothing waits for the Pods' graceful termination.
PROPAGATION = "Background"
#: The label the Job controller puts on a Job's Pods: the Job's uid.
JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"


# ---------------------------------------------------------------------------- start
async def start_job(
    ctx: DispatchContext, execution: ExecutionRef, provider: TaskProviderSpec, order: Trigger
) -> None:
    """Run attempt `order.attempt` of job provider `order.provider` for `execution`.

    Idempotent: the Job's name comes from the execution, provider and attempt, so a trigger
    sent again (after an operator restart) finds the Job it created before. A template the
    API server refuses, or a Job of that name left by an earlier execution of the same name,
    finishes the provider with `fail` and the reason. Other API errors raise KubeError.
    """
    if provider.job is None:
        raise ValueError(f"TaskProvider {order.provider} is not a job provider")
    kube, namespace, spec = ctx.kube, execution.namespace, execution.spec
    name = job_name(execution.name, order.provider, order.attempt)
    token = execution.token(ctx.key)
    await ensure_job_token(kube, namespace, execution.name, execution.uid, spec.run, token)
    timeout = (
        math.ceil(parse_duration(spec.task.timeout).total_seconds()) if spec.task.timeout else None
    )
    event = triggered_event_json(ctx, execution, order)
    try:
        body = build_job(
            provider.job.template,
            name=name,
            execution=execution.name,
            execution_uid=execution.uid,
            labels=job_labels(spec),
            annotations=job_annotations(
                execution.name, order.provider, order.attempt, order.triggered_id
            ),
            event=event,
            callback_url=make_callback_url(ctx.gateway_url, namespace),
            token_secret=callback_secret_name(execution.name),
            token_key=TOKEN_KEY,
            timeout_seconds=timeout,
        )
        await kube.create_job(namespace, body)
    except ValueError as error:
        await _fail(ctx, execution, order, f"TaskProvider {order.provider}: {error}")
        return
    except KubeError as error:
        if error.invalid:
            await _fail(
                ctx, execution, order, f"the API server refused Job {name}: {error.message}"
            )
            return
        if not error.conflict:
            raise
        owner = await _job_owner_uid(kube, namespace, name)
        if owner not in (None, execution.uid):
            await _fail(
                ctx,
                execution,
                order,
                f"Job {name} of an earlier TaskExecution named {execution.name} still exists "
                "(it is deleted with that execution); run the task again",
            )
            return
    await record_job_name(kube, namespace, execution.name, order.triggered_id, name)


def triggered_event_json(ctx: DispatchContext, execution: ExecutionRef, order: Trigger) -> str:
    """The `.triggered` event for the container's `SLIPWAY_EVENT`, as structured JSON, without
    its `slipwaytoken` attribute: the Job's spec is readable by anyone who may read Jobs, so
    the token reaches the container from its Secret only (`SLIPWAY_CALLBACK_TOKEN`)."""
    event = build_triggered(ctx, execution, order)
    structured = json.loads(to_json(event))
    structured.pop(SLIPWAYTOKEN, None)
    return json.dumps(structured, separators=(",", ":"))


async def record_job_name(
    kube: Kube, namespace: str, execution: str, triggered_id: str, job: str
) -> None:
    """Write `job` into the provider entry answering `triggered_id` (nothing when that entry
    is gone, e.g. a newer attempt started, or already names it)."""

    def change(body: dict[str, Any]) -> dict[str, Any] | None:
        status = TaskExecutionStatus.model_validate(body.get("status") or {})
        new = status.copied()
        record = next((p for p in new.providers if p.triggered_id == triggered_id), None)
        if record is None or record.job == job:
            return None
        record.job = job
        return status_patch(status, new) or None

    await kube.update_status(Ref(TASKEXECUTION_PLURAL, namespace, execution), change)


async def _fail(ctx: DispatchContext, execution: ExecutionRef, order: Trigger, why: str) -> None:
    log.warning("%s: %s", execution.name, why)
    await record_failure(
        ctx.kube,
        execution.namespace,
        execution.name,
        provider=order.provider,
        triggered_id=order.triggered_id,
        reason=Reason.FAILED,
        message=why,
    )


async def _job_owner_uid(kube: Kube, namespace: str, name: str) -> str | None:
    """The uid of the TaskExecution owning Job `name` (None: no such Job or no owner)."""
    job = await kube.read_job(namespace, name)
    for ref in ((job or {}).get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "TaskExecution" and ref.get("controller"):
            return str(ref.get("uid"))
    return None


# ---------------------------------------------------------------------------- delete
async def delete_jobs(
    ctx: DispatchContext,
    execution: ExecutionRef,
    providers: Collection[str],
    status: TaskExecutionStatus,
) -> None:
    """Delete the Jobs still running for `providers` of `execution` (their entries in
    `status`, the status the engine just wrote: abort, timeout, or the failed attempt before a
    retry), with their Pods. A Job that already finished is kept (its Pods' logs stay readable
    until `ttlSecondsAfterFinished`); a missing one is fine. Idempotent."""
    for name in jobs_to_clean_up(execution.name, status, providers):
        await delete_running_job(ctx.kube, execution.namespace, name)


async def delete_running_job(kube: Kube, namespace: str, name: str) -> bool:
    """Delete Job `name` and its Pods unless it is being deleted or its work is over (the
    Job finished, or all its Pods terminated and the Job controller has yet to say so). True
    when a deletion was requested now."""
    job = await kube.read_job(namespace, name)
    if job is None:
        return False
    if job_ended(job) or (job.get("metadata") or {}).get("deletionTimestamp"):
        return False
    uid = (job.get("metadata") or {}).get("uid")
    pods = await kube.list_pods(namespace, f"{JOB_UID_LABEL}={uid}")
    if pods_done(pods):
        return False
    return await delete_job(kube, namespace, name)


async def delete_job(kube: Kube, namespace: str, name: str) -> bool:
    """Delete Job `name` with its Pods (404 is fine). True when a deletion was requested."""
    if not await kube.delete_job(namespace, name, PROPAGATION):
        return False
    log.info("deleted Job %s/%s", namespace, name)
    return True


# ---------------------------------------------------------------------------- watch
class JobWatch:
    """Records what Slipway's Jobs say into their TaskExecutions.

    Remembers, in memory only, the last phase it recorded per Job, to skip the API reads of
    repeating it on every Pod or Job event; after a restart it records again, and the engine
    treats a repeat as a no-op (`.started`) or refuses it (`.finished`, 409)."""

    def __init__(self, kube: Kube, max_remembered: int = 10_000) -> None:
        self.kube = kube
        self._recorded: dict[tuple[str, str, str], str] = {}
        self._max = max_remembered

    async def observe(
        self,
        job: Mapping[str, Any],
        pods: Sequence[Mapping[str, Any]],
        *,
        deleted: bool = False,
    ) -> JobOutcome | None:
        """Record the outcome of `job` (a Job dict; `pods`: its Pods) if it changed. A Job
        `deleted` before it finished fails its provider. Returns the outcome (None: not a Job
        of Slipway's). Raises KubeError on API errors other than a refused response."""
        meta = job.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        execution = annotations.get(ANNOTATION_EXECUTION)
        provider = annotations.get(ANNOTATION_PROVIDER)
        triggered_id = annotations.get(ANNOTATION_TRIGGERED_ID)
        namespace, name = meta.get("namespace"), meta.get("name")
        if not (execution and provider and triggered_id and namespace and name):
            return None
        key = (namespace, name, str(meta.get("uid")))
        outcome = job_outcome(job, pods)
        before = self._recorded.pop(key, None) if deleted else self._recorded.get(key)
        if deleted and outcome.phase != "finished":
            outcome = JobOutcome(
                "finished",
                Result.FAIL,
                f"Job {name} was deleted before it finished",
                reason=Reason.FAILED,
            )
        if outcome.phase is None or before in (outcome.phase, "finished"):
            return outcome
        try:
            if outcome.reason is not None:  # not the tool's verdict: the Job's or the Pod's
                await record_failure(
                    self.kube,
                    namespace,
                    execution,
                    provider=provider,
                    triggered_id=triggered_id,
                    reason=outcome.reason,
                    message=outcome.message or f"Job {name} failed",
                )
            else:
                await record_response(
                    self.kube, namespace, execution, _response(meta, triggered_id, outcome)
                )
        except ResponseRejectedError as error:
            # 409: already finished (a callback's `.finished` wins, or the engine ended it);
            # 404: an earlier attempt's Job, or the execution is gone.
            log.debug("%s/%s: %s not recorded: %s", namespace, name, outcome.phase, error)
        if deleted:
            return outcome
        if len(self._recorded) >= self._max:
            self._recorded.clear()
        self._recorded[key] = outcome.phase
        if outcome.stuck:
            await delete_job(self.kube, namespace, name)
        return outcome


def _response(meta: Mapping[str, Any], triggered_id: str, outcome: JobOutcome) -> TaskResponse:
    """The Job's outcome as the tool response it stands for."""
    phase: ResponsePhase = "finished" if outcome.phase == "finished" else "started"
    labels = meta.get("labels") or {}
    return TaskResponse(
        task=str(labels.get(LABEL_TASK, "")),
        phase=phase,
        triggered_id=triggered_id,
        context=None,
        source=JOB_SOURCE,
        id=f"{meta.get('uid')}/{phase}",
        time=outcome.at or datetime.now(UTC),
        message=outcome.message,
        result=outcome.result.value if outcome.result is not None else None,
        status=None,
        result_note=None,
        output=outcome.output,
    )
