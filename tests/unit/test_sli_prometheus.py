"""The Prometheus source against a local HTTP server speaking the Prometheus query API (a
stand-in; tests/cluster/test_evaluation.py queries a real Prometheus)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from slipway.api.taskprovider import PrometheusSource
from slipway.engine.scoring import SLIError, SLIValue
from slipway.providers.sli.fetch import FetchPolicy
from slipway.providers.sli.prometheus import fetch_prometheus, placeholders, read_result
from slipway.providers.sli.window import Window, WindowError
from tests.helpers import run_async
from tests.unit.sli_servers import FakePrometheus, serve, vector

END = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WINDOW = Window(END - timedelta(minutes=5), END, "task")
FAST = FetchPolicy(timeout=0.5, attempts=2, total=2, base_delay=0.01)


async def _fetch(
    server: FakePrometheus,
    queries: dict[str, str],
    *,
    window: Window | WindowError = WINDOW,
    headers: dict[str, str] | SLIError | None = None,
    prefix: str = "",
) -> dict[str, SLIValue]:
    async with serve({f"{prefix}/api/v1/query": server.query}) as url:
        source = PrometheusSource(url=url + prefix + "/", queries=queries)
        values = (
            placeholders(window, {"handler": "api"}, {"STAGE": "dev"})
            if isinstance(window, Window)
            else {}
        )
        async with aiohttp.ClientSession() as session:
            return await fetch_prometheus(
                session, source, window, values, headers if headers is not None else {}, FAST
            )


def test_a_single_sample_is_the_value_and_placeholders_are_replaced() -> None:
    """The query reaches the server with placeholders replaced, evaluated at the window's end,
    with the source's headers; one sample becomes the SLI's value."""
    server = FakePrometheus(
        {
            'sum(rate(errors{h="api",s="dev"}[300s]))': vector(({}, "0.25")),
            "scalar(up) @ 1714564800": (
                200,
                {"status": "success", "data": {"resultType": "scalar", "result": [1, "3"]}},
            ),
        }
    )
    values = run_async(
        _fetch(
            server,
            {
                "error_rate": 'sum(rate(errors{h="$HANDLER",s="$STAGE"}[$DURATION]))',
                "up": "scalar(up) @ $END",
            },
            headers={"Authorization": "Bearer abc"},
            prefix="/prometheus",
        )
    )
    assert values == {"error_rate": 0.25, "up": 3.0}
    assert {r["time"] for r in server.requests} == {"1714564800"}
    assert {r["headers"]["Authorization"] for r in server.requests} == {"Bearer abc"}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (vector(), "no data"),
        (
            vector(({"pod": "a"}, "1"), ({"pod": "b"}, "2")),
            'the query returned 2 series ({pod="a"}, {pod="b"}); aggregate it',
        ),
        (vector(({}, "NaN")), "the sample is NaN, not a finite number"),
        (vector(({}, "+Inf")), "the sample is +Inf, not a finite number"),
        (
            (200, {"status": "success", "data": {"resultType": "matrix", "result": []}}),
            "range vector",
        ),
        (
            (400, {"status": "error", "errorType": "bad_data", "error": "parse error at char 3"}),
            "prometheus: bad_data: parse error at char 3",
        ),
        (
            (422, {"status": "error", "errorType": "execution", "error": "too many samples"}),
            "execution: too many samples",
        ),
        ((200, ["not", "an", "answer"]), "not a Prometheus query API response"),
        ((404, {"message": "not here"}), "HTTP 404"),
    ],
)
def test_answers_that_are_not_one_number_are_errors(answer: tuple[int, Any], message: str) -> None:
    """Empty or several series, NaN, range vectors and Prometheus errors become SLIErrors."""
    server = FakePrometheus({"q": answer})
    [value] = run_async(_fetch(server, {"sli": "q"})).values()
    assert isinstance(value, SLIError)
    assert message in value.message


def test_a_server_error_is_retried_then_reported() -> None:
    """5xx answers are retried within the policy; the last error is reported with the count."""
    server = FakePrometheus({"q": (503, {"status": "error", "error": "overloaded"})})
    [value] = run_async(_fetch(server, {"sli": "q"})).values()
    assert isinstance(value, SLIError)
    assert "overloaded" in value.message
    assert len(server.requests) == 2


def test_a_slow_query_times_out_without_delaying_the_others() -> None:
    """Each request has its own timeout; a hanging query fails, the others have values."""
    server = FakePrometheus({"slow": vector(({}, "1")), "fast": vector(({}, "2"))})
    server.slow["slow"] = 1.5
    values = run_async(_fetch(server, {"a": "slow", "b": "fast"}))
    assert values["b"] == 2.0
    assert isinstance(values["a"], SLIError)
    assert "no answer within" in values["a"].message


def test_a_server_that_is_not_there_is_an_error() -> None:
    """A refused connection is an SLIError, not an exception."""

    async def scenario() -> SLIValue:
        async with serve({}) as url:
            pass  # the port is free again: nothing listens
        source = PrometheusSource(url=url, queries={"sli": "q"})
        async with aiohttp.ClientSession() as session:
            values = await fetch_prometheus(session, source, WINDOW, {}, {}, FAST)
        return values["sli"]

    value = run_async(scenario())
    assert isinstance(value, SLIError)
    assert "cannot connect" in value.message


def test_without_a_window_or_credentials_no_query_is_sent() -> None:
    """A window error or unreadable credentials fail every SLI of the source with that text."""
    server = FakePrometheus({"q": vector(({}, "1"))})
    no_window = run_async(_fetch(server, {"a": "q"}, window=WindowError("the run has no start")))
    no_secret = run_async(_fetch(server, {"a": "q"}, headers=SLIError("cannot read Secret s")))
    assert no_window == {"a": SLIError("prometheus: no evaluation window: the run has no start")}
    assert no_secret == {"a": SLIError("prometheus: cannot read Secret s")}
    assert server.requests == []


def test_read_result_accepts_a_scalar() -> None:
    """A scalar answer is a number too."""
    body = {"status": "success", "data": {"resultType": "scalar", "result": [1, "0.5"]}}
    assert read_result(body) == 0.5
