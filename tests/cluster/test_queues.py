"""Concurrency queues and suspend/resume on the real control plane."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tests.cluster.control_helpers import finish_task, phase, wait_phase
from tests.cluster.objects import Cluster, stage
from tests.conftest import OperatorProcess
from tests.helpers import kubectl, wait_for
from tests.tools import Tool

pytestmark = pytest.mark.usefixtures("crds")

RUNS = ["r1", "r2", "r3", "r4", "r5"]


def queued_shipyard(k8s: Cluster, tool: Tool) -> None:
    """Sequence `q` with one task answered by hand, limit 1 per `data.target`."""
    tool.behave["t"] = "silent"
    k8s.shipyard(
        "s",
        [
            stage(
                "dev",
                {
                    "name": "q",
                    "tasks": [{"name": "t"}],
                    "concurrency": {"limit": 1, "key": "target-{{ data.target }}"},
                },
            )
        ],
    )
    k8s.provider("p", "t", tool.url)


def triggered_for(tool: Tool, run: str) -> list[dict[str, Any]]:
    return [e for e in tool.events("t") if e["data"]["run"]["name"] == run]


def only_started(k8s: Cluster, running: str, waiting: list[str]) -> None:
    """`running` is Started and every run of `waiting` Queued behind the ones before it."""
    wait_phase(k8s, running, "Started")
    for index, name in enumerate(waiting):
        status = wait_phase(k8s, name, "Queued")
        ahead = [running, *waiting[:index]]
        wait_for(
            lambda name=name, ahead=ahead: k8s.get("sequenceruns", name)["status"][
                "message"
            ].startswith(f"queued behind {', '.join(ahead)}"),
            message=f"{name} queued behind {ahead}",
        )
        assert status["queue"]["key"] == "target-a"


def finish_in_order(k8s: Cluster, tool: Tool, operator: OperatorProcess, runs: list[str]) -> None:
    for index, run in enumerate(runs):
        only_started(k8s, run, runs[index + 1 :])
        events = wait_for(lambda run=run: triggered_for(tool, run), message=f"{run} triggered")
        # Delivery is at least once: an operator killed between sending `.triggered` and
        # recording it sends the same event (same id) again after the restart.
        assert len({e["id"] for e in events}) == 1, events
        finish_task(operator.gateway_url, k8s.ns, events[0], "pass")
        assert k8s.finished(run)["result"] == "pass"


def test_five_runs_with_limit_one_run_in_order_and_keys_are_independent(
    k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """Five runs for one key run one at a time, first in first out, each queued run naming
    the runs ahead; a run for another key starts at once."""
    queued_shipyard(k8s, tool)
    for name in RUNS:
        k8s.run(name, "s", "dev", "q", {"target": "a"})
    k8s.run("other", "s", "dev", "q", {"target": "b"})
    wait_phase(k8s, "other", "Started")
    listing = kubectl("get", "sequenceruns", "-n", k8s.ns, "-o", "wide").stdout
    assert "Queued" in listing
    assert "queued behind r1" in listing
    finish_in_order(k8s, tool, operator, RUNS)
    starts = [k8s.get("sequenceruns", r)["status"]["startedAt"] for r in RUNS]
    ends = [k8s.get("sequenceruns", r)["status"]["finishedAt"] for r in RUNS]
    assert all(ends[i] <= starts[i + 1] for i in range(len(RUNS) - 1))
    assert all(len(triggered_for(tool, r)) == 1 for r in RUNS)


def test_aborting_a_queued_run_and_deleting_the_running_one(
    k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """A queued run aborted finishes `Aborted` without starting; deleting the running run
    frees its slot at once for the next in line."""
    queued_shipyard(k8s, tool)
    for name in RUNS[:3]:
        k8s.run(name, "s", "dev", "q", {"target": "a"})
    only_started(k8s, "r1", ["r2", "r3"])
    k8s.custom.patch_namespaced_custom_object(
        "slipway.dev", "v1alpha1", k8s.ns, "sequenceruns", "r2", {"spec": {"abort": True}}
    )
    status = k8s.finished("r2")
    assert (status["result"], status["reason"]) == ("fail", "Aborted")
    assert not triggered_for(tool, "r2")
    k8s.custom.delete_namespaced_custom_object(
        "slipway.dev", "v1alpha1", k8s.ns, "sequenceruns", "r1"
    )
    wait_phase(k8s, "r3", "Started")
    [event] = wait_for(lambda: triggered_for(tool, "r3"), message="r3 triggered")
    finish_task(operator.gateway_url, k8s.ns, event, "pass")
    assert k8s.finished("r3")["result"] == "pass"


def test_operator_killed_mid_queue_keeps_the_order(
    k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """SIGKILL while one run is started and four wait: after a restart the queue is rebuilt
    from the runs, in the same order, and no run is started twice."""
    queued_shipyard(k8s, tool)
    for name in RUNS:
        k8s.run(name, "s", "dev", "q", {"target": "a"})
    only_started(k8s, "r1", RUNS[1:])
    operator.kill()
    operator.start()
    finish_in_order(k8s, tool, operator, RUNS)
    executions = sorted(e["metadata"]["name"] for e in k8s.items("taskexecutions"))
    assert executions == [f"{r}-0-t" for r in RUNS]
    assert all(len({e["id"] for e in triggered_for(tool, r)}) == 1 for r in RUNS)


def slipway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slipway", *args], capture_output=True, text=True, timeout=60
    )


def test_suspend_mid_run_holds_before_the_next_task_and_resume_goes_on(
    k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """`slipway suspend` while task a runs: a finishes normally, the run holds before b
    (phase Suspended, condition Suspended, message in `kubectl get -o wide`), b is not
    triggered; `slipway resume` lets it finish."""
    tool.behave.update({"a": "silent", "b": "sync-pass"})
    k8s.shipyard("s", [stage("dev", {"name": "two", "tasks": [{"name": "a"}, {"name": "b"}]})])
    k8s.provider("pa", "a", tool.url)
    k8s.provider("pb", "b", tool.url)
    k8s.run("r", "s", "dev", "two")
    [event] = wait_for(lambda: tool.events("a"), message="a triggered")
    done = slipway("suspend", "r", "-n", k8s.ns)
    assert done.returncode == 0, done.stderr
    wait_for(
        lambda: any(
            c["type"] == "Suspended" and c["reason"] == "Suspending"
            for c in k8s.get("sequenceruns", "r")["status"].get("conditions", [])
        ),
        message="Suspending",
    )
    finish_task(operator.gateway_url, k8s.ns, event, "pass")
    status = wait_phase(k8s, "r", "Suspended")
    assert status["message"].startswith("suspended before task b (2/2)")
    assert status["tasks"][0]["result"] == "pass"
    listing = kubectl("get", "sequenceruns", "r", "-n", k8s.ns, "-o", "wide").stdout
    assert "Suspended" in listing
    assert "suspended before task b" in listing
    assert not tool.events("b")
    assert phase(k8s, "r") == "Suspended"
    assert [e["metadata"]["name"] for e in k8s.items("taskexecutions")] == ["r-0-a"]
    done = slipway("resume", "r", "-n", k8s.ns)
    assert done.returncode == 0, done.stderr
    status = k8s.finished("r")
    assert status["result"] == "pass"
    suspended = next(c for c in status["conditions"] if c["type"] == "Suspended")
    assert (suspended["status"], suspended["reason"]) == ("False", "Resumed")
    assert len(tool.events("b")) == 1
