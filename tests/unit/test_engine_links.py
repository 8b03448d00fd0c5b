"""Linked sequences: which runs a finished run starts (`triggeredOn`, selectors), and how
they are named, labelled and filled."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from slipway.api.common import Phase, Result
from slipway.api.sequencerun import SequenceRunSpec, SequenceRunStatus, TaskRecord
from slipway.api.shipyard import ShipyardSpec
from slipway.engine.links import linked_run_name, linked_runs
from slipway.engine.runs import RunView

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def on(event: str, match: dict[str, str] | None = None) -> dict[str, Any]:
    return {"event": event, **({"selector": {"match": match}} if match else {})}


def shipyard(*linked: tuple[str, str, list[dict[str, Any]]]) -> ShipyardSpec:
    """dev/one (tasks build, test) plus the given (stage, sequence, triggeredOn) sequences."""
    stages: dict[str, list[dict[str, Any]]] = {
        "dev": [{"name": "one", "tasks": [{"name": "build"}, {"name": "test"}]}]
    }
    for stage, sequence, triggers in linked:
        stages.setdefault(stage, []).append(
            {"name": sequence, "tasks": [{"name": "x"}], "triggeredOn": triggers}
        )
    return ShipyardSpec.model_validate(
        {"stages": [{"name": n, "sequences": s} for n, s in stages.items()]}
    )


def run(context: str | None = "ctx-1", annotations: dict[str, str] | None = None) -> RunView:
    return RunView(
        namespace="ns",
        name="check-0042",
        uid="uid-1",
        created=T0,
        labels={},
        annotations=annotations or {},
        spec=SequenceRunSpec(shipyard="osint", stage="dev", sequence="one", data={"in": 1}),
        status=SequenceRunStatus(context=context),
    )


def last(task: str, result: Result | None) -> TaskRecord:
    return TaskRecord(name=task, index=1, phase=Phase.FINISHED, result=result)


FIRES: list[tuple[str, list[dict[str, Any]], Result, TaskRecord | None, bool]] = [
    ("no selector fires on pass", [on("dev.one.finished")], Result.PASS, None, True),
    ("no selector fires on warning", [on("dev.one.finished")], Result.WARNING, None, True),
    ("no selector does not fire on fail", [on("dev.one.finished")], Result.FAIL, None, False),
    ("another sequence's event does not fire", [on("dev.two.finished")], Result.PASS, None, False),
    (
        "result selector matches",
        [on("dev.one.finished", {"result": "fail"})],
        Result.FAIL,
        None,
        True,
    ),
    (
        "result selector does not match",
        [on("dev.one.finished", {"result": "fail"})],
        Result.PASS,
        None,
        False,
    ),
    (
        "result selector for warning only",
        [on("dev.one.finished", {"result": "warning"})],
        Result.PASS,
        None,
        False,
    ),
    (
        "task selector matches the last task's result",
        [on("dev.one.finished", {"test.result": "fail"})],
        Result.FAIL,
        last("test", Result.FAIL),
        True,
    ),
    (
        "task selector compares the last task's result, not the run's",
        [on("dev.one.finished", {"test.result": "warning"})],
        Result.WARNING,
        last("test", Result.PASS),
        False,
    ),
    (
        "task selector naming a task that did not run last does not match",
        [on("dev.one.finished", {"test.result": "fail"})],
        Result.FAIL,
        last("build", Result.FAIL),
        False,
    ),
    (
        "task selector with no task run does not match",
        [on("dev.one.finished", {"build.result": "fail"})],
        Result.FAIL,
        None,
        False,
    ),
    (
        "a missing task result counts as fail",
        [on("dev.one.finished", {"test.result": "fail"})],
        Result.FAIL,
        last("test", None),
        True,
    ),
    (
        "any selector entry matching fires",
        [on("dev.one.finished", {"result": "pass", "test.result": "warning"})],
        Result.WARNING,
        last("test", Result.WARNING),
        True,
    ),
    (
        "any of several triggers fires",
        [on("dev.one.finished", {"result": "fail"}), on("dev.one.finished")],
        Result.PASS,
        None,
        True,
    ),
]


@pytest.mark.parametrize(
    ("triggers", "result", "task", "fires"), [c[1:] for c in FIRES], ids=[c[0] for c in FIRES]
)
def test_link_fires(
    triggers: list[dict[str, Any]], result: Result, task: TaskRecord | None, fires: bool
) -> None:
    """linked_runs starts prod/one exactly when one of its triggers matches."""
    found = linked_runs(shipyard(("prod", "one", triggers)), run(), result, task, {})
    assert [(r.spec.stage, r.spec.sequence) for r in found] == ([("prod", "one")] if fires else [])


def test_several_matching_triggers_start_the_sequence_once() -> None:
    """Two triggers of one sequence that both match start one run."""
    triggers = [on("dev.one.finished"), on("dev.one.finished", {"result": "pass"})]
    assert len(linked_runs(shipyard(("prod", "one", triggers)), run(), Result.PASS, None, {})) == 1


def test_every_matching_sequence_in_every_stage_starts_in_shipyard_order() -> None:
    """Links in several stages and in the run's own stage all start, in document order."""
    spec = shipyard(
        ("dev", "after", [on("dev.one.finished")]),
        ("prod", "deploy", [on("dev.one.finished")]),
        ("prod", "rollback", [on("dev.one.finished", {"result": "fail"})]),
        ("qa", "check", [on("dev.one.finished", {"result": "pass"})]),
    )
    found = linked_runs(spec, run(), Result.PASS, last("test", Result.PASS), {})
    assert [(r.spec.stage, r.spec.sequence) for r in found] == [
        ("dev", "after"),
        ("prod", "deploy"),
        ("qa", "check"),
    ]


