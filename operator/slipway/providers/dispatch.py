"""Carry out an engine `Trigger`: send `<task>.triggered` to one provider of an execution.

A cloudEvent provider gets the event POSTed (structured or binary); its synchronous answer,
or how the delivery went, is handed back to the execution's worker as an `Answer`, which
records it in its next status write together with what follows from it (the task may finish
in that same write: no extra write, no wait for the watch). A failed delivery is recorded
at once. Job and evaluation providers are carried out
by their own modules once they exist; until then such a provider finishes `fail` with a
message saying so, so a run never hangs on them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slipway import faults, metrics
from slipway.api.common import Reason, parse_duration
from slipway.api.taskexecution import TaskExecutionStatus
from slipway.api.taskprovider import TaskProviderSpec
from slipway.engine.decisions import Patch, Trigger
from slipway.engine.responses import note_delivery
from slipway.engine.sizes import DataLimits
from slipway.events import TaskResponse, to_http
from slipway.kube.errors import KubeError
from slipway.providers import approval
from slipway.providers.cloudevent import deliver
from slipway.providers.context import DispatchContext, ExecutionRef, build_triggered
from slipway.providers.evaluation import run_evaluation
from slipway.providers.job import start_job
from slipway.providers.responses import record_failure, response_patch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """What a delivery brought back, for the worker's next write: a tool's synchronous
    `response`, or (an asynchronous tool) a `note` on how its delivery went."""

    triggered_id: str
    response: TaskResponse | None = None
    note: str | None = None
    #: The bounds on the response's output, and the execution's input (the run's data).
    limits: DataLimits | None = None
    input_data: dict[str, Any] | None = None

    def patch(self, status: TaskExecutionStatus) -> Patch:
        """The status patch recording it (`{}`: nothing to change). Raises
        ResponseRejectedError when a response no longer applies."""
        if self.response is not None:
            return response_patch(
                status, self.response, limits=self.limits, input_data=self.input_data
            )
        if self.note is not None:
            return note_delivery(status, triggered_id=self.triggered_id, note=self.note)
        return {}


async def trigger(
    ctx: DispatchContext,
    execution: ExecutionRef,
    provider: TaskProviderSpec,
    order: Trigger,
) -> Answer | None:
    """Send the trigger; a failure is recorded in the execution's status, a synchronous
    answer or a delivery note is returned for the caller to record. Never raises for a
    tool's misbehaviour (that is the tool's `fail`), nor for a refusal by the API server
    (403: the operator lacks a right in this namespace — that provider fails with a message
    saying which ClusterRole to bind); other API errors do raise."""
    try:
        return await _trigger(ctx, execution, provider, order)
    except KubeError as error:
        metrics.delivered(provider.kind.value, "refused" if error.forbidden else "error")
        if not error.forbidden:
            raise
        await record_failure(
            ctx.kube,
            execution.namespace,
            execution.name,
            provider=order.provider,
            triggered_id=order.triggered_id,
            reason=Reason.FAILED,
            message=(
                f"Slipway may not do what provider {order.provider} needs in namespace "
                f"{execution.namespace} ({error.reason}): bind the ClusterRole "
                f"slipway-namespace to the operator's ServiceAccount there (docs/install.md)"
            ),
        )
        return None


async def _trigger(
    ctx: DispatchContext,
    execution: ExecutionRef,
    provider: TaskProviderSpec,
    order: Trigger,
) -> Answer | None:
    if provider.evaluation is not None:  # the built-in quality gate, carried out in-process
        await run_evaluation(ctx, execution, provider, order)
        metrics.delivered("evaluation", "ok", attempt=order.attempt)
        return None
    if provider.approval is not None:  # a human gate: decided through the gateway
        await approval.start(ctx, execution, provider, order)
        return None
    if provider.job is not None:  # a container: one Job per attempt, followed by its watch
        await start_job(ctx, execution, provider, order)
        metrics.delivered("job", "ok", attempt=order.attempt)
        return None
    if provider.cloud_event is None:  # the schema requires one of the three kinds
        raise ValueError(f"TaskProvider {order.provider} names no kind")
    spec = execution.spec
    event = build_triggered(ctx, execution, order)
    target = provider.cloud_event
    headers, body = to_http(event, target.mode.value)
    if target.headers_from is not None:
        secret = target.headers_from.secret_ref.name
        try:
            headers = {**await ctx.kube.secret_headers(execution.namespace, secret), **headers}
        except KubeError as error:
            if error.forbidden:
                raise
            await record_failure(
                ctx.kube,
                execution.namespace,
                execution.name,
                provider=order.provider,
                triggered_id=order.triggered_id,
                reason=Reason.FAILED,
                message=f"cannot read Secret {secret} (headersFrom): {error.message}",
            )
            metrics.delivered("cloudEvent", "failed", attempt=order.attempt)
            return None
    outcome = await deliver(
        ctx.session,
        target.url,
        headers,
        body,
        task=spec.task.name,
        triggered_id=order.triggered_id,
        per_request=parse_duration(target.timeout).total_seconds(),
        prefix=ctx.prefix,
    )
    faults.reach("after-delivery")
    metrics.delivered("cloudEvent", "ok" if outcome.ok else "failed", outcome.tries, order.attempt)
    if not outcome.ok:
        log.warning("%s: %s", execution.name, outcome.error)
        await record_failure(
            ctx.kube,
            execution.namespace,
            execution.name,
            provider=order.provider,
            triggered_id=order.triggered_id,
            reason=Reason.FAILED,
            message=f"delivery of {spec.task.name}.triggered failed after "
            f"{outcome.tries} tries: {outcome.error}",
        )
        return None
    if outcome.response is None:  # an asynchronous tool: it will call back
        tries = "1 try" if outcome.tries == 1 else f"{outcome.tries} tries"
        return Answer(order.triggered_id, note=f"HTTP {outcome.status} after {tries}")
    return Answer(
        order.triggered_id,
        response=outcome.response,
        limits=ctx.data_limits,
        input_data=execution.spec.input,
    )
