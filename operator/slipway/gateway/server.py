"""The event API: start runs, take tool responses, tell how a run is doing.

    POST /v1/namespaces/{ns}/events                  a CloudEvent (structured or binary)
    GET  /v1/namespaces/{ns}/sequenceruns/{name}     a run's status; `?wait=30s` long-polls
    GET  /healthz, /readyz                           probes
    GET  /openapi.json                               this API as an OpenAPI 3.1 document
    POST /v1/namespaces/{ns}/taskexecutions/{name}/approval   a person's decision (approvals.py)
    and, with the web page, the page's routes (web.py)

Every answer, errors included, is JSON; every error is `{error, message}` with a 4xx status a
person can act on, or 503 with `Retry-After` when the API server is slow or down (see
`errors.py` and `limits.py`). Nothing here changes state except through the Kubernetes API,
so a gateway restart loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from slipway import metrics
from slipway.api.common import parse_duration
from slipway.api.sequencerun import SequenceRunSpec
from slipway.api.shipyard import ShipyardSpec
from slipway.constants import (
    ANNOTATION_CONTEXT,
    SEQUENCERUN_PLURAL,
    SHIPYARD_PLURAL,
    TASKEXECUTION_PLURAL,
)
from slipway.engine.executions import ResponseRejectedError
from slipway.engine.objects import build_run
from slipway.engine.sizes import json_size
from slipway.engine.tokens import check_callback_token
from slipway.events import (
    EventError,
    SequenceTrigger,
    TaskResponse,
    error_body,
    interpret,
    is_name,
    is_object_name,
    parse_http,
    parse_triggered_id,
)
from slipway.gateway import approvals
from slipway.gateway.auth import AuthError, KubernetesAuthorizer, bearer_token
from slipway.gateway.errors import bad_name, json_errors, problem, read_body, refused_by_api
from slipway.gateway.limits import GatewayLimits, api_call
from slipway.gateway.openapi import openapi_document, route_operations
from slipway.gateway.web import WebOptions, prepare_trigger
from slipway.gateway.web import register as register_web
from slipway.kube.client import Kube, Ref
from slipway.kube.errors import KubeError
from slipway.providers.responses import data_too_large, record_response

log = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 300.0


@dataclass
class Gateway:
    """What the handlers need: the API client, the authorizer, and how to wake a worker."""

    kube: Kube
    authorizer: KubernetesAuthorizer
    wake: Any  # Callable[[tuple[str, str, str]], None]
    key: bytes
    prefix: str = ""
    limits: GatewayLimits = field(default_factory=GatewayLimits)
    #: Set once kopf watches: until then /readyz answers 503 (the gateway already serves).
    ready: asyncio.Event = field(default_factory=asyncio.Event)


def build_app(gateway: Gateway, page: WebOptions | None = None) -> web.Application:
    """The aiohttp application (routes and the error middleware; the caller runs it with
    `errors.GatewayRunner`, which adds the header limits and JSON parser errors); with `page`,
    also the web page and its routes (`slipway.gateway.web`)."""
    app = web.Application(
        client_max_size=gateway.limits.max_body_bytes,
        middlewares=[metrics.gateway_middleware, json_errors(gateway.limits)],
    )
    if page is not None:
        register_web(app, page, gateway.authorizer, gateway.limits)
    routes = Routes(gateway)
    app.router.add_post("/v1/namespaces/{namespace}/events", routes.post_event)
    app.router.add_get("/v1/namespaces/{namespace}/sequenceruns/{name}", routes.get_run)
    app.router.add_get("/healthz", routes.healthz)
    app.router.add_get("/readyz", routes.readyz)
    approvals.add_routes(app, gateway.kube, gateway.authorizer, gateway.wake, gateway.limits)
    app.router.add_get("/openapi.json", routes.openapi)
    return app


class Routes:
    """The request handlers."""

    def __init__(self, gateway: Gateway) -> None:
        self.g = gateway

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        if not self.g.ready.is_set():
            return problem(
                503,
                "not_ready",
                "the operator is starting: not yet watching",
                {"Retry-After": str(self.g.limits.retry_after_seconds)},
            )
        return web.json_response({"status": "ready"})

    async def openapi(self, request: web.Request) -> web.Response:
        """The document of the routes this application registered (the page's routes only
        when it serves the page)."""
        return web.json_response(openapi_document(route_operations(request.app.router)))

    def _api(self, call: Any) -> Any:
        """One API call, bounded in time (503 when the API server is slow or down)."""
        return api_call(call, self.g.limits.api_timeout)

    async def post_event(self, request: web.Request) -> web.Response:
        namespace = request.match_info["namespace"]
        if not is_name(namespace):
            return bad_name("namespace", namespace)
        limits = self.g.limits
        body = await read_body(request, limits)
        try:
            event = parse_http(
                request.headers,
                body,
                prefix=self.g.prefix,
                max_size=limits.max_body_bytes,
                limits=limits.json,
            )
            meaning = interpret(event)
        except EventError as error:
            return web.json_response(error_body(error), status=error.status)
        try:
            if isinstance(meaning, SequenceTrigger):
                return await self._trigger(request, namespace, meaning)
            return await self._respond(request, namespace, meaning)
        except AuthError as error:
            return problem(
                error.status, "unauthorized" if error.status == 401 else "forbidden", error.message
            )
        except ResponseRejectedError as error:
            kind = {404: "not_found", 409: "conflict"}.get(error.status, "bad_request")
            return problem(error.status, kind, error.message)
        except KubeError as error:  # not transient (api_call turned those into 503)
            return refused_by_api(error)

    async def _trigger(
        self, request: web.Request, namespace: str, trigger: SequenceTrigger
    ) -> web.Response:
        token = bearer_token(request.headers.get("Authorization"))
        caller = await self.g.authorizer.authorize(token, "create", namespace)
        size = json_size(trigger.data)
        if size > self.g.limits.data.max_run_data:
            return problem(
                413,
                "data_too_large",
                f"the run's data is {size} bytes of JSON; the limit is "
                f"{self.g.limits.data.max_run_data} bytes (SLIPWAY_MAX_RUN_DATA_BYTES)",
            )
        shipyard = await self._shipyard(namespace, trigger.shipyard)
        if isinstance(shipyard, web.Response):
            return shipyard
        name, shipyard_spec = shipyard
        sequence = shipyard_spec.sequence(trigger.stage, trigger.sequence)
        if sequence is None:
            stages = shipyard_spec.stages
            known = ", ".join(f"{s.name}.{q.name}" for s in stages for q in s.sequences)
            return problem(
                422,
                "unknown_sequence",
                f"Shipyard {name} has no sequence {trigger.sequence!r} in stage "
                f"{trigger.stage!r}; it has: {known}",
            )
        run_name = run_name_for(trigger)
        data = prepare_trigger(request, namespace, run_name, sequence, trigger.data)
        if isinstance(data, web.Response):  # data that does not fit the inputs: 422
            return data
        context = trigger.context or uuid.uuid4().hex
        spec = SequenceRunSpec(
            shipyard=name, stage=trigger.stage, sequence=trigger.sequence, data=data
        )
        body = build_run(run_name, spec, context=context, triggered_by=caller)
        created = (
            await self._api(self.g.kube.ensure_created(SEQUENCERUN_PLURAL, namespace, body))
            is not None
        )
        if not created:  # the same event again: the run it started already exists
            existing = await self._api(
                self.g.kube.get(Ref(SEQUENCERUN_PLURAL, namespace, run_name))
            )
            annotations = (existing or {}).get("metadata", {}).get("annotations", {})
            context = annotations.get(ANNOTATION_CONTEXT, context)
        return web.json_response(
            {"namespace": namespace, "run": run_name, "context": context, "duplicate": not created},
            status=202 if created else 200,
        )

    async def _shipyard(
        self, namespace: str, wanted: str | None
    ) -> tuple[str, ShipyardSpec] | web.Response:
        items = await self._api(self.g.kube.list(SHIPYARD_PLURAL, namespace))
        names = [item["metadata"]["name"] for item in items]
        if wanted is None:
            if len(items) != 1:
                return problem(
                    422,
                    "shipyard_required",
                    f"namespace {namespace} has {len(items)} Shipyards ({', '.join(names)}); "
                    "say which one in data.shipyard",
                )
            found = items[0]
        else:
            matches = [i for i in items if i["metadata"]["name"] == wanted]
            if not matches:
                return problem(
                    422,
                    "unknown_shipyard",
                    f"namespace {namespace} has no Shipyard {wanted!r}; it has: "
                    f"{', '.join(names) or 'none'}",
                )
            found = matches[0]
        return found["metadata"]["name"], ShipyardSpec.model_validate(found.get("spec") or {})

    async def _respond(
        self, request: web.Request, namespace: str, response: TaskResponse
    ) -> web.Response:
        parts = parse_triggered_id(response.triggered_id)
        if parts is None or parts.namespace != namespace:
            raise ResponseRejectedError(
                404, f"triggeredid {response.triggered_id!r} names no execution of {namespace}"
            )
        execution = parts.execution
        token = bearer_token(request.headers.get("Authorization"))

        def check(body: dict[str, Any]) -> None:
            meta = body["metadata"]
            why = check_callback_token(
                self.g.key,
                token,
                namespace=namespace,
                execution=execution,
                uid=meta["uid"],
                now=datetime.now(UTC),
            )
            if why is not None:
                raise AuthError(403, why)

        updated = await self._api(
            record_response(
                self.g.kube, namespace, execution, response, check=check, limits=self.g.limits.data
            )
        )
        self.g.wake((TASKEXECUTION_PLURAL, namespace, execution))
        too_large = data_too_large(updated, response)
        if too_large:  # recorded (the task fails DataTooLarge); the tool is told why
            return problem(413, "data_too_large", too_large)
        return web.json_response(
            {"namespace": namespace, "execution": execution, "accepted": response.phase},
            status=202,
        )

    async def get_run(self, request: web.Request) -> web.Response:
        namespace = request.match_info["namespace"]
        name = request.match_info["name"]
        if not is_name(namespace):
            return bad_name("namespace", namespace)
        if not is_object_name(name):
            return bad_name("run name", name)
        try:
            token = bearer_token(request.headers.get("Authorization"))
            await self.g.authorizer.authorize(token, "get", namespace)
        except AuthError as error:
            return problem(
                error.status, "unauthorized" if error.status == 401 else "forbidden", error.message
            )
        wait = 0.0
        if "wait" in request.query:
            try:
                wait = min(MAX_WAIT_SECONDS, parse_duration(request.query["wait"]).total_seconds())
            except (ValueError, OverflowError) as error:
                return problem(400, "bad_wait", f"wait: {error}")
        try:
            body = await self._api(self.g.kube.get(Ref(SEQUENCERUN_PLURAL, namespace, name)))
        except KubeError as error:
            return refused_by_api(error)
        if body is None:
            return problem(404, "not_found", f"SequenceRun {namespace}/{name} does not exist")
        if wait > 0 and not _finished(body):
            body = await self._wait_finished(namespace, name, body, wait)
        return web.json_response(
            {"namespace": namespace, "name": name, "status": body.get("status") or {}}
        )

    async def _wait_finished(
        self, namespace: str, name: str, body: dict[str, Any], wait: float
    ) -> dict[str, Any]:
        """Watch the run until it finishes or `wait` seconds pass; the last state seen."""
        changes = self.g.kube.watch_changes(
            SEQUENCERUN_PLURAL,
            namespace,
            body["metadata"]["resourceVersion"],
            int(wait),
            field_selector=f"metadata.name={name}",
        )
        try:
            async with contextlib.aclosing(changes):
                async for kind, obj in changes:
                    body = obj
                    if _finished(body) or kind == "DELETED":
                        break
        except (KubeError, aiohttp.ClientError, TimeoutError) as error:  # answer with what we have
            log.info("watch of %s/%s ended early: %s", namespace, name, error)
        return body


def _finished(body: dict[str, Any]) -> bool:
    return bool((body.get("status") or {}).get("phase") == "Finished")


def run_name_for(trigger: SequenceTrigger) -> str:
    """A deterministic run name for a trigger event: the same event (source, id) names the
    same run, so a repeated POST starts nothing new."""
    digest = hashlib.sha256(f"{trigger.source}\n{trigger.id}".encode()).hexdigest()[:10]
    return f"{trigger.sequence[:40]}-{digest}"
