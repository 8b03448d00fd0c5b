"""Remote tools: POST `<task>.triggered` to a URL and read a synchronous answer.

Delivery contract: each POST has its own timeout; connection errors, timeouts, 5xx and 429
are retried with jittered exponential backoff (honouring `Retry-After` on 429/503), at most
`attempts` times and within `total` seconds; redirects are never followed (a tool that moved
must be reconfigured, not silently chased); every retry sends the same event (same id), so a
tool that saw it already can drop the duplicate. A 2xx body that is a `.started` or
`.finished` CloudEvent is the tool's synchronous answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from slipway.engine.retry import RetryPolicy
from slipway.events import EventError, TaskResponse, parse_sync_response

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Delivery:
    """How a delivery ended: `ok` with an optional synchronous `response`, or not `ok` with
    the `error` a person can act on; `tries` POSTs were made."""

    ok: bool
    tries: int
    status: int | None = None
    response: TaskResponse | None = None
    error: str | None = None


async def deliver(
    session: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    task: str,
    triggered_id: str,
    per_request: float,
    prefix: str = "",
    policy: RetryPolicy | None = None,
) -> Delivery:
    """POST one event until it is accepted or the policy gives up. Never raises for network
    or HTTP errors: they are reported in the returned `Delivery`."""
    policy = policy or RetryPolicy()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + policy.total
    error = "not sent"
    status: int | None = None
    for attempt in range(policy.attempts):
        retry_after: float | None = None
        try:
            async with session.post(
                url,
                data=body,
                headers=dict(headers),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=per_request),
            ) as reply:
                status = reply.status
                payload = await reply.read()
                if 200 <= status < 300:
                    return Delivery(
                        ok=True,
                        tries=attempt + 1,
                        status=status,
                        response=_sync_answer(reply.headers, payload, task, triggered_id, prefix),
                    )
                error = f"{url} answered HTTP {status}: {payload[:200].decode(errors='replace')}"
                if status not in RETRYABLE_STATUSES:
                    return Delivery(ok=False, tries=attempt + 1, status=status, error=error)
                retry_after = _retry_after(reply.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"could not reach {url}: {type(exc).__name__}: {exc}".rstrip(": ")
        pause = policy.delay(attempt, retry_after)
        if attempt + 1 >= policy.attempts or loop.time() + pause > deadline:
            return Delivery(ok=False, tries=attempt + 1, status=status, error=error)
        log.info("delivery to %s failed (%s); retrying in %.1f s", url, error, pause)
        await asyncio.sleep(pause)
    return Delivery(ok=False, tries=policy.attempts, status=status, error=error)


def _sync_answer(
    headers: Mapping[str, str], payload: bytes, task: str, triggered_id: str, prefix: str
) -> TaskResponse | None:
    if not payload.strip():
        return None
    try:
        return parse_sync_response(
            headers, payload, task=task, triggered_id=triggered_id, prefix=prefix
        )
    except EventError as error:
        log.warning("ignoring a synchronous answer that is not a valid response: %s", error)
        return None


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
