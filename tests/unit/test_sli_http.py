"""The HTTP JSON source and the bounded fetch under it, against real local servers."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from slipway.api.taskprovider import HttpSource
from slipway.engine.scoring import SLIError, SLIValue
from slipway.providers.sli.fetch import FetchError, FetchPolicy, get_json
from slipway.providers.sli.http import Headers, fetch_http
from tests.helpers import run_async
from tests.unit.sli_servers import serve

FAST = FetchPolicy(timeout=0.5, attempts=3, total=3, base_delay=0.01)


class Endpoint:
    """A JSON endpoint that counts its requests and can fail a few times first."""

    def __init__(self, body: Any, failures: int = 0, status: int = 200) -> None:
        self.body = body
        self.failures = failures
        self.status = status
        self.requests: list[dict[str, str]] = []

    async def get(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(dict(request.headers))
        if len(self.requests) <= self.failures:
            return web.Response(status=502, text="bad gateway")
        return web.json_response(self.body, status=self.status)


async def _fetch(
    routes: dict[str, Endpoint],
    sources: list[dict[str, Any]],
    headers: dict[str | None, Headers] | None = None,
) -> dict[str, SLIValue]:
    async with serve({path: endpoint.get for path, endpoint in routes.items()}) as url:
        parsed = [
            HttpSource.model_validate({**source, "url": url + source["url"]}) for source in sources
        ]
        async with aiohttp.ClientSession() as session:
            return await fetch_http(session, parsed, headers or {None: {}}, FAST)


def test_values_are_read_by_json_path_and_one_url_is_fetched_once() -> None:
    """Two SLIs of one URL share a request; numbers, numeric strings and booleans are values."""
    metrics = Endpoint({"latency": {"p95": 412.5, "p50": "120"}, "healthy": True})
    values = run_async(
        _fetch(
            {"/metrics": metrics},
            [
                {"name": "p95", "url": "/metrics", "jsonPath": "$.latency.p95"},
                {"name": "p50", "url": "/metrics", "jsonPath": "$.latency['p50']"},
                {"name": "healthy", "url": "/metrics", "jsonPath": "$.healthy"},
            ],
        )
    )
    assert values == {"p95": 412.5, "p50": 120.0, "healthy": 1.0}
    assert len(metrics.requests) == 1


def test_headers_from_a_secret_are_sent_and_an_unreadable_secret_fails_its_slis() -> None:
    """Each source's Secret headers go with its request; a Secret that could not be read makes
    its SLIs fail without a request."""
    secured = Endpoint({"v": 1})
    values = run_async(
        _fetch(
            {"/secured": secured},
            [
                {
                    "name": "a",
                    "url": "/secured",
                    "jsonPath": "$.v",
                    "headersFrom": {"secretRef": {"name": "creds"}},
                },
                {
                    "name": "b",
                    "url": "/secured",
                    "jsonPath": "$.v",
                    "headersFrom": {"secretRef": {"name": "missing"}},
                },
            ],
            {
                None: {},
                "creds": {"Authorization": "Bearer t0ken"},
                "missing": SLIError("cannot read Secret missing: 404 Not Found"),
            },
        )
    )
    assert values == {"a": 1.0, "b": SLIError("cannot read Secret missing: 404 Not Found")}
    assert [r["Authorization"] for r in secured.requests] == ["Bearer t0ken"]


@pytest.mark.parametrize(
    ("endpoint", "path", "message"),
    [
        (Endpoint({"a": {}}), "$.a.b", "$.a has no key 'b'"),
        (Endpoint({"a": "fast"}), "$.a", "$.a is the string 'fast', not a number"),
        (Endpoint({"a": None}), "$.a", "is null"),
        (Endpoint({"a": [1, 2]}), "$.a", "is a list, not a number"),
        (Endpoint({"error": "nope"}, status=403), "$.a", 'HTTP 403: {"error": "nope"}'),
        (Endpoint({}, failures=5), "$.a", "HTTP 502: bad gateway (after 3 tries)"),
    ],
)
def test_what_cannot_be_a_value_is_an_error_naming_the_url(
    endpoint: Endpoint, path: str, message: str
) -> None:
    """Missing keys, non-numbers and HTTP errors become SLIErrors that say where."""
    values = run_async(_fetch({"/m": endpoint}, [{"name": "x", "url": "/m", "jsonPath": path}]))
    assert isinstance(values["x"], SLIError)
    assert message in values["x"].message
    assert values["x"].message.startswith("GET http://127.0.0.1:")


def test_transient_failures_are_retried_until_an_answer() -> None:
    """A 502 followed by an answer gives the answer."""
    flaky = Endpoint({"v": 7}, failures=2)
    values = run_async(_fetch({"/m": flaky}, [{"name": "x", "url": "/m", "jsonPath": "$.v"}]))
    assert values == {"x": 7.0}
    assert len(flaky.requests) == 3


def test_a_client_error_is_not_retried() -> None:
    """A 4xx answer is final: asking again would not change it."""
    missing = Endpoint({"error": "no such metric"}, status=404)
    run_async(_fetch({"/m": missing}, [{"name": "x", "url": "/m", "jsonPath": "$.v"}]))
    assert len(missing.requests) == 1


def test_get_json_refuses_non_json_and_oversized_answers_and_gives_up_in_time() -> None:
    """A body that is not JSON, one over the size limit, and a server that never answers all
    end in a FetchError within the policy's bounds."""

    async def text(_: web.Request) -> web.StreamResponse:
        return web.Response(text="<html>hello</html>")

    async def big(_: web.Request) -> web.StreamResponse:
        return web.json_response({"pad": "x" * 5000})

    async def hang(_: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1)
        return web.json_response({})

    async def scenario() -> tuple[list[str], float]:
        policy = FetchPolicy(timeout=0.3, attempts=5, total=0.8, base_delay=0.01, max_bytes=1000)
        errors = []
        async with (
            serve({"/text": text, "/big": big, "/hang": hang}) as url,
            aiohttp.ClientSession() as session,
        ):
            loop = asyncio.get_running_loop()
            for path in ("/text", "/big"):
                with pytest.raises(FetchError) as caught:
                    await get_json(session, url + path, policy=policy)
                errors.append(caught.value.message)
            started = loop.time()
            with pytest.raises(FetchError) as caught:
                await get_json(session, url + "/hang", policy=policy)
            errors.append(caught.value.message)
            return errors, loop.time() - started

    errors, took = run_async(scenario())
    assert errors[0] == "the answer is not JSON: <html>hello</html>"
    assert errors[1] == "the answer is larger than 1000 bytes"
    assert errors[2].startswith("no answer within")
    assert "tries" in errors[2]
    assert took < 1.5
