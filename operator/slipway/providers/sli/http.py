"""SLI values from any HTTP endpoint that answers JSON: GET the URL, follow a JSONPath.

Sources naming the same URL with the same credentials share one request. The value at the
path must be a number (or a boolean, or a string spelling a number: see `as_sli_value`); a
failed request, an answer that is not JSON, a path that names nothing or a value that is not a
number make that SLI an `SLIError` saying which.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from slipway.api.taskprovider import HttpSource
from slipway.engine.scoring import SLIError, SLIValue
from slipway.providers.sli.fetch import FetchError, FetchPolicy, get_json
from slipway.providers.sli.jsonpath import JsonPathError, find
from slipway.providers.sli.values import as_sli_value, error

Headers = Mapping[str, str] | SLIError
"""Extra request headers, or the error that prevented reading them."""


def _secret(source: HttpSource) -> str | None:
    return source.headers_from.secret_ref.name if source.headers_from else None


async def fetch_http(
    session: aiohttp.ClientSession,
    sources: Sequence[HttpSource],
    headers: Mapping[str | None, Headers],
    policy: FetchPolicy | None = None,
) -> dict[str, SLIValue]:
    """The value of each source, by its `name`. `headers` maps a Secret name (None: no
    Secret) to the headers it holds or to why they could not be read."""
    requests: dict[tuple[str, str | None], list[HttpSource]] = {}
    for source in sources:
        requests.setdefault((source.url, _secret(source)), []).append(source)

    async def one(url: str, secret: str | None) -> Any:
        extra = headers.get(secret, {})
        if isinstance(extra, SLIError):
            return extra
        try:
            return await get_json(session, url, headers=extra, policy=policy)
        except FetchError as failure:
            return error(f"GET {url}: {failure.message}")

    keys = list(requests)
    answers = await asyncio.gather(*(one(url, secret) for url, secret in keys))
    values: dict[str, SLIValue] = {}
    for key, answer in zip(keys, answers, strict=True):
        for source in requests[key]:
            values[source.name] = _value(source, answer)
    return values


def _value(source: HttpSource, answer: Any) -> SLIValue:
    if isinstance(answer, SLIError):
        return answer
    try:
        raw = find(answer, source.json_path)
    except JsonPathError as problem:
        return error(f"GET {source.url}: {problem}")
    value = as_sli_value(raw, source.json_path)
    return error(f"GET {source.url}: {value.message}") if isinstance(value, SLIError) else value
