"""One worker per running object: started by events, restarted after a failure, cancelled
on deletion and shutdown, forgotten when its object finished."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

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


def test_workers_run_only_while_owned_and_move_on_rebalance() -> None:
    """An object not owned gets no worker; when ownership changes, rebalance starts the
    worker of what is now owned and cancels the worker of what is not."""

    async def scenario() -> list[str]:
        owned: set[str] = set()
        supervisor = Supervisor(owns=lambda key, body: key[2] in owned)
        log: list[str] = []

        def worker_of(name: str) -> Any:
            async def worker() -> None:
                log.append(f"start {name}")
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    log.append(f"stop {name}")
                    raise

            return worker

        a, b = ("sequenceruns", "ns", "a"), ("sequenceruns", "ns", "b")
        owned.add("a")
        supervisor.observe(a, BODY, True, worker_of("a"))
        supervisor.observe(b, BODY, True, worker_of("b"))
        await asyncio.sleep(0)
        assert supervisor.working("sequenceruns") == [a]
        assert sorted(supervisor.running("sequenceruns")) == [a, b]
        owned.clear()
        owned.add("b")
        assert supervisor.rebalance() == (1, 1)
        await asyncio.sleep(0)
        assert supervisor.working("sequenceruns") == [b]
        assert supervisor.rebalance() == (0, 0)
        await supervisor.stop()
        return log

    assert sorted(run_async(scenario())) == ["start a", "start b", "stop a", "stop b"]


def test_a_fenced_worker_stops_quietly_and_starts_again_when_owned() -> None:
    """A worker that meets NotOwnerError is not restarted by the failure path, but by the
    next rebalance that finds the object owned."""
    from slipway.engine.ownership import NotOwnerError

    async def scenario() -> int:
        owned = {"on": True}
        supervisor = Supervisor(restart_delay=0.01, owns=lambda key, body: owned["on"])
        starts = 0

        async def worker() -> None:
            nonlocal starts
            starts += 1
            if starts == 1:
                raise NotOwnerError("not mine")
            await asyncio.Event().wait()

        supervisor.observe(KEY, BODY, True, worker)
        await asyncio.sleep(0.05)
        assert starts == 1
        assert supervisor.working("sequenceruns") == []
        supervisor.rebalance()
        await asyncio.sleep(0)
        await supervisor.stop()
        return starts

    assert run_async(scenario()) == 2


def test_a_worker_whose_object_was_deleted_stops_without_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 404 (the run was deleted, e.g. by retention) is logged at debug, not as a failure
    with a traceback; once the watch says the object is gone, the worker is not restarted."""
    from slipway.kube.errors import KubeError

    async def scenario() -> int:
        supervisor = Supervisor(restart_delay=0.01)
        calls = 0

        async def worker() -> None:
            nonlocal calls
            calls += 1
            raise KubeError(404, "Not Found", "sequenceruns.slipway.dev r not found")

        supervisor.observe(KEY, BODY, True, worker)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        supervisor.gone(KEY)
        await asyncio.sleep(0.05)
        await supervisor.stop()
        return calls

    with caplog.at_level(logging.DEBUG, logger="slipway.handlers.supervisor"):
        assert run_async(scenario()) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("stopped" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


def test_watch_events_older_than_a_finished_workers_last_write_start_nothing() -> None:
    """A worker that finished its object from its own write: the watch's older events
    (the object still running) start no second worker; the finished version ends it."""

    async def scenario() -> int:
        supervisor = Supervisor()
        calls = 0

        async def worker() -> None:
            nonlocal calls
            calls += 1
            supervisor.finished(KEY, {"metadata": {"resourceVersion": "30"}})

        def at(version: str) -> dict[str, Any]:
            return {"metadata": {"name": "r", "resourceVersion": version}}

        supervisor.observe(KEY, at("10"), True, worker)
        await asyncio.sleep(0.01)
        supervisor.observe(KEY, at("20"), True, worker)  # old news: still running then
        await asyncio.sleep(0.01)
        assert supervisor.latest(KEY) is None
        supervisor.observe(KEY, at("30"), False, worker)  # the finished version
        supervisor.observe(KEY, at("40"), True, worker)  # later versions count again
        await asyncio.sleep(0.01)
        await supervisor.stop()
        return calls

    assert run_async(scenario()) == 2