def test_new_run_spec_labels_annotations_and_name() -> None:
    """A linked run: same Shipyard, the run's final data, labelled with its parent, same context."""
    [new] = linked_runs(
        shipyard(("prod", "one", [on("dev.one.finished")])),
        run(),
        Result.PASS,
        None,
        {"a": {"b": 1}},
    )
    assert new.spec == SequenceRunSpec(
        shipyard="osint", stage="prod", sequence="one", data={"a": {"b": 1}}
    )
    assert new.labels == {
        "slipway.dev/shipyard": "osint",
        "slipway.dev/stage": "prod",
        "slipway.dev/sequence": "one",
        "slipway.dev/parent-run": "check-0042",
    }
    assert new.annotations == {"slipway.dev/context": "ctx-1"}
    assert new.name == linked_run_name("check-0042", "uid-1", "prod", "one")


@pytest.mark.parametrize(
    ("context", "annotations", "expected"),
    [
        ("ctx-1", {}, "ctx-1"),
        (None, {"slipway.dev/context": "from-annotation"}, "from-annotation"),
        (None, {}, "uid-1"),
    ],
    ids=["status context", "annotation before start", "uid as last resort"],
)
def test_linked_run_carries_the_parent_context(
    context: str | None, annotations: dict[str, str], expected: str
) -> None:
    """The new run's context annotation is the parent's context."""
    [new] = linked_runs(
        shipyard(("prod", "one", [on("dev.one.finished")])),
        run(context, annotations),
        Result.PASS,
        None,
        {},
    )
    assert new.annotations == {"slipway.dev/context": expected}


def test_linked_run_data_is_a_copy() -> None:
    """Changing the new run's data does not change the data it was made from."""
    data = {"m": {"x": 1}}
    [new] = linked_runs(
        shipyard(("prod", "one", [on("dev.one.finished")])), run(), Result.PASS, None, data
    )
    new.spec.data["m"]["x"] = 2
    assert data == {"m": {"x": 1}}


NAMES: list[tuple[str, tuple[str, str, str, str]]] = [
    ("short names", ("r", "u", "prod", "one")),
    ("long names", ("r" * 63, "u" * 36, "s" * 63, "q" * 63)),
    ("cut at a dash", ("r", "u", "a" * 28, "b")),
    ("digits", ("0", "1", "2", "3")),
]


@pytest.mark.parametrize("args", [c[1] for c in NAMES], ids=[c[0] for c in NAMES])
def test_linked_run_name_is_a_short_dns_label(args: tuple[str, str, str, str]) -> None:
    """linked_run_name: a DNS label of at most 40 characters, the same for the same inputs."""
    name = linked_run_name(*args)
    assert DNS_LABEL.match(name), name
    assert len(name) <= 40
    assert "--" not in name
    assert name == linked_run_name(*args)


def test_linked_run_name_reads_stage_and_sequence() -> None:
    """The name starts with `<stage>-<sequence>-` so a person recognises it."""
    assert linked_run_name("check-0042", "uid-1", "prod", "one").startswith("prod-one-")


@pytest.mark.parametrize(
    "other",
    [
        ("x", "uid-1", "prod", "one"),
        ("check", "uid-2", "prod", "one"),
        ("check", "uid-1", "qa", "one"),
        ("check", "uid-1", "prod", "two"),
    ],
    ids=["parent", "parent uid", "stage", "sequence"],
)
def test_linked_run_name_differs_when_any_input_differs(other: tuple[str, str, str, str]) -> None:
    """A different parent, uid (a re-created parent), stage or sequence gives another name."""
    assert linked_run_name("check", "uid-1", "prod", "one") != linked_run_name(*other)
