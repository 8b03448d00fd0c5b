"""Test helpers shared by every test: waiting on conditions, async runs that catch leaks."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class WaitTimeoutError(AssertionError):
    """A condition did not hold before its deadline."""


def wait_for(
    condition: Callable[[], T],
    timeout: float = 30,
    interval: float = 0.1,
    message: str = "condition",
) -> T:
    """Call `condition` until it returns a truthy value and return that value; fail the test
    when `timeout` seconds pass first. The last exception `condition` raised (if any) is
    chained, so a failure says what was last seen."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
        except Exception as error:  # any error means "not yet"
            last_error = error
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            raise WaitTimeoutError(f"{message} did not hold within {timeout:.0f} s") from last_error
        time.sleep(interval)


class LeakedTasksError(AssertionError):
    """An async test left tasks running."""


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on a fresh event loop and fail if it leaves any task behind (a task it
    started and neither awaited nor cancelled)."""

    async def guarded() -> T:
        result = await coro
        await asyncio.sleep(0)  # let tasks that are finishing finish
        current = asyncio.current_task()
        leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        if leaked:
            for task in leaked:
                task.cancel()
            await asyncio.gather(*leaked, return_exceptions=True)
            raise LeakedTasksError(f"leaked asyncio tasks: {[t.get_name() for t in leaked]}")
        return result

    return asyncio.run(guarded())


def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run kubectl against the local control plane (the `kubeconfig` fixture sets KUBECONFIG)."""
    return subprocess.run(
        ["kubectl", *args], capture_output=True, text=True, check=check, timeout=120
    )
