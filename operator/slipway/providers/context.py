"""What every provider needs to carry out a trigger, and the `.triggered` event they send."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
from cloudevents.core.v1.event import CloudEvent

from slipway.api.taskexecution import TaskExecutionSpec
from slipway.engine.decisions import Trigger
from slipway.engine.sizes import DataLimits
from slipway.engine.tokens import sign_callback_token
from slipway.events import RunScope, build_task_triggered, callback_url
from slipway.kube.client import Kube


@dataclass(frozen=True)
class DispatchContext:
    """What every trigger needs from the process: the API client, one HTTP session, where
    tools call back, the key that signs their callback tokens, the event type prefix, and the
    bounds on outputs."""

    kube: Kube
    session: aiohttp.ClientSession
    gateway_url: str
    key: bytes
    prefix: str = ""
    data_limits: DataLimits = field(default_factory=DataLimits)


@dataclass(frozen=True)
class ExecutionRef:
    """The execution a trigger belongs to."""

    namespace: str
    name: str
    uid: str
    created: datetime
    spec: TaskExecutionSpec

    def token(self, key: bytes) -> str:
        """The execution's callback token (`engine/tokens.py`)."""
        return sign_callback_token(
            key, namespace=self.namespace, execution=self.name, uid=self.uid, created=self.created
        )


def build_triggered(ctx: DispatchContext, execution: ExecutionRef, order: Trigger) -> CloudEvent:
    """`<task>.triggered` for one provider of `execution` (see `events.build_task_triggered`
    for its data), with the callback URL and the token tools answer with."""
    spec = execution.spec
    scope = RunScope(
        namespace=execution.namespace,
        run=spec.run,
        shipyard=spec.shipyard,
        stage=spec.stage,
        sequence=spec.sequence,
        context=spec.context,
    )
    return build_task_triggered(
        scope,
        task=spec.task.name,
        execution=execution.name,
        event_id=order.triggered_id,
        time=datetime.now(UTC),
        data=spec.input,
        properties=spec.task.properties,
        callback_url=callback_url(ctx.gateway_url, execution.namespace),
        callback_token=execution.token(ctx.key),
        prefix=ctx.prefix,
    )
