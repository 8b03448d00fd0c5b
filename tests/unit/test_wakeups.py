"""Workers sleep until woken or until their deadline; only live workers are tracked."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from slipway.handlers.wakeups import Wakeups
from tests.helpers import run_async

KEY = ("sequenceruns", "ns", "r")


def test_wake_ends_a_sleep_early() -> None:
    """A wake during a long sleep returns it at once."""

    async def scenario() -> float:
        wakeups = Wakeups()
        wakeups.register(KEY)
        loop = asyncio.get_running_loop()
        started = loop.time()
        sleeper = asyncio.create_task(wakeups.sleep(KEY, None, limit=30))
        await asyncio.sleep(0.01)
        wakeups.wake(KEY)
        await sleeper
        return loop.time() - started

    assert run_async(scenario()) < 5


def test_a_wake_while_working_is_kept_for_the_next_sleep() -> None:
    """A wake that comes before the worker sleeps makes that sleep return at once."""

    async def scenario() -> None:
        wakeups = Wakeups()
        wakeups.register(KEY)
        wakeups.wake(KEY)
        await asyncio.wait_for(wakeups.sleep(KEY, None, limit=30), 5)

    run_async(scenario())


def test_sleep_ends_at_the_deadline() -> None:
    """Without a wake, the sleep ends at `until`."""

    async def scenario() -> None:
        wakeups = Wakeups()
        wakeups.register(KEY)
        until = datetime.now(UTC) + timedelta(milliseconds=50)
        await asyncio.wait_for(wakeups.sleep(KEY, until, limit=30), 5)

    run_async(scenario())


def test_wakes_for_objects_without_a_worker_are_not_kept() -> None:
    """Waking an object nobody registered stores nothing; forget drops a worker's key."""
    wakeups = Wakeups()
    wakeups.wake(KEY)
    wakeups.wake_all("sequenceruns", "ns")
    assert wakeups._events == {}
    wakeups.register(KEY)
    wakeups.forget(KEY)
    assert wakeups._events == {}
