"""Kubernetes Events posted in the background, so no decision waits for one.

An Event tells a person (`kubectl describe`) what happened; the state it tells of is in a
status already, so posting one is best effort: queued, posted by one task in order, and
dropped (logged) when the queue is full or the API server refuses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from slipway.kube.client import Kube

log = logging.getLogger(__name__)


class EventPoster:
    """A bounded queue of Event bodies (from `engine.objects.build_event`) and its poster."""

    def __init__(self, kube: Kube, limit: int = 1000) -> None:
        self._kube = kube
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(limit)
        self._task: asyncio.Task[None] | None = None
        self.posted = 0

    def post(self, body: dict[str, Any]) -> None:
        """Queue `body`; never blocks, never raises."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="events")
        try:
            self._queue.put_nowait(body)
        except asyncio.QueueFull:
            log.warning("Event dropped (queue full): %s", body.get("reason"))

    async def _drain(self) -> None:
        while True:
            body = await self._queue.get()
            try:
                if await self._kube.post_event(body):
                    self.posted += 1
            finally:
                self._queue.task_done()

    async def flush(self) -> None:
        """Wait until every queued Event was posted (the caller bounds the wait)."""
        if self._task is not None:
            await self._queue.join()

    async def stop(self) -> None:
        """Post what is queued (briefly), then stop the poster."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), 5.0)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
