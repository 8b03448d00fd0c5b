"""The gateway's limits and how it protects itself and the API server.

`GatewayLimits` holds every bound (each a setting, docs/events.md). `UnavailableError` is the one
way a handler says "not now": the error middleware answers it 503 with `Retry-After`.
`api_call` bounds one Kubernetes API call in time and turns a slow or failing API server
into `UnavailableError`, so the gateway never queues requests behind it without bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp

from slipway.engine.sizes import DataLimits
from slipway.events import JsonLimits
from slipway.kube.errors import KubeError
from slipway.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class GatewayLimits:
    """Every bound of the gateway; the defaults are the settings' defaults."""

    max_body_bytes: int = 1 << 20
    max_line_bytes: int = 8190
    max_field_bytes: int = 8190
    max_headers: int = 100
    json: JsonLimits = field(default_factory=JsonLimits)
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    api_timeout: float = 5.0
    max_inflight: int = 128
    review_concurrency: int = 8
    review_cache_seconds: float = 10.0
    review_negative_cache_seconds: float = 30.0
    retry_after_seconds: int = 5
    data: DataLimits = field(default_factory=DataLimits)

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayLimits:
        return cls(
            max_body_bytes=settings.gateway_max_body_bytes,
            max_line_bytes=settings.gateway_max_line_bytes,
            max_field_bytes=settings.gateway_max_field_bytes,
            max_headers=settings.gateway_max_headers,
            json=JsonLimits(
                max_depth=settings.gateway_max_json_depth,
                max_keys=settings.gateway_max_json_keys,
                max_string=settings.gateway_max_json_string,
            ),
            header_timeout=settings.gateway_header_timeout,
            body_timeout=settings.gateway_body_timeout,
            api_timeout=settings.gateway_api_timeout,
            max_inflight=settings.gateway_max_inflight,
            review_concurrency=settings.gateway_review_concurrency,
            review_cache_seconds=settings.gateway_review_cache_seconds,
            review_negative_cache_seconds=settings.gateway_review_negative_cache_seconds,
            retry_after_seconds=settings.gateway_retry_after_seconds,
            data=data_limits(settings),
        )


def data_limits(settings: Settings) -> DataLimits:
    """The bounds on runs' data and tasks' outputs (`engine.sizes`) from the settings."""
    return DataLimits(
        max_run_data=settings.max_run_data_bytes, max_task_output=settings.max_task_output_bytes
    )


class UnavailableError(Exception):
    """The gateway cannot answer now (the API server is slow or down, or the gateway is
    busy): 503 with `Retry-After`. `message` says which, for the caller."""

    def __init__(self, message: str, error: str = "unavailable") -> None:
        super().__init__(message)
        self.message = message
        self.error = error


#: API server answers that mean "try again later", not "your request is wrong".
_TRANSIENT = frozenset({429, 500, 502, 503, 504})


async def api_call(call: Awaitable[T], seconds: float) -> T:
    """Await one Kubernetes API call for at most `seconds`. A timeout, a connection
    error or a transient API status (429, 5xx) raises `UnavailableError`; any other KubeError
    is passed on for the caller to map."""
    try:
        return await asyncio.wait_for(call, seconds)
    except TimeoutError as exc:
        raise UnavailableError(
            f"the Kubernetes API server did not answer within {seconds:g} s "
            "(SLIPWAY_GATEWAY_API_TIMEOUT)",
            "api_unavailable",
        ) from exc
    except aiohttp.ClientError as exc:
        raise UnavailableError(
            f"the Kubernetes API server cannot be reached: {type(exc).__name__}",
            "api_unavailable",
        ) from exc
    except KubeError as exc:
        if exc.status in _TRANSIENT or not exc.status:
            raise UnavailableError(
                f"the Kubernetes API server answered {exc.status} {exc.reason}",
                "api_unavailable",
            ) from exc
        raise


class InflightGate:
    """At most `limit` requests at once; the next one is refused instead of queued."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inflight = 0

    def enter(self) -> None:
        if self.inflight >= self.limit:
            raise UnavailableError(
                f"the gateway is already working on {self.limit} requests "
                "(SLIPWAY_GATEWAY_MAX_INFLIGHT); try again shortly",
                "busy",
            )
        self.inflight += 1

    def leave(self) -> None:
        self.inflight -= 1
