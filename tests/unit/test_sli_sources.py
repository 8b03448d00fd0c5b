"""All sources of an evaluation together: which SLI comes from where, and the deadline."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp import web

from slipway.api.taskprovider import Sources
from slipway.engine.scoring import SLIError, SLIValue
from slipway.providers.sli.fetch import FetchPolicy
from slipway.providers.sli.sources import collect, defined_by
from slipway.providers.sli.window import Window
from tests.helpers import run_async
from tests.unit.sli_servers import FakePrometheus, serve, vector

END = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WINDOW = Window(END - timedelta(minutes=5), END, "task")


def _sources(url: str) -> Sources:
    return Sources.model_validate(
        {
            "prometheus": {"url": url, "queries": {"error_rate": "errors", "twice": "errors"}},
            "http": [
                {"name": "p95", "url": f"{url}/latency", "jsonPath": "$.p95"},
                {"name": "twice", "url": f"{url}/latency", "jsonPath": "$.p95"},
            ],
            "data": {"exif": "$.extract-metadata.exif"},
        }
    )


async def _collect(sources: Sources, policy: FetchPolicy | None = None) -> dict[str, SLIValue]:
    async with aiohttp.ClientSession() as session:
        return await collect(
            session,
            sources,
            wanted=["error_rate", "p95", "exif", "unknown"],
            window=WINDOW,
            placeholders={},
            data={"extract-metadata": {"exif": False}},
            headers={None: {}},
            policy=policy,
        )


def test_each_sli_comes_from_the_source_that_defines_it() -> None:
    """Prometheus, HTTP and data values are merged; an SLI defined twice or not at all is an
    error saying so, and does not hide the others."""
    prometheus = FakePrometheus({"errors": vector(({}, "0.5"))})

    async def latency(_: web.Request) -> web.StreamResponse:
        return web.json_response({"p95": 300})

    async def scenario() -> dict[str, SLIValue]:
        async with serve({"/api/v1/query": prometheus.query, "/latency": latency}) as url:
            return await _collect(_sources(url))

    values = run_async(scenario())
    assert values == {
        "error_rate": 0.5,
        "p95": 300.0,
        "exif": 0.0,
        "twice": SLIError("SLI 'twice' is defined by more than one source (prometheus, http)"),
        "unknown": SLIError("no source defines SLI 'unknown'"),
    }
    assert defined_by(_sources("http://x"))["twice"] == ["prometheus", "http"]


def test_sources_that_do_not_answer_in_time_fail_their_slis_and_leave_no_task() -> None:
    """Past the policy's total time every unanswered SLI is an error; data values remain and
    no request is left running (run_async fails on leaked tasks)."""

    async def hang(_: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1.5)
        return web.json_response({})

    async def scenario() -> tuple[dict[str, SLIValue], float]:
        async with serve({"/api/v1/query": hang, "/latency": hang}) as url:
            loop = asyncio.get_running_loop()
            started = loop.time()
            # A generous per-request timeout: the total time of 0.2 s is what must end it.
            policy = FetchPolicy(timeout=60, attempts=3, total=0.2)
            values = await _collect(_sources(url), policy)
            return values, loop.time() - started

    values, took = run_async(scenario())
    assert values["exif"] == 0.0
    for name in ("error_rate", "p95"):
        assert isinstance(values[name], SLIError), name
    assert took < 1.4
