"""Every Prometheus metric of the operator, defined here and nowhere else.

The rest of the package records with one-line calls (`metrics.run_written(before, after)`,
`metrics.delivered(kind, outcome, tries)`, …), so the code that does the work stays readable
and a metric is renamed in one place. `serve(port)` exposes `/metrics` in the Prometheus text
format on its own port (setting `SLIPWAY_METRICS_PORT`; 0 disables it).

Conventions (Prometheus' naming practice): the `slipway_` prefix, base units in the name
(`_seconds`), `_total` on counters. Label values are always from a bounded set: names of
Shipyards, stages, sequences and tasks (configuration, not traffic), result and outcome words,
route patterns, HTTP methods and codes. Never a run's name, a context or a URL path.

Counters live in the process: after a restart they start again from zero, which `rate()` and
`increase()` handle. A transition is counted after the write that records it succeeded, so an
operator killed mid-turn never counts a run twice (the turn that redoes the work counts it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from slipway.api.common import Phase, Reason
from slipway.api.sequencerun import RunPhase, SequenceRunStatus

#: Runs last seconds to hours; tasks and hops less. Buckets in seconds.
RUN_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, float("inf"))
TASK_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, float("inf"))
FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, float("inf"))

SEQUENCE_LABELS = ("shipyard", "stage", "sequence")
ApiClientT = TypeVar("ApiClientT")
log = logging.getLogger(__name__)

RUNS_STARTED = Counter(
    "slipway_runs_started_total",
    "SequenceRuns started (their sequence found and the first task reached).",
    SEQUENCE_LABELS,
)
RUNS_FINISHED = Counter(
    "slipway_runs_finished_total",
    "SequenceRuns finished, by result (pass, warning, fail).",
    (*SEQUENCE_LABELS, "result"),
)
RUN_DURATION = Histogram(
    "slipway_run_duration_seconds",
    "Time from a run's start to its finish.",
    (*SEQUENCE_LABELS, "result"),
    buckets=RUN_BUCKETS,
)
TASK_DURATION = Histogram(
    "slipway_task_duration_seconds",
    "Time from a task's start (first provider started) to its finish, by task and result.",
    ("task", "result"),
    buckets=TASK_BUCKETS,
)
HOP_LATENCY = Histogram(
    "slipway_hop_latency_seconds",
    "Time from a task's finish to the trigger of the next task of its run.",
    buckets=FAST_BUCKETS,
)
MEMBERS = Gauge(
    "slipway_members",
    "Live operator replicas (fresh member Leases) as this replica sees them.",
)
DELIVERIES = Counter(
    "slipway_deliveries_total",
    "`<task>.triggered` deliveries to providers, by provider kind (cloudEvent, job, "
    "evaluation) and outcome (ok, failed, refused).",
    ("provider_kind", "outcome"),
)
DELIVERY_RETRIES = Counter(
    "slipway_delivery_retries_total",
    "Extra tries of deliveries: HTTP retries of one POST plus repeated attempts of a task.",
    ("provider_kind",),
)
PROVIDER_KINDS = ("cloudEvent", "job", "evaluation")
for _kind in PROVIDER_KINDS:  # a series from the start: "no retries" is a 0, not no data
    DELIVERY_RETRIES.labels(_kind)
GATEWAY_REQUESTS = Counter(
    "slipway_gateway_requests_total",
    "Requests to the event gateway, by route pattern, method and HTTP status code.",
    ("route", "method", "code"),
)
GATEWAY_DURATION = Histogram(
    "slipway_gateway_request_duration_seconds",
    "Time the gateway took to answer, by route pattern and method (long polls included).",
    ("route", "method"),
    buckets=FAST_BUCKETS,
)
KUBE_REQUESTS = Counter(
    "slipway_kube_api_requests_total",
    "Requests of Slipway's own Kubernetes client (kopf's watches not included), by "
    "Kubernetes verb and HTTP status code (`error`: no answer).",
    ("verb", "code"),
)
KUBE_DURATION = Histogram(
    "slipway_kube_api_request_duration_seconds",
    "Time to the API server's answer (for a watch: to its headers), by verb.",
    ("verb",),
    buckets=FAST_BUCKETS,
)
OWNED_SHARE = Gauge(
    "slipway_owned_share",
    "Share of the runs this replica owns (1 with one replica; with several, its part).",
)
OWNED_SHARE.set(1.0)


# ------------------------------------------------------------------ runs and tasks
def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def run_written(before: Mapping[str, Any], after: Mapping[str, Any] | None) -> None:
    """Count what one status write of a SequenceRun recorded: comparing the run before the
    write with the run the API server returned, a run started or finished, tasks finished,
    and (for each task reached after an earlier one finished) the hop between them. Nothing
    when `after` is None (no write). Never raises: a metric must not stop a run."""
    if after is None:
        return
    try:
        _run_written(before, after)
    except Exception:  # e.g. a status written by hand that the model rejects
        log.debug("run metrics not recorded", exc_info=True)


def _run_written(before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    old = SequenceRunStatus.model_validate(before.get("status") or {})
    new = SequenceRunStatus.model_validate(after.get("status") or {})
    spec = after.get("spec") or {}
    labels = [str(spec.get(key, "")) for key in SEQUENCE_LABELS]
    if new.sequence is None and new.reason == Reason.INVALID:
        # Names no Shipyard has (anyone allowed to create runs could invent endless ones):
        # never label values.
        labels = ["-", "-", "-"]
    if old.sequence is None and new.sequence is not None:
        RUNS_STARTED.labels(*labels).inc()
    if old.phase != RunPhase.FINISHED and new.phase == RunPhase.FINISHED:
        result = new.result.value if new.result else "none"
        RUNS_FINISHED.labels(*labels, result).inc()
        duration = _seconds(new.started_at, new.finished_at)
        if duration is not None:
            RUN_DURATION.labels(*labels, result).observe(duration)
    done_before = {t.index for t in old.tasks if t.phase == Phase.FINISHED}
    known_before = {t.index for t in old.tasks}
    now = datetime.now(UTC)
    for task in new.tasks:
        if task.phase == Phase.FINISHED and task.index not in done_before:
            result = task.result.value if task.result else "none"
            duration = _seconds(task.started_at, task.finished_at)
            if duration is not None:
                TASK_DURATION.labels(task.name, result).observe(duration)
        if task.index not in known_before and task.index > 0:
            previous = [t for t in new.tasks if t.index == task.index - 1]
            hop = _seconds(previous[0].finished_at, now) if previous else None
            if hop is not None:
                HOP_LATENCY.observe(hop)


# ------------------------------------------------------------------ deliveries
def delivered(provider_kind: str, outcome: str, tries: int = 1, attempt: int = 1) -> None:
    """One delivery of `<task>.triggered` ended with `outcome` (`ok`, `failed`, `refused`)
    after `tries` HTTP tries; `attempt` > 1 is a repeated attempt of the task (a retry too)."""
    DELIVERIES.labels(provider_kind, outcome).inc()
    retries = max(0, tries - 1) + (1 if attempt > 1 else 0)
    if retries:
        DELIVERY_RETRIES.labels(provider_kind).inc(retries)


# ------------------------------------------------------------------ gateway
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_of(request: web.Request) -> str:
    """The route pattern a request matched (`/v1/namespaces/{namespace}/events`), never the
    path; `unmatched` for a path no route serves."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def gateway_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Counts and times every gateway request by route pattern, method and code."""
    started = time.monotonic()
    code = 500
    try:
        response = await handler(request)
        code = response.status
        return response
    except web.HTTPException as error:
        code = error.status
        raise
    finally:
        route = route_of(request)
        GATEWAY_REQUESTS.labels(route, request.method, str(code)).inc()
        GATEWAY_DURATION.labels(route, request.method).observe(time.monotonic() - started)


