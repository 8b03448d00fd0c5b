"""Wake a run's or an execution's worker when something it depends on changed.

Each worker sleeps until its next deadline (a timeout, a delay) or until `wake` is called for
its key, whichever comes first: changes are acted on at once, and nothing polls.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

Key = tuple[str, str, str]  # (plural, namespace, name)


class Wakeups:
    """One asyncio.Event per sleeping object."""

    def __init__(self) -> None:
        self._events: dict[Key, asyncio.Event] = {}

    def register(self, key: Key) -> None:
        """Called by a worker before it first reads its object: wakes from then on are kept
        (a wake while it works makes its next sleep return at once)."""
        self._events.setdefault(key, asyncio.Event())

    def wake(self, key: Key) -> None:
        """Wake the worker of `key`; nothing happens for objects without a worker, so the
        map holds only live workers (no growth with every object ever seen)."""
        event = self._events.get(key)
        if event is not None:
            event.set()

    def wake_all(self, plural: str, namespace: str) -> None:
        """Wake every sleeping worker of `plural` in `namespace`."""
        for key, event in self._events.items():
            if key[0] == plural and key[1] == namespace:
                event.set()

    async def sleep(self, key: Key, until: datetime | None, limit: float = 300.0) -> None:
        """Return when woken, at `until`, or after `limit` seconds (a safety net against a
        lost wake-up), whichever is first."""
        event = self._events.setdefault(key, asyncio.Event())
        timeout = limit
        if until is not None:
            timeout = min(limit, max(0.0, (until - datetime.now(UTC)).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        event.clear()

    def forget(self, key: Key) -> None:
        """Drop the key of an object whose worker ended."""
        self._events.pop(key, None)
