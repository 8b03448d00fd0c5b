"""The Job that runs one attempt of a job provider, built from its Pod template (pure).

Retries: every Job has `backoffLimit: 0` and `restartPolicy: Never`, and a task's `retries`
are the engine's attempts, one Job per attempt. An attempt is what the engine counts, times
and reports: it has its own `.triggered` event id (so a callback from an earlier try is told
apart), its own entry in the TaskExecution's status, the task's `retries.backoff` before it and
the task's `timeout` for it. Pod restarts or Job-level retries would be hidden tries inside
one attempt: they would multiply `retries.limit`, stretch `activeDeadlineSeconds` over several
tries, and replace the termination message that is the attempt's verdict.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Collection, Mapping
from typing import Any, Final

from slipway.api.taskexecution import TaskExecutionSpec, TaskExecutionStatus
from slipway.api.taskprovider import ProviderKind
from slipway.constants import GROUP
from slipway.engine.objects import execution_labels, owner_reference

#: On a Job and its Pods: which TaskExecution, provider and `.triggered` event they serve
#: (annotations, not labels: names may be longer than a label value allows).
ANNOTATION_EXECUTION: Final = f"{GROUP}/execution"
ANNOTATION_PROVIDER: Final = f"{GROUP}/provider"
ANNOTATION_TRIGGERED_ID: Final = f"{GROUP}/triggered-id"
ANNOTATION_ATTEMPT: Final = f"{GROUP}/attempt"

#: The task-tool contract: the environment every container of the Pod gets.
ENV_EVENT: Final = "SLIPWAY_EVENT"
ENV_CALLBACK_URL: Final = "SLIPWAY_CALLBACK_URL"
ENV_CALLBACK_TOKEN: Final = "SLIPWAY_CALLBACK_TOKEN"

#: How long a finished Job (and its Pods, with their logs) is kept. Long enough for an
#: operator that was down when the Job finished to come back and read its result; the Job
#: also goes when its run is deleted.
DEFAULT_TTL_SECONDS: Final = 3600

#: Longest Job name: the Job controller copies it into a label of its Pods (≤ 63 characters).
MAX_JOB_NAME: Final = 63
_HASH_LENGTH: Final = 8


def job_name(execution: str, provider: str, attempt: int) -> str:
    """The Job of `attempt` of `provider` for `execution`: `<execution>-<provider>-<attempt>`,
    the same for the same inputs (a re-sent trigger finds its Job instead of making a twin).
    A longer name is cut to 54 characters and ends with `-` and 8 hex digits of a hash of the
    whole name, so distinct inputs keep distinct names."""
    full = f"{execution}-{provider}-{attempt}"
    if len(full) <= MAX_JOB_NAME:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:_HASH_LENGTH]
    head = full[: MAX_JOB_NAME - _HASH_LENGTH - 1].rstrip("-.")
    return f"{head}-{digest}"


def jobs_to_clean_up(
    execution: str, status: TaskExecutionStatus, providers: Collection[str]
) -> list[str]:
    """The Jobs whose work may still run for `providers` of `execution` (the engine's
    `cleanup`: ended by abort, timeout, or before a retry), by name, from the providers'
    entries in `status`: an entry that was never triggered has none; a provider of another
    kind has none unless its entry names a Job."""
    names = []
    for record in status.providers:
        if record.name not in providers or record.attempt == 0:
            continue
        if record.kind not in (ProviderKind.JOB, None) and record.job is None:
            continue
        names.append(record.job or job_name(execution, record.name, record.attempt))
    return names


def job_labels(spec: TaskExecutionSpec) -> dict[str, str]:
    """Labels of a Job and its Pods: those of its execution (`objects.execution_labels`)."""
    return execution_labels(spec)


def job_annotations(
    execution: str, provider: str, attempt: int, triggered_id: str
) -> dict[str, str]:
    """Annotations of a Job and its Pods: what the watch needs to record their outcome."""
    return {
        ANNOTATION_EXECUTION: execution,
        ANNOTATION_PROVIDER: provider,
        ANNOTATION_TRIGGERED_ID: triggered_id,
        ANNOTATION_ATTEMPT: str(attempt),
    }


def build_job(
    template: Mapping[str, Any],
    *,
    name: str,
    execution: str,
    execution_uid: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    event: str,
    callback_url: str,
    token_secret: str,
    token_key: str,
    timeout_seconds: int | None,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
) -> dict[str, Any]:
    """A batch/v1 Job running `template` (a Pod template: `metadata`, `spec`) for one attempt.

    - metadata: `name`, `labels`, `annotations`, and an owner reference to the TaskExecution
      (controller, blockOwnerDeletion): deleting the execution (or its run) deletes the Job;
    - spec: `backoffLimit: 0` (see the module's docstring), `activeDeadlineSeconds` =
      `timeout_seconds` (None: no deadline), `ttlSecondsAfterFinished` = `ttl_seconds`;
    - Pod: the template's labels and annotations plus ours (ours win: the watch relies on
      them); `restartPolicy: Never`; "restricted" Pod Security defaults for every key the
      template leaves unset: `runAsNonRoot`, `seccompProfile: RuntimeDefault` on the Pod,
      `allowPrivilegeEscalation: false` and `capabilities.drop: [ALL]` on each container;
      `automountServiceAccountToken: false` unless it names a service account;
    - every container and init container: `SLIPWAY_EVENT` = `event` (the `.triggered` event,
      structured JSON), `SLIPWAY_CALLBACK_URL`, `SLIPWAY_CALLBACK_TOKEN` from key `token_key`
      of Secret `token_secret` (replacing template variables of those names), and
      `terminationMessagePolicy: FallbackToLogsOnError` unless it sets a policy.

    `template` is not changed. `ValueError` when it has no `spec.containers`.
    """
    pod: dict[str, Any] = copy.deepcopy(dict(template))
    spec = pod.setdefault("spec", {})
    if not isinstance(spec, dict) or not spec.get("containers"):
        raise ValueError("job.template.spec.containers must list at least one container")
    meta = pod.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
    spec["restartPolicy"] = "Never"
    if "serviceAccountName" not in spec and "serviceAccount" not in spec:
        spec.setdefault("automountServiceAccountToken", False)
    _restricted_pod(spec)
    env = _contract_env(event, callback_url, token_secret, token_key)
    for container in [*spec["containers"], *(spec.get("initContainers") or [])]:
        _prepare_container(container, env)
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": ttl_seconds,
        "template": pod,
    }
    if timeout_seconds is not None:
        job_spec["activeDeadlineSeconds"] = max(1, timeout_seconds)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "labels": dict(labels),
            "annotations": dict(annotations),
            "ownerReferences": [owner_reference("TaskExecution", execution, execution_uid)],
        },
        "spec": job_spec,
    }


def _restricted_pod(spec: dict[str, Any]) -> None:
    context = spec.get("securityContext")
    if not isinstance(context, dict):
        context = spec["securityContext"] = {}
    context.setdefault("runAsNonRoot", True)
    context.setdefault("seccompProfile", {"type": "RuntimeDefault"})


def _prepare_container(container: dict[str, Any], env: list[dict[str, Any]]) -> None:
    context = container.get("securityContext")
    if not isinstance(context, dict):
        context = container["securityContext"] = {}
    context.setdefault("allowPrivilegeEscalation", False)
    capabilities = context.get("capabilities")
    if not isinstance(capabilities, dict):
        capabilities = context["capabilities"] = {}
    capabilities.setdefault("drop", ["ALL"])
    ours = {item["name"] for item in env}
    kept = [item for item in container.get("env") or [] if item.get("name") not in ours]
    container["env"] = [*kept, *copy.deepcopy(env)]
    container.setdefault("terminationMessagePolicy", "FallbackToLogsOnError")


def _contract_env(
    event: str, callback_url: str, token_secret: str, token_key: str
) -> list[dict[str, Any]]:
    return [
        {"name": ENV_EVENT, "value": event},
        {"name": ENV_CALLBACK_URL, "value": callback_url},
        {
            "name": ENV_CALLBACK_TOKEN,
            "valueFrom": {"secretKeyRef": {"name": token_secret, "key": token_key}},
        },
    ]
