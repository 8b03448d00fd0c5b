"""Crash safety: the operator exits hard at the worst moments and is started again; every
run completes, never with two TaskExecutions for one task, and a tool receives a given
`.triggered` at most twice, always with the same id."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.cluster.objects import Cluster, sequence, stage
from tests.conftest import OperatorProcess
from tests.helpers import wait_for
from tests.tools import Tool

pytestmark = pytest.mark.usefixtures("crds")


@pytest.mark.parametrize("point", ["after-execution-created", "before-delivery", "after-delivery"])
def test_crash_at_a_fault_point_then_restart_completes_the_run(
    k8s: Cluster, tool: Tool, operator: OperatorProcess, point: str
) -> None:
    """The operator dies at `point` (during task 1 or between tasks) and restarts: the run
    passes, one TaskExecution per task, each `.triggered` id seen at most twice."""
    operator.stop()
    tool.behave.update({"a": "sync-pass", "b": "async", "c": "sync-pass"})
    k8s.shipyard("s", [stage("dev", sequence("seq", "a", "b", "c"))])
    for task in "abc":
        k8s.provider(f"p{task}", task, tool.url)
    operator.env["SLIPWAY_FAULT_POINT"] = point
    operator.start()
    k8s.run("r", "s", "dev", "seq")
    assert operator.process is not None
    wait_for(
        lambda: operator.process is not None and operator.process.poll() is not None,
        timeout=60,
        message=f"operator exits at {point}",
    )
    assert f"fault point {point} reached" in operator.log()
    del operator.env["SLIPWAY_FAULT_POINT"]
    operator.start()
    status = k8s.finished("r", timeout=90)
    assert status["result"] == "pass", status
    names = sorted(e["metadata"]["name"] for e in k8s.items("taskexecutions"))
    assert names == ["r-0-a", "r-1-b", "r-2-c"]
    deliveries = Counter(e["id"] for e in tool.events())
    assert len(deliveries) == 3
    assert max(deliveries.values()) <= 2
