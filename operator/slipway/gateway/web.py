"""The web page and the routes it calls, for people who never touch kubectl.

    GET  /                                             the page (static files in ./static)
    GET  /v1/whoami                                    who the bearer token is (TokenReview)
    GET  /v1/capabilities                              titled sequences the caller may start
    GET  /v1/namespaces/{ns}/sequenceruns?mine=true    the caller's runs, newest first, paged
    GET  /v1/namespaces/{ns}/sequenceruns/{name}/events   Server-Sent Events until it finishes
    POST /v1/namespaces/{ns}/uploads                   a file for a run (see uploads.py)
    GET  /v1/namespaces/{ns}/sequenceruns/{run}/uploads/{sha256}   for tools (see uploads.py)

Who may: the same Kubernetes identities and RBAC as the event API, through the same
`KubernetesAuthorizer` (cached, negative cache, bounded concurrency); every Kubernetes call is
bounded in time (`api_call`: 503 with Retry-After when the API server is slow or down), and
names are checked before any call (400). Every answer except the page and the event stream is
JSON; errors are `{error, message}`; the routes are in `/openapi.json` (`openapi.OPERATIONS`).
Runs are still started with a CloudEvent POSTed to `/v1/namespaces/{ns}/events` (the page does
exactly that), whose data the gateway checks against the sequence's `inputs`
(`prepare_trigger`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from slipway.api.shipyard import Sequence
from slipway.constants import (
    LABEL_RUN,
    LABEL_TRIGGERED_BY,
    SEQUENCERUN_PLURAL,
    SHIPYARD_PLURAL,
    TASKEXECUTION_PLURAL,
)
from slipway.engine.inputs import check_inputs, problems_message
from slipway.engine.objects import triggered_by_label
from slipway.events import is_name, is_object_name
from slipway.gateway.auth import AuthError, Caller, KubernetesAuthorizer, bearer_token
from slipway.gateway.errors import ProblemError, check_names, problem
from slipway.gateway.limits import GatewayLimits, UnavailableError, api_call
from slipway.gateway.uploads import (
    UploadError,
    UploadStore,
    attach_uploads,
    serve_upload,
    sweeper,
)
from slipway.gateway.views import capabilities, run_view
from slipway.kube.access import list_everywhere
from slipway.kube.client import Body, Kube, Ref
from slipway.kube.errors import KubeError

log = logging.getLogger(__name__)
T = TypeVar("T")

STATIC = Path(__file__).parent / "static"
#: The page's policy: its own scripts and styles only, no inline code, no framing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
MAX_PAGE = 100
#: An event stream ends after this long (the page reconnects); keep-alives in between.
STREAM_SECONDS = 3600.0
KEEPALIVE_SECONDS = 15.0


@dataclass
class WebOptions:
    """What the page's routes need besides the event gateway."""

    kube: Kube
    gateway_url: str
    namespace: str | None = None
    event_type_prefix: str = ""
    uploads: UploadStore | None = None
    upload_grace_seconds: float = 3600.0
    upload_sweep_seconds: float = 600.0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


WEB = web.AppKey("slipway_web", WebOptions)


def prepare_trigger(
    request: web.Request,
    namespace: str,
    run: str,
    sequence: Sequence,
    data: dict[str, Any],
) -> dict[str, Any] | web.Response:
    """For a trigger the event API accepted: the run's data (uploads attached), or a 422
    naming each field that does not fit the sequence's `inputs`."""
    options = request.app.get(WEB)
    try:
        data = attach_uploads(
            options.uploads if options else None,
            options.gateway_url if options else "",
            namespace,
            run,
            sequence,
            data,
        )
    except UploadError as error:
        return problem(error.status, error.error, error.message)
    unfit = check_inputs(sequence.inputs, data)
    if unfit:
        return problem(
            422,
            "invalid_data",
            problems_message(unfit),
            fields={p.field: p.message for p in unfit},
        )
    return data


