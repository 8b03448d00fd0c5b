"""One bounded HTTP GET of a JSON document, shared by the Prometheus and HTTP sources.

Contract: each request has its own timeout; connection errors, timeouts, 429 and 5xx answers
are retried with full-jitter exponential backoff, at most `attempts` times and within `total`
seconds, so a call always ends; any other answer is final. Bodies larger than `max_bytes` are
refused. Never raises anything but `FetchError`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from slipway.engine.retry import RetryPolicy

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class FetchPolicy(RetryPolicy):
    """Bounds of one fetch: the retry policy, with fewer attempts and less time than a
    delivery's, plus a per-request timeout and a size limit."""

    attempts: int = 3
    total: float = 30.0
    timeout: float = 10.0
    """Seconds one request may take, from connecting to the last byte."""
    max_bytes: int = 4 * 1024 * 1024
    """The largest body read."""


class FetchError(Exception):
    """The document could not be fetched. `status` is the last HTTP status (None: no answer),
    `body` the last answer's parsed JSON body, if it had one (APIs explain errors there)."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


async def get_json(
    session: aiohttp.ClientSession,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    policy: FetchPolicy | None = None,
) -> Any:
    """GET `url` and return its parsed JSON body (2xx answers only). Raises FetchError."""
    policy = policy or FetchPolicy()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + policy.total
    last = FetchError("not requested")
    tries = 0
    while tries < max(1, policy.attempts):
        if tries:
            pause = policy.delay(tries - 1)
            if loop.time() + pause >= deadline:
                break
            await asyncio.sleep(pause)
        left = deadline - loop.time()
        if left <= 0:
            break
        tries += 1
        try:
            return await _get_once(session, url, params, headers, min(policy.timeout, left), policy)
        except FetchError as error:
            last = error
            if error.status is not None and error.status not in RETRYABLE_STATUSES:
                raise
    if tries > 1:
        raise FetchError(f"{last.message} (after {tries} tries)", last.status, last.body)
    raise last


async def _get_once(
    session: aiohttp.ClientSession,
    url: str,
    params: Mapping[str, str] | None,
    headers: Mapping[str, str] | None,
    seconds: float,
    policy: FetchPolicy,
) -> Any:
    try:
        async with session.get(
            url,
            params=dict(params or {}),
            headers={"Accept": "application/json", **(headers or {})},
            timeout=aiohttp.ClientTimeout(total=seconds),
        ) as response:
            raw = await _read(response, policy.max_bytes)
            status = response.status
    except TimeoutError:
        raise FetchError(f"no answer within {seconds:g} s") from None
    except aiohttp.ClientError as error:
        raise FetchError(_describe(error)) from None
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
        if 200 <= status < 300:
            raise FetchError(f"the answer is not JSON: {_snippet(raw)}", status) from None
    if not 200 <= status < 300:
        raise FetchError(f"HTTP {status}: {_snippet(raw)}", status, body)
    return body


async def _read(response: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise FetchError(f"the answer is larger than {limit} bytes", response.status)
        chunks.append(chunk)
    return b"".join(chunks)


def _describe(error: aiohttp.ClientError) -> str:
    text = str(error) or type(error).__name__
    return f"cannot connect: {text}" if isinstance(error, aiohttp.ClientConnectionError) else text


def _snippet(raw: bytes, limit: int = 200) -> str:
    text = " ".join(raw.decode("utf-8", "replace").split())
    if not text:
        return "(empty body)"
    return text if len(text) <= limit else text[: limit - 1] + "…"
