"""Real HTTP servers on loopback for the SLI source tests (aiohttp, port chosen by the OS)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve(routes: Mapping[str, Handler]) -> AsyncIterator[str]:
    """Serve `routes` (path -> GET handler) on 127.0.0.1 and yield the base URL."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


class FakePrometheus:
    """A server speaking the Prometheus HTTP query API (`GET /api/v1/query`): answers are
    looked up by the query text received; every request's parameters and headers are kept.
    Not Prometheus itself: the cluster test queries a real one."""

    def __init__(self, answers: Mapping[str, tuple[int, Any]]) -> None:
        self.answers = dict(answers)
        self.requests: list[dict[str, Any]] = []
        self.slow: dict[str, float] = {}

    async def query(self, request: web.Request) -> web.StreamResponse:
        query = request.query.get("query", "")
        self.requests.append({**request.query, "headers": dict(request.headers)})
        if query in self.slow:
            await asyncio.sleep(self.slow[query])
        status, body = self.answers.get(
            query, (400, {"status": "error", "errorType": "bad_data", "error": "unknown query"})
        )
        return web.json_response(body, status=status)


def vector(*samples: tuple[dict[str, str], str]) -> tuple[int, dict[str, Any]]:
    """A successful instant-vector answer with the given (labels, value) samples."""
    result = [{"metric": labels, "value": [1714564800, value]} for labels, value in samples]
    return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}
