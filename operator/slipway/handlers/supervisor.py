"""One worker coroutine per running SequenceRun and TaskExecution, started from watch events.

kopf's daemons would do this too, but kopf puts a finalizer on every object with a daemon:
two more API writes per run and per task, and objects that cannot be deleted while the
operator is down. Here a worker is started by the first watch event of a running object
(the initial listing after a restart included), reads the object as the watch last
delivered it, and is cancelled when the object is deleted or the operator stops. A worker
that fails unexpectedly is started again after a short delay, from what the resources say.

With several replicas, `owns` says whether this replica may work an object now
(`handlers/membership.py`): a running object's body and worker are kept either way, its
worker runs only while it is owned, and `rebalance` (on every membership change) stops the
workers of objects this replica no longer owns and starts those of objects it now owns. A
worker that meets the fence (`NotOwnerError`) stops quietly, to start again when owned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from slipway import metrics
from slipway.constants import ANNOTATION_CONTEXT
from slipway.engine.ownership import NotOwnerError
from slipway.kube.client import Body, snapshot
from slipway.kube.errors import KubeError

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # (plural, namespace, name)
Worker = Callable[[], Coroutine[Any, Any, None]]
Owns = Callable[[Key, Body], bool]


def _always(key: Key, body: Body) -> bool:
    return True


def _version(body: Mapping[str, Any]) -> int:
    """`metadata.resourceVersion` as an integer (0 when not one)."""
    try:
        return int((body.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class Supervisor:
    """Starts, restarts and stops the workers; keeps the last body the watch delivered for
    each object that has one."""

    def __init__(self, restart_delay: float = 2.0, owns: Owns = _always) -> None:
        self._restart_delay = restart_delay
        self.owns = owns
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        self._bodies: dict[Key, Body] = {}
        self._workers: dict[Key, Worker] = {}
        self._done: dict[Key, int] = {}  # object -> the version its worker finished it at

    def observe(self, key: Key, body: Mapping[str, Any], running: bool, worker: Worker) -> None:
        """Called on every watch event of the object: remember its body (while it runs or
        has a worker) and start `worker` when the object runs and has none.

        A worker finishes its object from its own last write, before the watch brings that
        write back; the watch's events of the versions before it (still running) are then
        old news and start nothing (`finished`) — else a second worker would work a stale
        copy, and resend a task its tool already answered."""
        done = self._done.get(key)
        if done is not None:
            if _version(body) < done:
                return
            del self._done[key]
        if running or key in self._tasks:
            self._bodies[key] = snapshot(body)
        else:
            self._bodies.pop(key, None)
            self._workers.pop(key, None)
        if running and key not in self._tasks:
            self._workers[key] = worker
            if self.owns(key, self._bodies[key]):
                self._spawn(key)

    def finished(self, key: Key, body: Mapping[str, Any]) -> None:
        """The worker of `key` finished it; `body` is the object as finished (its version
        or a later one ends the wait for the watch to catch up)."""
        version = _version(body)
        if version:
            self._done[key] = version

    def rebalance(self) -> tuple[int, int]:
        """Stop the workers of objects this replica no longer owns, start those of running
        objects it now owns; returns (stopped, started)."""
        stopped = started = 0
        for key, task in list(self._tasks.items()):
            body = self._bodies.get(key)
            if body is None or not self.owns(key, body):
                del self._tasks[key]
                task.cancel()
                stopped += 1
        for key, body in list(self._bodies.items()):
            if key in self._workers and key not in self._tasks and self.owns(key, body):
                self._spawn(key)
                started += 1
        return stopped, started

    def running(self, plural: str) -> list[Key]:
        """The running objects of `plural` this process knows of (owned or not)."""
        return [key for key in self._workers if key[0] == plural]

    def working(self, plural: str) -> list[Key]:
        """The objects of `plural` whose worker runs here."""
        return [key for key in self._tasks if key[0] == plural]

    def census(self) -> metrics.Census:
        """Runs waiting to start and under way, and the workers alive by kind (for the
        state gauges of `/metrics`)."""
        phases = [  # only the runs this replica owns: summed over replicas, each run once
            (body.get("status") or {}).get("phase")
            for key, body in list(self._bodies.items())
            if key[0] == "sequenceruns" and self.owns(key, body)
        ]
        workers: dict[str, int] = {}
        for plural, _, _ in list(self._tasks):
            kind = plural.removesuffix("s")
            workers[kind] = workers.get(kind, 0) + 1
        return metrics.Census(
            queued=sum(1 for phase in phases if phase in (None, "Pending", "Queued")),
            running=sum(1 for phase in phases if phase == "Started"),
            workers=workers,
        )

    def context_of(self, kind: str, namespace: str, name: str) -> str | None:
        """The context of a run or execution the process knows (for JSON log lines)."""
        body = self._bodies.get((kind.lower() + "s", namespace, name))
        if body is None:
            return None
        meta = body.get("metadata") or {}
        found = (
            (body.get("spec") or {}).get("context")  # a TaskExecution's
            or (body.get("status") or {}).get("context")  # a run's, once recorded
            or (meta.get("annotations") or {}).get(ANNOTATION_CONTEXT)  # before that
            or meta.get("uid")  # a run's context by default (engine.runs.run_context)
        )
        return str(found) if found else None

    def latest(self, key: Key) -> Body | None:
        """The object as its watch last delivered it; None once it was deleted."""
        return self._bodies.get(key)

    def gone(self, key: Key) -> None:
        """The object was deleted: cancel its worker and forget it."""
        self._bodies.pop(key, None)
        self._workers.pop(key, None)
        self._done.pop(key, None)
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()

    async def stop(self) -> None:
        """Cancel every worker and wait for them (operator shutdown)."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        self._workers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, key: Key) -> None:
        task = asyncio.get_running_loop().create_task(self._workers[key](), name="/".join(key))
        self._tasks[key] = task
        task.add_done_callback(lambda done: self._ended(key, done))

    def _ended(self, key: Key, task: asyncio.Task[None]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, NotOwnerError):  # fenced: starts again when owned
            log.info("worker %s stopped: %s", "/".join(key), error)
            return
        if error is None:  # finished its object: nothing more to do for it
            self._workers.pop(key, None)
            self._bodies.pop(key, None)
            return
        if isinstance(error, KubeError) and error.not_found:
            # Its object (or one it wrote for it) was deleted meanwhile, e.g. by retention or
            # a person: not a failure. The watch's deletion forgets the object; if it still
            # exists, the worker starts again after the usual delay.
            log.debug("worker %s stopped: %s", "/".join(key), error)
            asyncio.get_running_loop().call_later(self._restart_delay, self._restart, key)
            return
        log.error(
            "worker %s failed; restarting in %.0f s",
            "/".join(key),
            self._restart_delay,
            exc_info=error,
        )
        asyncio.get_running_loop().call_later(self._restart_delay, self._restart, key)

    def _restart(self, key: Key) -> None:
        body = self._bodies.get(key)
        if key in self._workers and key not in self._tasks and body and self.owns(key, body):
            self._spawn(key)
