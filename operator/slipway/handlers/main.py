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
    SEQUENCERUN_PLURAL,
    SHIPYARD_PLURAL,
    TASKEXECUTION_PLURAL,
    TASKPROVIDER_PLURAL,
    VERSION,
)
from slipway.handlers import executions, runs, shipyards


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Every kopf setting the operator changes, each with its reason."""
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


# ------------------------------------------------------------------ indexes (kept by kopf
# from its watches, rebuilt after a restart: what the daemons read instead of listing)
@kopf.index(GROUP, VERSION, SHIPYARD_PLURAL)
def shipyards_by_name(namespace: Any, name: Any, spec: Any, **_: Any) -> Any:
    return {(namespace, name): dict(spec)}


@kopf.index(GROUP, VERSION, TASKPROVIDER_PLURAL)
def providers_by_task(namespace: Any, name: Any, spec: Any, **_: Any) -> Any:
    return {(namespace, spec.get("task")): (name, dict(spec))}


@kopf.index(GROUP, VERSION, TASKEXECUTION_PLURAL)
def executions_by_run(namespace: Any, name: Any, spec: Any, status: Any, **_: Any) -> Any:
    return {(namespace, spec.get("run")): (name, dict(status))}


# ------------------------------------------------------------------ wake-ups
@kopf.on.event(GROUP, VERSION, SEQUENCERUN_PLURAL)
def run_changed(namespace: Any, name: Any, memo: Any, **_: Any) -> None:
    memo.wakeups.wake((SEQUENCERUN_PLURAL, namespace, name))


@kopf.on.event(GROUP, VERSION, TASKEXECUTION_PLURAL)
def execution_changed(namespace: Any, name: Any, spec: Any, memo: Any, **_: Any) -> None:
    memo.wakeups.wake((TASKEXECUTION_PLURAL, namespace, name))
    memo.wakeups.wake((SEQUENCERUN_PLURAL, namespace, spec.get("run")))


@kopf.on.event(GROUP, VERSION, TASKPROVIDER_PLURAL)
def provider_changed(namespace: Any, memo: Any, **_: Any) -> None:
    memo.wakeups.wake_all(TASKEXECUTION_PLURAL, namespace)


@kopf.on.event(GROUP, VERSION, SHIPYARD_PLURAL)
def shipyard_changed(namespace: Any, memo: Any, **_: Any) -> None:
    memo.wakeups.wake_all(SEQUENCERUN_PLURAL, namespace)


# ------------------------------------------------------------------ the work
@kopf.on.create(GROUP, VERSION, SHIPYARD_PLURAL)
@kopf.on.update(GROUP, VERSION, SHIPYARD_PLURAL, field="spec")
@kopf.on.resume(GROUP, VERSION, SHIPYARD_PLURAL)
def shipyard_ready(body: Any, patch: kopf.Patch, **_: Any) -> None:
    shipyards.check(body, patch)


@kopf.daemon(
    GROUP,
    VERSION,
    SEQUENCERUN_PLURAL,
    when=lambda status, **_: _running(status),
    cancellation_timeout=10,  # a stopping daemon gets this long to finish its current step
)
async def run(
    namespace: Any, name: Any, memo: Any, stopped: kopf.DaemonStopped, logger: Any, **kwargs: Any
) -> None:
    await runs.run_daemon(
        memo.kube,
        memo.wakeups,
        namespace,
        name,
        kwargs["shipyards_by_name"],
        kwargs["executions_by_run"],
        stopped,
        logger,
    )


@kopf.daemon(
    GROUP,
    VERSION,
    TASKEXECUTION_PLURAL,
    when=lambda status, **_: _running(status),
    cancellation_timeout=10,
)
async def execution(
    namespace: Any, name: Any, memo: Any, stopped: kopf.DaemonStopped, logger: Any, **kwargs: Any
) -> None:
    await executions.execution_daemon(
        memo.dispatch, memo.wakeups, namespace, name, kwargs["providers_by_task"], stopped, logger
    )


def _running(status: Any) -> bool:
    return bool((status or {}).get("phase") != "Finished")


@kopf.on.create(GROUP, VERSION, TASKPROVIDER_PLURAL)
@kopf.on.update(GROUP, VERSION, TASKPROVIDER_PLURAL, field="spec")
@kopf.on.resume(GROUP, VERSION, TASKPROVIDER_PLURAL)
def provider_kind(spec: Any, patch: kopf.Patch, **_: Any) -> None:
    """Record which kind of provider this is, for the KIND column of `kubectl get`."""
    try:
        patch.status["kind"] = TaskProviderSpec.model_validate(dict(spec)).kind.value
    except ValueError as error:  # retrying cannot fix an invalid spec
        raise kopf.PermanentError(str(error)) from error
