"""One worker per running object: started by events, restarted after a failure, cancelled
on deletion and shutdown, forgotten when its object finished."""

from __future__ import annotations

import asyncio
from typing import Any

from slipway.handlers.supervisor import Supervisor
from tests.helpers import run_async

KEY = ("sequenceruns", "ns", "r")
BODY: dict[str, Any] = {"metadata": {"name": "r"}, "spec": {}, "status": {}}


def test_events_start_one_worker_that_sees_the_latest_body() -> None:
    """Repeated events start a single worker; it reads the body the last event carried."""

    async def scenario() -> tuple[int, Any]:
        supervisor = Supervisor()
        started = 0
        release = asyncio.Event()
        finished = asyncio.Event()
        seen: list[Any] = []

        async def worker() -> None:
            nonlocal started
            started += 1
            await release.wait()
            seen.append(supervisor.latest(KEY))
            finished.set()

        supervisor.observe(KEY, BODY, True, worker)
        await asyncio.sleep(0)
        newer = {**BODY, "status": {"phase": "Started"}}
        supervisor.observe(KEY, newer, True, worker)
        release.set()
        await asyncio.wait_for(finished.wait(), 5)
        await asyncio.sleep(0)  # let the supervisor see the worker end
        return started, seen[0]

    started, seen = run_async(scenario())
    assert started == 1
    assert seen["status"] == {"phase": "Started"}


def test_finished_objects_get_no_worker_and_are_forgotten() -> None:
    """An event of an object that does not run starts nothing and keeps nothing."""

    async def scenario() -> Supervisor:
        supervisor = Supervisor()

        async def worker() -> None:  # pragma: no cover - must not run
            raise AssertionError("started for a finished object")

        supervisor.observe(KEY, BODY, False, worker)
        await asyncio.sleep(0)
        return supervisor

    supervisor = run_async(scenario())
    assert supervisor.latest(KEY) is None


def test_a_failing_worker_is_restarted() -> None:
    """A worker that raises is started again after the restart delay."""

    async def scenario() -> int:
        supervisor = Supervisor(restart_delay=0.01)
        calls = 0
        done = asyncio.Event()

        async def worker() -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("API hiccup")
            done.set()

        supervisor.observe(KEY, BODY, True, worker)
        await asyncio.wait_for(done.wait(), 5)
        await supervisor.stop()
        return calls

    assert run_async(scenario()) == 2


def test_deletion_and_shutdown_cancel_workers() -> None:
    """`gone` cancels the object's worker; `stop` cancels the rest and waits for them."""

    async def scenario() -> tuple[bool, bool]:
        supervisor = Supervisor()
        cancelled: dict[str, bool] = {}

        def forever(name: str) -> Any:
            async def worker() -> None:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    cancelled[name] = True
                    raise

            return worker

        other = ("sequenceruns", "ns", "other")
        supervisor.observe(KEY, BODY, True, forever("r"))
        supervisor.observe(other, BODY, True, forever("other"))
        await asyncio.sleep(0)
        supervisor.gone(KEY)
        await asyncio.sleep(0)
        await supervisor.stop()
        return cancelled.get("r", False), cancelled.get("other", False)

    assert run_async(scenario()) == (True, True)
