"""SLI values from Prometheus: one instant query per SLI, through the HTTP query API.

Each query is `GET <url>/api/v1/query?query=...&time=<window end>` after its placeholders are
replaced (see `placeholders`). The answer must be a single number: a scalar, or an instant
vector with exactly one sample. No sample ("no data"), several series, a range vector, NaN or
an infinity make that SLI an `SLIError` saying so; so does any error Prometheus reports (its
`errorType` and `error`) or a failed request. The queries run concurrently.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

import aiohttp

from slipway.api.taskprovider import PrometheusSource
from slipway.engine.scoring import SLIError, SLIValue
from slipway.providers.sli.fetch import FetchError, FetchPolicy, get_json
from slipway.providers.sli.values import as_sli_value, error
from slipway.providers.sli.window import Window, WindowError, unix_seconds

QUERY_PATH = "/api/v1/query"


def placeholders(
    window: Window, slo_filter: Mapping[str, str], identity: Mapping[str, str]
) -> dict[str, str]:
    """What each `$NAME` in a query becomes (names are case-sensitive):
    - `$DURATION` and `$DURATION_SECONDS`: the window's length as a PromQL duration in whole
      seconds, e.g. `300s` (`$DURATION_SECONDS` is Keptn's name for the same value);
    - `$START` and `$END`: the window's bounds in unix seconds (`1714557600`), the form PromQL's
      `@` modifier reads (`metric @ $END`); the query itself is evaluated at `$END`;
    - each key of the SLO's `filter`, as written and in capitals (Keptn's spelling): `filter:
      {handler: api}` gives `$handler` and `$HANDLER`; the value with `\\` and `"` escaped, so
      it can stand inside a label matcher's double quotes;
    - `identity`: `$SHIPYARD`, `$STAGE`, `$SEQUENCE`, `$TASK`, `$RUN`, `$NAMESPACE` (a filter
      key of the same name replaces these; the window's four names cannot be replaced).
    """
    values = dict(identity)
    for key, value in slo_filter.items():
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        values[key.upper()] = escaped
        values[key] = escaped
    duration = f"{window.seconds}s"
    values.update(
        DURATION=duration,
        DURATION_SECONDS=duration,
        START=unix_seconds(window.start),
        END=unix_seconds(window.end),
    )
    return values


def substitute(query: str, values: Mapping[str, str]) -> str:
    """`query` with each `$NAME` of `values` replaced. A name is replaced only where it is not
    followed by a letter, digit or `_` (so `$DURATION_SECONDS` is never read as `$DURATION`);
    a `$` before anything else is left as it is."""
    if not values:
        return query
    names = sorted(values, key=len, reverse=True)
    pattern = re.compile(
        r"\$(" + "|".join(re.escape(name) for name in names) + r")(?![A-Za-z0-9_])"
    )
    return pattern.sub(lambda match: values[match.group(1)], query)


async def fetch_prometheus(
    session: aiohttp.ClientSession,
    source: PrometheusSource,
    window: Window | WindowError,
    values: Mapping[str, str],
    headers: Mapping[str, str] | SLIError,
    policy: FetchPolicy | None = None,
) -> dict[str, SLIValue]:
    """Every query of `source`, run concurrently at the window's end. `window` is a
    WindowError when no window could be chosen, `headers` an SLIError when the source's
    credentials could not be read: then every SLI of the source has that error."""
    if isinstance(window, WindowError):
        problem = error(f"prometheus: no evaluation window: {window}")
        return dict.fromkeys(source.queries, problem)
    if isinstance(headers, SLIError):
        return dict.fromkeys(source.queries, error(f"prometheus: {headers.message}"))
    url = source.url.rstrip("/") + QUERY_PATH
    time = unix_seconds(window.end)

    async def one(query: str) -> SLIValue:
        text = substitute(query, values)
        try:
            body = await get_json(
                session, url, params={"query": text, "time": time}, headers=headers, policy=policy
            )
        except FetchError as failure:
            return error(f"prometheus: {_api_error(failure.body) or failure.message}")
        return read_result(body)

    names = list(source.queries)
    results = await asyncio.gather(*(one(source.queries[name]) for name in names))
    return dict(zip(names, results, strict=True))


def read_result(body: Any) -> SLIValue:
    """The number an instant query's answer (the JSON of `/api/v1/query`) holds, or why
    there is none."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        return error("prometheus: the answer is not a Prometheus query API response")
    if body.get("status") != "success":
        return error(f"prometheus: {_api_error(body) or 'the query failed'}")
    data = body["data"]
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        return _sample(result[1])
    if kind == "vector" and isinstance(result, list):
        if not result:
            return error("prometheus: no data (the query returned no series for this window)")
        if len(result) > 1:
            shown = ", ".join(_labels(series) for series in result[:3])
            more = ", …" if len(result) > 3 else ""
            return error(
                f"prometheus: the query returned {len(result)} series ({shown}{more}); "
                "aggregate it to one (sum, avg, max, ...)"
            )
        series = result[0]
        value = series.get("value") if isinstance(series, dict) else None
        if isinstance(value, list) and len(value) == 2:
            return _sample(value[1])
    if kind == "matrix":
        return error(
            "prometheus: the query returned a range vector; write an instant query "
            "(for example wrap it in avg_over_time(...[$DURATION]))"
        )
    return error(f"prometheus: cannot read a result of type {kind!r}")


def _sample(raw: Any) -> SLIValue:
    value = as_sli_value(raw, "the sample")
    if isinstance(value, SLIError):
        return SLIError(f"prometheus: {value.message}")
    return value


def _labels(series: Any) -> str:
    metric = series.get("metric") if isinstance(series, dict) else None
    if not isinstance(metric, dict) or not metric:
        return "{}"
    pairs = ", ".join(f'{key}="{value}"' for key, value in sorted(metric.items()))
    return "{" + pairs + "}"


def _api_error(body: Any) -> str | None:
    """Prometheus's own explanation in an error answer: `<errorType>: <error>`."""
    if isinstance(body, dict) and body.get("status") == "error" and body.get("error"):
        kind = body.get("errorType")
        return f"{kind}: {body['error']}" if kind else str(body["error"])
    return None
