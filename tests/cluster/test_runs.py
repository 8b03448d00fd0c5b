"""Runs end to end on the real control plane: the operator, remote tools over CloudEvents,
ordering, results, data, links, timeouts, abort, and a crash in the middle."""

from __future__ import annotations

from typing import Any

import pytest

from slipway.handlers.runs import find_shipyard
from slipway.kube.client import Kube, connect
from tests.cluster.objects import Cluster, G, V, sequence, stage
from tests.conftest import OperatorProcess
from tests.helpers import kubectl, run_async, wait_for
from tests.tools import Tool

pytestmark = pytest.mark.usefixtures("crds")


def test_single_task_run_passes_with_an_async_tool(
    k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """The seed's sequence-one: checknumber.triggered reaches the tool, which answers through
    the gateway; the run finishes pass with the tool's output merged into its data."""
    k8s.shipyard("osint", [stage("dev", sequence("sequence-one", "checknumber"))])
    k8s.provider("phone-checker", "checknumber", tool.url)
    k8s.run("check-1", "osint", "dev", "sequence-one", {"number": "+44 20 7946 0958"})
    status = k8s.finished("check-1")
    assert status["result"] == "pass", status
    assert status["reason"] == "Completed"
    assert status["data"]["number"] == "+44 20 7946 0958"
    assert status["data"]["score"] == 42
    [task] = status["tasks"]
    assert task["name"] == "checknumber"
    assert task["result"] == "pass"
    [event] = tool.events("checknumber")
    assert event["data"]["number"] == "+44 20 7946 0958"
    assert event["data"]["run"] == {"namespace": k8s.ns, "name": "check-1"}
    assert event["slipwaycontext"] == status["context"]
    assert [code for code, _ in tool.callbacks] == [202, 202, 202]
    execution = k8s.get("taskexecutions", task["execution"])
    [provider] = execution["status"]["providers"]
    assert provider["phase"] == "Finished"
    assert provider["lastStatusMessage"] == "half way"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Succeeded"]["status"] == "True"
    assert (
        kubectl(
            "wait", "-n", k8s.ns, "--for=condition=Succeeded", "--timeout=5s", "sequencerun/check-1"
        ).returncode
        == 0
    )


def test_tasks_run_in_order_and_warning_continues(
    k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """Task N+1 is triggered only after task N finished; a warning does not stop the run,
    and the run's result is the worst seen."""
    tool.behave.update({"extract-metadata": "sync-pass", "geolookup": "sync-warning"})
    k8s.shipyard(
        "photo",
        [stage("dev", sequence("sequence-two", "extract-metadata", "geolookup", "author-search"))],
    )
    for task in ("extract-metadata", "geolookup", "author-search"):
        k8s.provider(task, task, tool.url)
    k8s.run("photo-1", "photo", "dev", "sequence-two")
    status = k8s.finished("photo-1")
    assert status["result"] == "warning"
    assert [t["result"] for t in status["tasks"]] == ["pass", "warning", "pass"]
    assert [e["type"] for e in tool.events()] == [
        "extract-metadata.triggered",
        "geolookup.triggered",
        "author-search.triggered",
    ]
    finished = [t["finishedAt"] for t in status["tasks"]]
    started = [t["startedAt"] for t in status["tasks"]]
    assert finished[0] <= started[1]
    assert finished[1] <= started[2]


def test_a_failing_task_stops_the_sequence(
    k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """`fail` stops the sequence: later tasks never get a TaskExecution or an event."""
    tool.behave.update({"a": "sync-pass", "b": "sync-fail"})
    k8s.shipyard("s", [stage("dev", sequence("seq", "a", "b", "c"))])
    for task in "abc":
        k8s.provider(f"p-{task}", task, tool.url)
    k8s.run("r", "s", "dev", "seq")
    status = k8s.finished("r")
    assert status["result"] == "fail"
    assert [t["name"] for t in status["tasks"]] == ["a", "b"]
    assert tool.events("c") == []
    assert len(k8s.items("taskexecutions")) == 2


def test_unknown_stage_finishes_invalid_and_creates_nothing(
    k8s: Cluster, operator: OperatorProcess
) -> None:
    """A run for a stage the Shipyard lacks fails at once with reason Invalid."""
    k8s.shipyard("s", [stage("dev", sequence("seq", "a"))])
    k8s.run("r", "s", "qa", "seq")
    status = k8s.finished("r")
    assert (status["result"], status["reason"]) == ("fail", "Invalid")
    assert "qa" in status["message"]
    assert k8s.items("taskexecutions") == []


def test_linked_sequence_starts_after_pass(
    k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """prod.sequence-one is triggeredOn dev.sequence-one.finished: a new run starts with the
    same context and the finished run's data."""
    tool.behave["checknumber"] = "sync-pass"
    k8s.shipyard(
        "osint",
        [
            stage("dev", sequence("sequence-one", "checknumber")),
            stage(
                "prod",
                sequence(
                    "sequence-one",
                    "checknumber",
                    triggeredOn=[{"event": "dev.sequence-one.finished"}],
                ),
            ),
        ],
    )
    k8s.provider("phone-checker", "checknumber", tool.url)
    k8s.run("first", "osint", "dev", "sequence-one", {"number": "1"})
    parent = k8s.finished("first")

    def child() -> dict[str, Any] | None:
        runs = [r for r in k8s.items("sequenceruns") if r["metadata"]["name"] != "first"]
        return runs[0] if runs else None

    linked = wait_for(child, message="linked run created")
    assert linked["spec"]["stage"] == "prod"
    assert linked["spec"]["data"]["number"] == "1"
    status = k8s.finished(linked["metadata"]["name"])
    assert status["context"] == parent["context"]
    assert status["result"] == "pass"


def test_silent_tool_times_out_after_start_timeout(
    k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """A tool that never answers fails the task with reason TimedOut after startTimeout."""
    tool.behave["slow"] = "silent"
    k8s.shipyard(
        "s", [stage("dev", {"name": "seq", "tasks": [{"name": "slow", "startTimeout": "2s"}]})]
    )
    k8s.provider("p", "slow", tool.url)
    k8s.run("r", "s", "dev", "seq")
    status = k8s.finished("r")
    assert (status["result"], status["reason"]) == ("fail", "TimedOut")
    [provider] = k8s.get("taskexecutions", "r-0-slow")["status"]["providers"]
    assert provider["delivery"] == "HTTP 202 after 1 try"
    assert provider["reason"] == "TimedOut"


def test_task_without_provider_fails_no_provider(k8s: Cluster, operator: OperatorProcess) -> None:
    """With no TaskProvider for the task, it waits until startTimeout, then NoProvider."""
    k8s.shipyard(
        "s", [stage("dev", {"name": "seq", "tasks": [{"name": "lonely", "startTimeout": "2s"}]})]
    )
    k8s.run("r", "s", "dev", "seq")
    status = k8s.finished("r")
    assert (status["result"], status["reason"]) == ("fail", "NoProvider")


def test_abort_stops_a_running_run(k8s: Cluster, tool: Tool, operator: OperatorProcess) -> None:
    """Setting spec.abort finishes the run fail/Aborted; the tool gets nothing more."""
    tool.behave["slow"] = "silent"
    k8s.shipyard("s", [stage("dev", sequence("seq", "slow", "never"))])
    k8s.provider("p", "slow", tool.url)
    k8s.run("r", "s", "dev", "seq")
    wait_for(lambda: tool.events("slow"), message="tool triggered")
    k8s.custom.patch_namespaced_custom_object(
        G, V, k8s.ns, "sequenceruns", "r", {"spec": {"abort": True}}
    )
    status = k8s.finished("r")
    assert (status["result"], status["reason"]) == ("fail", "Aborted")
    assert tool.events("never") == []


def test_flaky_tool_gets_the_same_event_again(
    k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """503 answers are retried with backoff; every retry carries the same event id."""
    tool.behave["t"] = "flaky"
    k8s.shipyard("s", [stage("dev", sequence("seq", "t"))])
    k8s.provider("p", "t", tool.url)
    k8s.run("r", "s", "dev", "seq")
    assert k8s.finished("r")["result"] == "pass"
    ids = {e["id"] for e in tool.events("t")}
    assert len(tool.events("t")) == 3
    assert len(ids) == 1


def test_operator_killed_mid_run_resumes_without_duplicates(
    k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """SIGKILL while a task waits for its tool; after a restart the run completes, with one
    TaskExecution per task."""
    tool.behave.update({"a": "silent", "b": "sync-pass"})
    k8s.shipyard("s", [stage("dev", sequence("seq", "a", "b"))])
    k8s.provider("pa", "a", tool.url)
    k8s.provider("pb", "b", tool.url)
    k8s.run("r", "s", "dev", "seq")
    wait_for(lambda: tool.events("a"), message="tool triggered")
    operator.kill()
    tool.behave["a"] = "async"
    operator.start()
    status = k8s.finished("r")
    assert status["result"] == "pass"
    assert sorted(e["metadata"]["name"] for e in k8s.items("taskexecutions")) == ["r-0-a", "r-1-b"]
    assert len(tool.events("b")) == 1


def test_a_shipyard_missing_from_the_index_is_read_from_the_api(
    kubeconfig: Any, k8s: Cluster
) -> None:
    """Shipyards and runs arrive on separate watches: when a run is seen before its
    Shipyard reached kopf's index, the run's worker reads the Shipyard from the API instead
    of judging the run Invalid."""
    k8s.shipyard("osint", [stage("dev", sequence("sequence-one", "checknumber"))])

    async def lookup() -> tuple[Any, Any]:
        kube = Kube(await connect(str(kubeconfig)))
        try:
            found = await find_shipyard(kube, {}, k8s.ns, "osint")
            missing = await find_shipyard(kube, {}, k8s.ns, "nope")
        finally:
            await kube.close()
        return found, missing

    found, missing = run_async(lookup())
    assert found is not None
    assert found.sequence("dev", "sequence-one") is not None
    assert missing is None
