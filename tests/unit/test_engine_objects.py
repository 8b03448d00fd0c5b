"""The builders of every object the operator writes: labels, owners, runs, executions,
Events, and the index entries kept of executions."""

from __future__ import annotations

from datetime import UTC, datetime

from slipway.api.sequencerun import SequenceRunSpec
from slipway.api.shipyard import Task
from slipway.api.taskexecution import TaskExecutionSpec
from slipway.engine.decisions import KubeEvent, NewExecution
from slipway.engine.objects import (
    build_event,
    build_execution,
    build_run,
    execution_labels,
    involved,
    label_selector,
    owner_reference,
    run_labels,
    task_labels,
)
from slipway.handlers.indexes import execution_entry, finished_with_jobs

SPEC = TaskExecutionSpec(
    run="r1",
    index=0,
    shipyard="s",
    stage="dev",
    sequence="seq",
    task=Task(name="check"),
    context="c",
    input={"n": 1},
)


def test_labels_nest_run_task_execution() -> None:
    """A run's labels are in a task's, a task's in an execution's (Jobs use the latter)."""
    run = run_labels("s", "dev", "seq")
    assert run == {
        "slipway.dev/shipyard": "s",
        "slipway.dev/stage": "dev",
        "slipway.dev/sequence": "seq",
    }
    assert task_labels(SPEC) == {**run, "slipway.dev/task": "check"}
    assert execution_labels(SPEC) == {**task_labels(SPEC), "slipway.dev/run": "r1"}
    assert run_labels("s", "dev", "seq", parent_run="p")["slipway.dev/parent-run"] == "p"
    assert label_selector({"a": "1", "b": "2"}) == "a=1,b=2"


def test_a_gateway_run_has_its_labels_context_and_spec() -> None:
    """The run the gateway creates: labels of its sequence, the context annotation, spec."""
    spec = SequenceRunSpec(shipyard="s", stage="dev", sequence="seq", data={"x": 1})
    body = build_run("seq-abc", spec, context="ctx")
    assert body["kind"] == "SequenceRun"
    assert body["metadata"] == {
        "name": "seq-abc",
        "labels": run_labels("s", "dev", "seq"),
        "annotations": {"slipway.dev/context": "ctx"},
    }
    assert body["spec"] == {**spec.to_wire(), "data": {"x": 1}}
    assert body["spec"]["shipyard"] == "s"
    assert "annotations" not in build_run("x", spec)["metadata"]


def test_an_execution_is_owned_by_its_run() -> None:
    """The TaskExecution carries the run's controller owner reference and its labels."""
    body = build_execution(NewExecution("r1-0-check", SPEC, execution_labels(SPEC)), "r1", "u1")
    assert body["metadata"]["ownerReferences"] == [owner_reference("SequenceRun", "r1", "u1")]
    owner = body["metadata"]["ownerReferences"][0]
    assert (owner["controller"], owner["blockOwnerDeletion"], owner["uid"]) == (True, True, "u1")
    assert body["metadata"]["labels"] == execution_labels(SPEC)
    assert body["spec"]["input"] == {"n": 1}


def test_an_event_names_its_object_and_is_bounded() -> None:
    """An Event: involved object, reason, type, component, second-precision time."""
    about = involved("SequenceRun", "ns", "r1", "u1")
    at = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    body = build_event(about, KubeEvent("Warning", "RunFinished", "x" * 5000), at)
    assert body["metadata"] == {"generateName": "r1.", "namespace": "ns"}
    assert body["involvedObject"] == about
    assert (body["type"], body["reason"], len(body["message"])) == ("Warning", "RunFinished", 1024)
    assert body["firstTimestamp"] == body["lastTimestamp"] == "2026-01-01T12:00:00Z"


def test_the_index_keeps_no_status_of_a_finished_execution() -> None:
    """A running execution's entry has its status; a finished one's only its phase."""
    meta = {"resourceVersion": "42"}
    running = execution_entry("e", {"metadata": meta, "status": {"phase": "Started"}})
    assert (running.version, running.finished, running.status) == (42, False, {"phase": "Started"})
    done = execution_entry(
        "e", {"metadata": meta, "status": {"phase": "Finished", "output": {"big": "x" * 100}}}
    )
    assert (done.finished, done.status) == (True, None)


def test_only_finished_executions_with_jobs_are_cleaned_up() -> None:
    """The Job clean-up looks at finished executions that had a job provider, no others."""
    job = {"phase": "Finished", "providers": [{"name": "p", "kind": "job"}]}
    assert finished_with_jobs(job)
    assert not finished_with_jobs({**job, "phase": "Started"})
    assert not finished_with_jobs({"phase": "Finished", "providers": [{"kind": "cloudEvent"}]})
    assert not finished_with_jobs(None)