def register(
    app: web.Application,
    options: WebOptions,
    authorizer: KubernetesAuthorizer,
    limits: GatewayLimits,
) -> None:
    """Add the page and its routes to the gateway's application (who may: `authorizer`,
    the event API's; Kubernetes calls bounded by `limits.api_timeout`)."""
    app[WEB] = options
    routes = WebRoutes(options, authorizer, limits)
    app.router.add_get("/", routes.page)
    app.router.add_get("/static/{file}", routes.static)
    app.router.add_get("/v1/whoami", routes.whoami)
    app.router.add_get("/v1/capabilities", routes.capabilities)
    app.router.add_get("/v1/namespaces/{namespace}/sequenceruns", routes.list_runs)
    app.router.add_get("/v1/namespaces/{namespace}/sequenceruns/{name}/events", routes.events)
    app.router.add_post("/v1/namespaces/{namespace}/uploads", routes.upload)
    app.router.add_get(
        "/v1/namespaces/{namespace}/sequenceruns/{name}/uploads/{sha}", routes.get_upload
    )
    if options.uploads is not None:
        app.cleanup_ctx.append(routes.run_sweeper)


class WebRoutes:
    def __init__(
        self, options: WebOptions, authorizer: KubernetesAuthorizer, limits: GatewayLimits
    ) -> None:
        self.o = options
        self.authorizer = authorizer
        self.limits = limits

    # ------------------------------------------------------------------ helpers
    async def _api(self, call: Awaitable[T]) -> T:
        """One Kubernetes API call, bounded in time (503 when the API server is slow or
        down)."""
        return await api_call(call, self.limits.api_timeout)

    async def _who(self, request: web.Request) -> Caller:
        return await self.authorizer.identify(bearer_token(request.headers.get("Authorization")))

    async def _may(self, request: web.Request, verb: str, namespace: str) -> Caller:
        """The caller, when they may `verb` sequenceruns in `namespace`; AuthError else."""
        token = bearer_token(request.headers.get("Authorization"))
        if self.o.namespace and namespace != self.o.namespace:
            await self.authorizer.identify(token)  # 401 before 403, as elsewhere
            raise AuthError(403, f"this gateway serves namespace {self.o.namespace} only")
        return await self.authorizer.caller(token, verb, namespace)

    @staticmethod
    def _auth_problem(error: AuthError) -> web.Response:
        kind = "unauthorized" if error.status == 401 else "forbidden"
        return problem(error.status, kind, error.message)

    # ------------------------------------------------------------------ page
    async def page(self, request: web.Request) -> web.StreamResponse:
        return self._file("index.html")

    async def static(self, request: web.Request) -> web.StreamResponse:
        return self._file(request.match_info["file"])

    def _file(self, name: str) -> web.StreamResponse:
        path = STATIC / name
        kind = _STATIC_TYPES.get(path.suffix)
        if "/" in name or name.startswith(".") or kind is None or not path.is_file():
            return problem(404, "not_found", f"no file {name!r}")
        cache = "no-cache" if name == "index.html" else "public, max-age=300"
        return web.FileResponse(
            path, headers={**PAGE_HEADERS, "Content-Type": kind, "Cache-Control": cache}
        )

    # ------------------------------------------------------------------ API
    async def whoami(self, request: web.Request) -> web.Response:
        try:
            who = await self._who(request)
        except AuthError as error:
            return self._auth_problem(error)
        return web.json_response({"username": who.username, "groups": list(who.groups)})

    async def capabilities(self, request: web.Request) -> web.Response:
        try:
            await self._who(request)
        except AuthError as error:
            return self._auth_problem(error)
        shipyards = await self._api(list_everywhere(self.o.kube, SHIPYARD_PLURAL, self.o.namespace))
        namespaces = sorted({s["metadata"]["namespace"] for s in shipyards})
        allowed = await asyncio.gather(*(self._allowed(request, ns) for ns in namespaces))
        may = {ns for ns, ok in zip(namespaces, allowed, strict=True) if ok}
        items = [
            item
            for shipyard in sorted(
                shipyards, key=lambda s: (s["metadata"]["namespace"], s["metadata"]["name"])
            )
            if shipyard["metadata"]["namespace"] in may
            for item in capabilities(
                shipyard["metadata"]["namespace"], shipyard, self.o.event_type_prefix
            )
        ]
        return web.json_response({"items": items})

    async def _allowed(self, request: web.Request, namespace: str) -> bool:
        try:
            await self._may(request, "create", namespace)
        except AuthError:
            return False
        return True

    async def list_runs(self, request: web.Request) -> web.Response:
        namespace = request.match_info["namespace"]
        check_names(namespace)
        mine = request.query.get("mine", "").lower() in ("true", "1", "yes")
        try:
            who = await self._may(request, "get" if mine else "list", namespace)
        except AuthError as error:
            return self._auth_problem(error)
        try:
            limit = min(MAX_PAGE, max(1, int(request.query.get("limit", "20"))))
            start = int(request.query.get("continue", "0") or "0")
        except ValueError:
            return problem(400, "bad_query", "limit and continue are whole numbers")
        if start < 0:
            return problem(400, "bad_query", "continue is the `continue` of the page before")
        selector = f"{LABEL_TRIGGERED_BY}={triggered_by_label(who.username)}" if mine else ""
        runs = await self._api(
            self.o.kube.list(SEQUENCERUN_PLURAL, namespace, label_selector=selector)
        )
        runs.sort(
            key=lambda r: (r["metadata"].get("creationTimestamp", ""), r["metadata"]["name"]),
            reverse=True,
        )
        page = runs[start : start + limit]
        more = start + limit < len(runs)
        return web.json_response(
            {
                "items": [run_view(r) for r in page],
                "continue": str(start + limit) if more else None,
                "total": len(runs),
            }
        )

    async def events(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info["namespace"]
        name = request.match_info["name"]
        check_names(namespace, name, "run name")
        try:
            await self._may(request, "get", namespace)
        except AuthError as error:
            return self._auth_problem(error)
        run = await self._api(self.o.kube.get(Ref(SEQUENCERUN_PLURAL, namespace, name)))
        if run is None:
            return problem(404, "not_found", f"SequenceRun {namespace}/{name} does not exist")
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
                "X-Content-Type-Options": "nosniff",
            }
        )
        await response.prepare(request)
        last = ""
        try:
            async with contextlib.aclosing(self._views(namespace, name)) as views:
                async for kind, view in views:
                    if kind == "keepalive":
                        await response.write(b": keep-alive\n\n")
                        continue
                    text = json.dumps(view, separators=(",", ":"))
                    if text != last or kind == "end":
                        await response.write(f"event: {kind}\ndata: {text}\n\n".encode())
                        last = text
        except ConnectionError:  # the page went away: its watches are closed above
            log.debug("event stream of %s/%s closed by the client", namespace, name)
            return response
        except (UnavailableError, KubeError) as error:  # the answer has begun: end it early
            why = getattr(error, "message", str(error)).replace("\n", " ")
            log.info("event stream of %s/%s ended early: %s", namespace, name, why)
            with contextlib.suppress(ConnectionError):
                await response.write(f": ended early, reconnect: {why}\n\n".encode())
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response

    async def _views(self, namespace: str, name: str) -> AsyncGenerator[tuple[str, Body]]:
        """("run", view) on each change, ("keepalive", {}) while nothing changes, and
        ("end", view) once finished (or deleted); watches behind it, re-listed on expiry."""
        deadline = time.monotonic() + STREAM_SECONDS
        selector = f"{LABEL_RUN}={name}"
        while time.monotonic() < deadline:
            runs, run_version = await self._api(
                self.o.kube.list_with_version(
                    SEQUENCERUN_PLURAL, namespace, field_selector=f"metadata.name={name}"
                )
            )
            if not runs:
                yield "end", {"namespace": namespace, "name": name, "deleted": True}
                return
            run = runs[0]
            executions, exec_version = await self._api(
                self.o.kube.list_with_version(
                    TASKEXECUTION_PLURAL, namespace, label_selector=selector
                )
            )
            by_name = {e["metadata"]["name"]: e for e in executions}
            view = run_view(run, list(by_name.values()))
            if view["finished"]:
                yield "end", view
                return
            yield "run", view
            queue: asyncio.Queue[tuple[str, str, Body] | None] = asyncio.Queue()
            seconds = min(60.0, deadline - time.monotonic())
            pumps = [
                asyncio.create_task(
                    self._pump(
                        queue,
                        SEQUENCERUN_PLURAL,
                        namespace,
                        run_version,
                        seconds,
                        field_selector=f"metadata.name={name}",
                    )
                ),
                asyncio.create_task(
                    self._pump(
                        queue,
                        TASKEXECUTION_PLURAL,
                        namespace,
                        exec_version,
                        seconds,
                        label_selector=selector,
                    )
                ),
            ]
            try:
                ended = 0
                while ended < len(pumps):
                    try:
                        item = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                    except TimeoutError:
                        yield "keepalive", {}
                        continue
                    if item is None:
                        ended += 1
                        break  # one watch ended: re-list both, start again
                    plural, kind, obj = item
                    if plural == SEQUENCERUN_PLURAL:
                        if kind == "DELETED":
                            yield "end", {"namespace": namespace, "name": name, "deleted": True}
                            return
                        run = obj
                    elif kind == "DELETED":
                        by_name.pop(obj["metadata"]["name"], None)
                    else:
                        by_name[obj["metadata"]["name"]] = obj
                    view = run_view(run, list(by_name.values()))
                    if view["finished"]:
                        yield "end", view
                        return
                    yield "run", view
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)

    async def _pump(
        self,
        queue: asyncio.Queue[tuple[str, str, Body] | None],
        plural: str,
        namespace: str,
        version: str,
        seconds: float,
        **selectors: str,
    ) -> None:
        try:
            async for kind, obj in self.o.kube.watch_changes(
                plural, namespace, version, int(seconds), **selectors
            ):
                await queue.put((plural, kind, obj))
        finally:
            await queue.put(None)

    # ------------------------------------------------------------------ uploads
    async def upload(self, request: web.Request) -> web.Response:
        namespace = request.match_info["namespace"]
        check_names(namespace)
        try:
            await self._may(request, "create", namespace)
        except AuthError as error:
            return self._auth_problem(error)
        if self.o.uploads is None:
            return problem(404, "uploads_disabled", "this gateway takes no uploads")
        where = request.query.get("capability", "").split("/")
        field_name = request.query.get("input", "")
        if len(where) != 3 or not field_name:
            return problem(
                400, "bad_query", "say ?capability=<shipyard>/<stage>/<sequence>&input=<name>"
            )
        shipyard = None
        if is_object_name(where[0]) and is_name(where[1]) and is_name(where[2]):
            shipyard = await self._api(self.o.kube.get(Ref(SHIPYARD_PLURAL, namespace, where[0])))
        found = None
        if shipyard is not None:
            for item in capabilities(namespace, shipyard):
                if item["stage"] == where[1] and item["sequence"] == where[2]:
                    found = item
        spec = ((found or {}).get("inputs") or {}).get("properties", {}).get(field_name)
        if not spec or not spec.get("contentMediaType"):
            return problem(
                422,
                "not_a_file_input",
                f"{'/'.join(where)} has no file input {field_name!r}",
            )
        declared = request.headers.get("Content-Type", "application/octet-stream")
        declared = declared.split(";")[0].strip()
        if request.content_length is not None and request.content_length > self.o.uploads.max_bytes:
            return problem(
                413, "too_large", f"the file is larger than {self.o.uploads.max_bytes} bytes"
            )
        try:
            stored = await asyncio.wait_for(
                self.o.uploads.save(
                    request.content.iter_chunked(64 * 1024), declared, spec["contentMediaType"]
                ),
                self.limits.body_timeout,
            )
        except TimeoutError:
            raise ProblemError(
                408,
                "request_timeout",
                f"the file did not arrive within {self.limits.body_timeout:g} s "
                "(SLIPWAY_GATEWAY_BODY_TIMEOUT)",
            ) from None
        except UploadError as error:
            return problem(error.status, error.error, error.message)
        return web.json_response(
            {"upload": stored.sha256, "size": stored.size, "contentType": stored.content_type},
            status=201,
        )

    async def get_upload(self, request: web.Request) -> web.StreamResponse:
        if self.o.uploads is None:
            return problem(404, "uploads_disabled", "this gateway takes no uploads")
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        check_names(namespace, name, "run name")
        try:
            token = bearer_token(request.headers.get("Authorization"))
            return await self._api(
                serve_upload(
                    self.o.kube, self.o.uploads, namespace, name, request.match_info["sha"], token
                )
            )
        except AuthError as error:
            return self._auth_problem(error)
        except UploadError as error:
            return problem(error.status, error.error, error.message)

    async def run_sweeper(self, app: web.Application) -> AsyncIterator[None]:
        assert self.o.uploads is not None
        task = asyncio.create_task(
            sweeper(
                self.o.kube,
                self.o.uploads,
                self.o.namespace,
                self.o.upload_grace_seconds,
                self.o.upload_sweep_seconds,
            ),
            name="upload sweeper",
        )
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
