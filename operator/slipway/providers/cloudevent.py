"""Remote tools: POST `<task>.triggered` to a URL and read a synchronous answer.

Delivery contract: each POST has its own timeout; connection errors, timeouts, 5xx and 429
are retried with jittered exponential backoff (honouring `Retry-After` on 429/503), at most
`attempts` times and within `total` seconds; redirects are never followed (a tool that moved
must be reconfigured, not silently chased); every retry sends the same event (same id), so a
tool that saw it already can drop the duplicate. A 2xx body that is a `.started` or
`.finished` CloudEvent is the tool's synchronous answer.

A tool cannot make a delivery hang or eat memory: each POST, answer included, ends within
its timeout (a tool that answers byte by byte is cut off), an answer is read up to
`max_answer` bytes only, a `Retry-After` longer than what is left of `total` ends the
delivery at once, and an answer that claims to be a CloudEvent but is not a usable response
(invalid, another task's, a `.triggered`) fails the delivery with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from slipway.engine.retry import RetryPolicy
from slipway.events import MAX_EVENT_SIZE, EventError, TaskResponse, parse_sync_response

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
    max_answer: int = MAX_EVENT_SIZE,
) -> Delivery:
    """POST one event until it is accepted or the policy gives up. Never raises for network
    or HTTP errors, nor for a tool's unusable answer: they are reported in the returned
    `Delivery`."""
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
                payload = await _read_bounded(reply, max_answer)
                if payload is None:
                    error = (
                        f"{url} answered HTTP {status} with more than {max_answer} bytes: "
                        "an answer that large is not read"
                    )
                    return Delivery(ok=False, tries=attempt + 1, status=status, error=error)
                if 200 <= status < 300:
                    try:
                        response = _sync_answer(
                            reply.headers, payload, task, triggered_id, prefix, max_answer
                        )
                    except EventError as bad:
                        error = f"{url} answered with an event Slipway cannot use: {bad.message}"
                        return Delivery(ok=False, tries=attempt + 1, status=status, error=error)
                    return Delivery(ok=True, tries=attempt + 1, status=status, response=response)
                error = f"{url} answered HTTP {status}: {payload[:200].decode(errors='replace')}"
                if 300 <= status < 400:
                    error = (
                        f"{url} answered HTTP {status}, a redirect to "
                        f"{reply.headers.get('Location', 'nowhere')!r}: redirects are not "
                        "followed; point the TaskProvider at the tool's real URL"
                    )
                if status not in RETRYABLE_STATUSES:
                    return Delivery(ok=False, tries=attempt + 1, status=status, error=error)
                retry_after = _retry_after(reply.headers.get("Retry-After"))
        except TimeoutError:
            error = f"{url} did not answer completely within {per_request:g} s (the timeout)"
        except aiohttp.ClientError as exc:
            error = f"could not reach {url}: {type(exc).__name__}: {exc}".rstrip(": ")
        if retry_after is not None and loop.time() + retry_after > deadline:
            error += f"; it asked to retry after {retry_after:g} s, past the delivery's limit"
            return Delivery(ok=False, tries=attempt + 1, status=status, error=error)
        pause = policy.delay(attempt, retry_after)
        if attempt + 1 >= policy.attempts or loop.time() + pause > deadline:
            return Delivery(ok=False, tries=attempt + 1, status=status, error=error)
        log.info("delivery to %s failed (%s); retrying in %.1f s", url, error, pause)
        await asyncio.sleep(pause)
    return Delivery(ok=False, tries=policy.attempts, status=status, error=error)


async def _read_bounded(reply: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The answer's body, or None when it is longer than `limit` bytes (not read further)."""
    if (reply.content_length or 0) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in reply.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _sync_answer(
    headers: Mapping[str, str],
    payload: bytes,
    task: str,
    triggered_id: str,
    prefix: str,
    max_size: int,
) -> TaskResponse | None:
    """The synchronous answer in a 2xx, None when there is none (an empty body, or a body
    that does not claim to be a CloudEvent: an asynchronous tool). Raises EventError when it
    claims to be one but is not a usable response."""
    if not payload.strip():
        return None
    return parse_sync_response(
        headers, payload, task=task, triggered_id=triggered_id, prefix=prefix, max_size=max_size
    )


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
