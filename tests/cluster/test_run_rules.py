"""The rules of a run, one scenario each, on the real control plane: data passed along,
several providers, delays, timeouts after `.started`, retries, selectors on links, and the
wait for a missing provider."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.cluster.objects import Cluster, sequence, stage
from tests.conftest import OperatorProcess
from tests.helpers import wait_for
from tests.tools import Tool

pytestmark = pytest.mark.usefixtures("crds")


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_four_tasks_pass_data_along(k8s: Cluster, tool: Tool, operator: OperatorProcess) -> None:
    """Each task's output is merged into the run's data and reaches the tasks after it,
    with `data.<task>` = the task's properties."""
    tool.behave.update(dict.fromkeys(("one", "two", "three", "four"), "sync-pass"))
    k8s.shipyard(
        "s",
        [
            stage(
                "dev",
                {
                    "name": "seq",
                    "tasks": [
                        {"name": "one"},
                        {"name": "two", "properties": {"depth": 2}},
                        {"name": "three"},
                        {"name": "four"},
                    ],
                },
            )
        ],
    )
    for task in ("one", "two", "three", "four"):
        k8s.provider(task, task, tool.url)
    tool.tool_output = {"seen": {"by": "tool"}}
    k8s.run("r", "s", "dev", "seq", {"input": "x"})
    status = k8s.finished("r")
    assert status["result"] == "pass"
    assert status["data"]["seen"] == {"by": "tool"}
    two = tool.events("two")[0]["data"]
    assert two["two"] == {"depth": 2}
    assert two["seen"] == {"by": "tool"}
    assert tool.events("four")[0]["data"]["input"] == "x"


def test_two_providers_must_both_finish_and_the_worst_wins(
    k8s: Cluster, tool: Tool, other_tool: Tool, operator: OperatorProcess
) -> None:
    """Both providers of a task get `.triggered`; the task waits for both; warning+pass is
    warning."""
    tool.behave["t"] = "async"
    other_tool.behave["t"] = "sync-warning"
    k8s.shipyard("s", [stage("dev", sequence("seq", "t"))])
    k8s.provider("first", "t", tool.url)
    k8s.provider("second", "t", other_tool.url)
    k8s.run("r", "s", "dev", "seq")
    status = k8s.finished("r")
    assert status["result"] == "warning"
    execution = k8s.get("taskexecutions", "r-0-t")
    assert {p["name"]: p["result"] for p in execution["status"]["providers"]} == {
        "first": "pass",
        "second": "warning",
    }


def test_triggered_after_delays_the_trigger(
    k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """`triggeredAfter: 3s` sends `.triggered` no sooner than 3 s after the task was reached."""
    tool.behave["t"] = "sync-pass"
    k8s.shipyard(
        "s", [stage("dev", {"name": "seq", "tasks": [{"name": "t", "triggeredAfter": "3s"}]})]
    )
    k8s.provider("p", "t", tool.url)
    k8s.run("r", "s", "dev", "seq")
    k8s.finished("r")
    execution = k8s.get("taskexecutions", "r-0-t")
    created = when(execution["metadata"]["creationTimestamp"])
    triggered = when(execution["status"]["providers"][0]["triggeredAt"])
    assert (triggered - created).total_seconds() >= 2.5


def test_total_timeout_applies_after_started(
    k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """A tool that sent `.started` but never `.finished` fails TimedOut after `timeout`."""
    tool.behave["t"] = "started-only"
    k8s.shipyard("s", [stage("dev", {"name": "seq", "tasks": [{"name": "t", "timeout": "3s"}]})])
    k8s.provider("p", "t", tool.url)
    k8s.run("r", "s", "dev", "seq")
    status = k8s.finished("r")
    assert (status["result"], status["reason"]) == ("fail", "TimedOut")
    provider = k8s.get("taskexecutions", "r-0-t")["status"]["providers"][0]
    assert provider["startedAt"]


def test_failed_attempt_is_retried_with_a_new_event(
    k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """`retries: {limit: 2}`: a failed attempt is tried again after the backoff, with a new
    event id, until one passes."""
    tool.behave["t"] = "fail-then-pass"
    k8s.shipyard(
        "s",
        [
            stage(
                "dev",
                {"name": "seq", "tasks": [{"name": "t", "retries": {"limit": 2, "backoff": "1s"}}]},
            )
        ],
    )
    k8s.provider("p", "t", tool.url)
    k8s.run("r", "s", "dev", "seq")
    status = k8s.finished("r")
    assert status["result"] == "pass"
    assert k8s.get("taskexecutions", "r-0-t")["status"]["attempts"] == 2
    assert len({e["id"] for e in tool.events("t")}) == 2


@pytest.mark.parametrize(
    ("selector", "behaviour", "fires"),
    [
        (None, "sync-fail", False),
        (None, "sync-warning", True),
        ({"match": {"result": "fail"}}, "sync-fail", True),
        ({"match": {"result": "fail"}}, "sync-pass", False),
        ({"match": {"t.result": "warning"}}, "sync-warning", True),
        ({"match": {"t.result": "warning"}}, "sync-pass", False),
    ],
)
def test_links_fire_per_selector(
    k8s: Cluster,
    tool: Tool,
    operator: OperatorProcess,
    selector: dict[str, Any] | None,
    behaviour: str,
    fires: bool,
) -> None:
    """A linked sequence starts only when its selector (or, without one, pass/warning)
    matches the finished run."""
    tool.behave["t"] = behaviour
    link: dict[str, Any] = {"event": "dev.seq.finished"}
    if selector is not None:
        link["selector"] = selector
    k8s.shipyard(
        "s",
        [
            stage("dev", sequence("seq", "t")),
            stage("prod", sequence("seq", "t", triggeredOn=[link])),
        ],
    )
    k8s.provider("p", "t", tool.url)
    k8s.run("r", "s", "dev", "seq")
    k8s.finished("r")
    if fires:
        wait_for(lambda: len(k8s.items("sequenceruns")) == 2, message="linked run")
    else:
        # The link decision is made in the same step that finishes the run: by now it
        # would exist.
        assert [r["metadata"]["name"] for r in k8s.items("sequenceruns")] == ["r"]


def test_missing_provider_waits_then_fails(k8s: Cluster, operator: OperatorProcess) -> None:
    """Without a provider the execution says WaitingForProvider, then fails NoProvider."""
    k8s.shipyard(
        "s", [stage("dev", {"name": "seq", "tasks": [{"name": "t", "startTimeout": "4s"}]})]
    )
    k8s.run("r", "s", "dev", "seq")

    def waiting() -> bool:
        conditions = k8s.get("taskexecutions", "r-0-t").get("status", {}).get("conditions", [])
        return any(c["reason"] == "WaitingForProvider" for c in conditions)

    wait_for(waiting, message="WaitingForProvider condition")
    status = k8s.finished("r")
    assert (status["result"], status["reason"]) == ("fail", "NoProvider")


def test_provider_created_late_is_used(k8s: Cluster, tool: Tool, operator: OperatorProcess) -> None:
    """A TaskProvider created while a task waits for one is triggered at once."""
    tool.behave["t"] = "sync-pass"
    k8s.shipyard(
        "s", [stage("dev", {"name": "seq", "tasks": [{"name": "t", "startTimeout": "60s"}]})]
    )
    k8s.run("r", "s", "dev", "seq")
    wait_for(lambda: k8s.items("taskexecutions"), message="execution created")
    k8s.provider("p", "t", tool.url)
    assert k8s.finished("r", timeout=30)["result"] == "pass"