# ------------------------------------------------------------------ Kubernetes API
def kube_verb(method: str, url: str) -> str:
    """The Kubernetes verb of a REST request: `get`/`list`/`watch` for GET (by whether the
    path names one object and whether `watch` is asked), else `create`, `update`, `patch`,
    `delete` (`deletecollection` on a collection)."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    # /api/v1/… or /apis/<group>/<version>/…
    rest = segments[2:] if segments[:1] == ["api"] else segments[3:]
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]  # a namespaced resource: drop `namespaces/<ns>`
    named = len(rest) >= 2
    method = method.upper()
    if method == "GET":
        watch = parse_qs(parts.query).get("watch", ["false"])[0].lower() in ("true", "1")
        return "watch" if watch else ("get" if named else "list")
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def instrument_kube(api: ApiClientT) -> ApiClientT:
    """Count and time every request of a kubernetes_asyncio `ApiClient` (wraps its REST
    client's `request`, which every generated API method goes through). Returns `api`."""
    rest: Any = getattr(api, "rest_client")  # noqa: B009 (duck-typed: any such client)
    request = rest.request
    if getattr(request, "_slipway_instrumented", False):
        return api

    async def counted(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        verb = kube_verb(method, url + ("?" + _query(kwargs) if _query(kwargs) else ""))
        started = time.monotonic()
        code = "error"
        try:
            response = await request(method, url, *args, **kwargs)
            code = str(getattr(response, "status", "") or "error")
            return response
        except Exception as error:
            code = str(getattr(error, "status", None) or "error")
            raise
        finally:
            KUBE_REQUESTS.labels(verb, code).inc()
            KUBE_DURATION.labels(verb).observe(time.monotonic() - started)

    counted._slipway_instrumented = True  # type: ignore[attr-defined]
    rest.request = counted
    return api


def _query(kwargs: Mapping[str, Any]) -> str:
    params = kwargs.get("query_params") or []
    pairs = params.items() if isinstance(params, Mapping) else params
    return "&".join(f"{key}={str(value).lower()}" for key, value in pairs if key == "watch")


# ------------------------------------------------------------------ state gauges
@dataclass(frozen=True)
class Census:
    """What the process holds right now: runs waiting to start, runs under way, and the
    workers alive by kind (`sequencerun`, `taskexecution`)."""

    queued: int
    running: int
    workers: Mapping[str, int]


class _CensusCollector(Collector):
    """Reads the census when Prometheus scrapes (no bookkeeping on the hot path)."""

    def __init__(self) -> None:
        self.source: Callable[[], Census] | None = None

    def collect(self) -> Iterable[GaugeMetricFamily]:
        census = self.source() if self.source is not None else Census(0, 0, {})
        queued = GaugeMetricFamily(
            "slipway_runs_queued", "SequenceRuns accepted and not yet started."
        )
        queued.add_metric([], census.queued)
        running = GaugeMetricFamily("slipway_runs_running", "SequenceRuns under way.")
        running.add_metric([], census.running)
        workers = GaugeMetricFamily(
            "slipway_workers_alive",
            "Worker coroutines alive, by the kind of object they drive.",
            labels=["kind"],
        )
        for kind in ("sequencerun", "taskexecution"):
            workers.add_metric([kind], census.workers.get(kind, 0))
        return [queued, running, workers]


_CENSUS = _CensusCollector()
REGISTRY.register(_CENSUS)


def census_from(source: Callable[[], Census] | None) -> None:
    """Where the state gauges read from (the process's one supervisor; None: nothing)."""
    _CENSUS.source = source


# ------------------------------------------------------------------ the endpoint
def serve(port: int, host: str = "0.0.0.0") -> Callable[[], None] | None:
    """Serve `/metrics` on `host:port` in a thread (scrapes never wait on the event loop);
    returns how to stop it, or None when `port` is 0 (metrics disabled)."""
    if not port:
        return None
    server, thread = start_http_server(port, addr=host)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop


def ownership(owned: int, total: int, members: int) -> None:
    """This replica's share of the running runs (with none running, its expected share,
    1/members) and the live members it sees (docs/scaling.md)."""
    if total:
        OWNED_SHARE.set(owned / total)
    else:
        OWNED_SHARE.set(1 / members if members else 0.0)
    MEMBERS.set(members)
