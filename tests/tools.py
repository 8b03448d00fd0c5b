"""A real HTTP tool for tests: receives CloudEvents, answers as it is told, calls back.

It runs an aiohttp server on its own thread and event loop, on a free loopback port, records
every request, and behaves per task name (`behave[task]`):
- "sync-pass" / "sync-warning" / "sync-fail": answer the POST with a `.finished` event;
- "async": answer 202, then POST `.started`, a `.status.changed` and `.finished`
  (result `tool_result`, output `tool_output`) to the callback URL with the callback token;
- "silent": answer 202 and never call back;
- "flaky": answer 503 twice, then behave as "async";
- "started-only": answer 202, POST `.started`, and nothing more;
- "fail-then-pass": the first event answered with a `.finished` fail, later ones pass;
- "slow": as "async", after `delay` seconds (runs stay in flight for a while).

Callbacks are retried as a well-behaved tool retries them: on 429/5xx (after `Retry-After`)
and on a connection refused or cut.

`ServerThread`, the thread, event loop and lifecycle, serves `tests/bad_tools.py` too.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
from aiohttp import web


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class ServerThread:
    """A test server on its own thread and event loop, on a free loopback port: `start`,
    `stop`, and the background tasks it spawns (cancelled at `stop`). A subclass listens in
    `_listen`."""

    url: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def _listen(self) -> Callable[[], Awaitable[None]]:
        """Listen on 127.0.0.1 (port 0), set `url`; return what stops listening."""
        raise NotImplementedError

    def start(self) -> Self:
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        started.wait(10)
        return self

    def _run(self, started: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._serve(started))

    async def _serve(self, started: threading.Event) -> None:
        close = await self._listen()
        self._stop = asyncio.Event()
        started.set()
        await self._stop.wait()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await close()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
        if self._loop is not None:
            self._loop.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` in the background until it ends or the server stops."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


@dataclass
class Tool(ServerThread):
    behave: dict[str, str] = field(default_factory=dict)
    tool_result: str = "pass"
    tool_output: dict[str, Any] = field(default_factory=lambda: {"score": 42})
    delay: float = 2.0
    received: list[Received] = field(default_factory=list)
    callbacks: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    _flaky: dict[str, int] = field(default_factory=dict)

    async def _listen(self) -> Callable[[], Awaitable[None]]:
        app = web.Application()
        app.router.add_post("/", self._handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/"
        return runner.cleanup

    # ------------------------------------------------------------------ behaviour
    def events(self, task: str | None = None) -> list[dict[str, Any]]:
        bodies = [r.body for r in list(self.received)]
        return [b for b in bodies if task is None or b.get("type") == f"{task}.triggered"]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append(Received(dict(request.headers), body))
        task = body["type"].removesuffix(".triggered")
        behaviour = self.behave.get(task, "async")
        if behaviour == "flaky":
            count = self._flaky.get(body["id"], 0)
            self._flaky[body["id"]] = count + 1
            if count < 2:
                return web.json_response({"error": "busy"}, status=503)
            behaviour = "async"
        if behaviour == "fail-then-pass":
            first = not any(r.body["type"] == body["type"] for r in self.received[:-1])
            behaviour = "sync-fail" if first else "sync-pass"
        if behaviour.startswith("sync-"):
            reply = self._response(body, task, "finished", behaviour.removeprefix("sync-"))
            return web.Response(body=json.dumps(reply), content_type="application/cloudevents+json")
        if behaviour in ("async", "started-only", "slow"):
            phases = ("started",) if behaviour == "started-only" else None
            pause = self.delay if behaviour == "slow" else 0.0
            self._spawn(self._call_back(body, task, phases, pause))
        return web.json_response({"accepted": True}, status=202)

    def _response(
        self, triggered: dict[str, Any], task: str, phase: str, result: str | None = None
    ) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if phase == "finished":
            data = {
                "result": result or self.tool_result,
                "message": f"{task} done",
                **self.tool_output,
            }
        if phase == "status.changed":
            data = {"message": "half way"}
        return {
            "specversion": "1.0",
            "id": uuid.uuid4().hex,
            "source": "tests/tool",
            "type": f"{task}.{phase}",
            "triggeredid": triggered["id"],
            "slipwaycontext": triggered.get("slipwaycontext", ""),
            "datacontenttype": "application/json",
            "data": data,
        }

    async def _call_back(
        self,
        triggered: dict[str, Any],
        task: str,
        phases: tuple[str, ...] | None = None,
        pause: float = 0.0,
    ) -> None:
        if pause:
            await asyncio.sleep(pause)  # the tool's own work, simulated
        headers = {
            "Content-Type": "application/cloudevents+json",
            "Authorization": f"Bearer {triggered['slipwaytoken']}",
        }
        async with aiohttp.ClientSession() as session:
            for phase in phases or ("started", "status.changed", "finished"):
                event = self._response(triggered, task, phase)
                await self._post(session, triggered["slipwaycallback"], event, headers)

    async def _post(
        self, session: aiohttp.ClientSession, url: str, event: Any, headers: dict[str, str]
    ) -> None:
        """POST one callback; as a well-behaved tool does, again after `Retry-After` when the
        gateway answers "not now" (503: its API server was slow, e.g. on a loaded machine),
        fails (5xx), or the connection fails or is cut (a replica killed mid-request), for up
        to a minute. Every answer is recorded (0: no answer)."""
        for _ in range(30):
            wait = 1.0
            try:
                async with session.post(url, data=json.dumps(event), headers=headers) as reply:
                    self.callbacks.append((reply.status, await reply.json(content_type=None)))
                    if reply.status != 429 and reply.status < 500:
                        return
                    wait = float(reply.headers.get("Retry-After") or 1)
            except (aiohttp.ClientError, ValueError):
                self.callbacks.append((0, {}))
            await asyncio.sleep(min(wait, 2.0))
