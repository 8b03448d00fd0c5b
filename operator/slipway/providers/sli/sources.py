"""All SLI values of an evaluation, fetched from its sources concurrently, within a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Mapping
from typing import Any

import aiohttp

from slipway.api.taskprovider import HeadersFrom, Sources
from slipway.engine.scoring import SLIError, SLIValue
from slipway.providers.sli.data import values_from_data
from slipway.providers.sli.fetch import FetchPolicy
from slipway.providers.sli.http import Headers, fetch_http
from slipway.providers.sli.prometheus import fetch_prometheus
from slipway.providers.sli.window import Window, WindowError


def defined_by(sources: Sources) -> dict[str, list[str]]:
    """SLI name -> the kinds of source that define it (`prometheus`, `http`, `data`)."""
    found: dict[str, list[str]] = {}
    if sources.prometheus is not None:
        for name in sources.prometheus.queries:
            found.setdefault(name, []).append("prometheus")
    for source in sources.http:
        found.setdefault(source.name, []).append("http")
    for name in sources.data:
        found.setdefault(name, []).append("data")
    return found


async def collect(
    session: aiohttp.ClientSession,
    sources: Sources,
    *,
    wanted: Iterable[str],
    window: Window | WindowError,
    placeholders: Mapping[str, str],
    data: Mapping[str, Any],
    headers: Mapping[str | None, Headers],
    policy: FetchPolicy | None = None,
) -> dict[str, SLIValue]:
    """The value of every SLI the sources define, and of each name in `wanted` (the SLO's
    SLIs): an SLI no source defines, or more than one source defines, gets an `SLIError`
    saying so. Remote sources are asked concurrently; whatever has not answered within the
    policy's `total` (plus a grace second) gets an `SLIError` too, so this always returns."""
    policy = policy or FetchPolicy()
    jobs: dict[str, Coroutine[Any, Any, dict[str, SLIValue]]] = {}
    if sources.prometheus is not None:
        prometheus_headers = headers.get(_secret(sources.prometheus.headers_from), {})
        jobs["prometheus"] = fetch_prometheus(
            session, sources.prometheus, window, placeholders, prometheus_headers, policy
        )
    if sources.http:
        jobs["http"] = fetch_http(session, sources.http, headers, policy)
    tasks = {kind: asyncio.create_task(job, name=f"sli-{kind}") for kind, job in jobs.items()}
    fetched: dict[str, dict[str, SLIValue]] = {"data": values_from_data(sources.data, data)}
    try:
        if tasks:
            await asyncio.wait(tasks.values(), timeout=policy.total + 1)
    finally:  # also when this evaluation is cancelled: no request outlives it
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
    for kind, task in tasks.items():
        if task.cancelled() or task.exception() is not None:
            problem = "no answer in time" if task.cancelled() else repr(task.exception())
            fetched[kind] = dict.fromkeys(_names(sources, kind), SLIError(f"{kind}: {problem}"))
        else:
            fetched[kind] = task.result()
    values: dict[str, SLIValue] = {}
    definers = defined_by(sources)
    for name, kinds in definers.items():
        if len(kinds) > 1:
            values[name] = SLIError(
                f"SLI {name!r} is defined by more than one source ({', '.join(kinds)})"
            )
        else:
            values[name] = fetched[kinds[0]].get(name)
    for name in wanted:
        if name not in definers:
            values[name] = SLIError(f"no source defines SLI {name!r}")
    return values


def _names(sources: Sources, kind: str) -> list[str]:
    if kind == "prometheus":
        return list(sources.prometheus.queries) if sources.prometheus else []
    return [source.name for source in sources.http]


def _secret(headers_from: HeadersFrom | None) -> str | None:
    return headers_from.secret_ref.name if headers_from is not None else None
