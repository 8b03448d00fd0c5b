"""The resource models: wire format, validation, helpers, and the examples they accept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from slipway.api.common import Condition, ConditionStatus, Reason, Result
from slipway.api.resources import RESOURCES
from slipway.api.sequencerun import RunPhase, SequenceRunSpec, SequenceRunStatus
from slipway.api.shipyard import Retries, ShipyardSpec, Task
from slipway.api.taskexecution import TaskExecutionStatus, execution_name
from slipway.api.taskprovider import ProviderKind, TaskProviderSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"
SPEC_MODELS = {r.kind: r.spec for r in RESOURCES}

CLOUD_EVENT = {"url": "http://phone-checker.tools:8080/"}
JOB = {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}
EVALUATION = {"sources": {}, "slo": {"total_score": {"pass": "90%"}}}


def example_objects() -> list[dict[str, Any]]:
    objects = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        objects += [o for o in yaml.safe_load_all(path.read_text()) if o]
    return objects


def shipyard(**sequence: Any) -> dict[str, Any]:
    return {"stages": [{"name": "dev", "sequences": [{"name": "s", **sequence}]}]}


def test_every_example_parses_with_its_model() -> None:
    """Each object in manifests/examples/ is a valid spec of its kind."""
    objects = example_objects()
    assert {o["kind"] for o in objects} >= {"Shipyard", "TaskProvider", "SequenceRun"}
    for obj in objects:
        SPEC_MODELS[obj["kind"]].model_validate(obj["spec"])


def test_example_shipyard_has_the_seed_sequences() -> None:
    """The example Shipyard holds the seed's two sequences and the linked prod stage."""
    (obj,) = [o for o in example_objects() if o["kind"] == "Shipyard"]
    spec = ShipyardSpec.model_validate(obj["spec"])
    one = spec.sequence("dev", "sequence-one")
    two = spec.sequence("dev", "sequence-two")
    assert one is not None
    assert [t.name for t in one.tasks] == ["checknumber"]
    assert two is not None
    assert [t.name for t in two.tasks] == [
        "extract-metadata",
        "geolookup",
        "author-search",
        "evaluate",
    ]
    prod = spec.sequence("prod", "sequence-one")
    assert prod is not None
    assert prod.triggered_on[0].event == "dev.sequence-one.finished"


def test_wire_format_is_camel_case_without_unset_fields() -> None:
    """to_wire writes camelCase keys and leaves out fields that are None."""
    task = Task(name="checknumber", start_timeout="10m", retries=Retries(limit=2))
    assert task.to_wire() == {
        "name": "checknumber",
        "properties": {},
        "startTimeout": "10m",
        "retries": {"limit": 2, "backoff": "10s"},
    }


def test_models_accept_camel_and_snake_case() -> None:
    """Input by wire name (camelCase) and by Python name (snake_case) gives the same model."""
    assert Task.model_validate({"name": "t", "triggeredAfter": "5s"}) == Task.model_validate(
        {"name": "t", "triggered_after": "5s"}
    )


@pytest.mark.parametrize("name", ["dev.x", "Dev", "-dev", "dev-", "", "a" * 64, "dev_1"])
def test_names_are_dns_labels_without_dots(name: str) -> None:
    """Stage names with dots, capitals, edge dashes, underscores or 64+ characters fail."""
    with pytest.raises(ValidationError):
        ShipyardSpec.model_validate(
            {"stages": [{"name": name, "sequences": [{"name": "s", "tasks": [{"name": "t"}]}]}]}
        )


def test_durations_are_validated_in_the_model() -> None:
    """A task timeout that is not a Go duration fails validation."""
    with pytest.raises(ValidationError, match="timeout"):
        Task.model_validate({"name": "t", "timeout": "1 day"})


def test_spec_models_reject_unknown_fields() -> None:
    """A misspelt spec field is an error, not silently ignored."""
    with pytest.raises(ValidationError, match="startTimeOut"):
        Task.model_validate({"name": "t", "startTimeOut": "1m"})


def test_status_models_ignore_unknown_fields() -> None:
    """A status written by a newer operator (with fields this one does not know) still reads."""
    status = SequenceRunStatus.model_validate({"phase": "Started", "somethingNew": 1})
    assert status.phase is RunPhase.STARTED


@pytest.mark.parametrize("value", ["passed", "failed", "ok", "PASS"])
def test_selector_values_are_results(value: str) -> None:
    """selector.match values other than pass, warning and fail are rejected."""
    trigger = {"event": "dev.a.finished", "selector": {"match": {"result": value}}}
    with pytest.raises(ValidationError):
        ShipyardSpec.model_validate(shipyard(tasks=[{"name": "t"}], triggeredOn=[trigger]))


@pytest.mark.parametrize("event", ["dev.a.triggered", "dev.finished", "a.b.c.finished", "x"])
def test_triggered_on_events_name_a_finished_sequence(event: str) -> None:
    """triggeredOn.event must be `<stage>.<sequence>.finished`."""
    with pytest.raises(ValidationError):
        ShipyardSpec.model_validate(shipyard(tasks=[{"name": "t"}], triggeredOn=[{"event": event}]))


@pytest.mark.parametrize(
    ("kinds", "count"),
    [
        ({}, 0),
        ({"cloudEvent": CLOUD_EVENT, "job": JOB}, 2),
        ({"job": JOB, "evaluation": EVALUATION}, 2),
    ],
)
def test_task_provider_sets_exactly_one_kind(kinds: dict[str, Any], count: int) -> None:
    """A TaskProvider with no kind or with two kinds fails validation, naming the count."""
    with pytest.raises(ValidationError, match=f"exactly one .* sets {count}"):
        TaskProviderSpec.model_validate({"task": "t", **kinds})


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        ("cloudEvent", CLOUD_EVENT, ProviderKind.CLOUD_EVENT),
        ("job", JOB, ProviderKind.JOB),
        ("evaluation", EVALUATION, ProviderKind.EVALUATION),
    ],
)
def test_task_provider_kind(kind: str, body: dict[str, Any], expected: ProviderKind) -> None:
    """`kind` names the one way the provider carries out its task."""
    assert TaskProviderSpec.model_validate({"task": "t", kind: body}).kind is expected


def test_task_provider_serves_its_task_stages_and_shipyards() -> None:
    """A provider serves its task, in its stages and Shipyards; unset lists mean all."""
    narrow = TaskProviderSpec.model_validate(
        {"task": "t", "stages": ["dev"], "shipyards": ["osint"], "cloudEvent": CLOUD_EVENT}
    )
    wide = TaskProviderSpec.model_validate({"task": "t", "cloudEvent": CLOUD_EVENT})
    assert narrow.serves("osint", "dev", "t")
    assert not narrow.serves("osint", "prod", "t")
    assert not narrow.serves("other", "dev", "t")
    assert not narrow.serves("osint", "dev", "u")
    assert wide.serves("any", "any", "t")


def test_sequence_run_spec_defaults() -> None:
    """A SequenceRun without data or abort has empty data and is not aborted."""
    spec = SequenceRunSpec.model_validate({"shipyard": "osint", "stage": "dev", "sequence": "s"})
    assert spec.data == {}
    assert spec.abort is False


def test_status_round_trips_through_the_wire_format() -> None:
    """A status written with to_wire reads back equal (timestamps, enums, nested records)."""
    status = TaskExecutionStatus.model_validate(
        {
            "phase": "Finished",
            "result": "warning",
            "reason": "Completed",
            "attempts": 2,
            "startedAt": "2026-01-02T03:04:05Z",
            "providers": [{"name": "p", "kind": "job", "phase": "Finished", "result": "pass"}],
            "conditions": [
                {"type": "Succeeded", "status": "True", "reason": "Completed"},
            ],
        }
    )
    wire = status.to_wire()
    assert wire["startedAt"] == "2026-01-02T03:04:05Z"
    assert TaskExecutionStatus.model_validate(wire) == status
    assert status.result is Result.WARNING
    assert status.reason is Reason.COMPLETED
    assert status.conditions == [
        Condition(type="Succeeded", status=ConditionStatus.TRUE, reason="Completed")
    ]


def test_execution_name_is_deterministic() -> None:
    """A run's TaskExecution is named `<run>-<index>-<task>`."""
    assert execution_name("check-0042", 0, "checknumber") == "check-0042-0-checknumber"


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    if model in seen:
        return
    seen.add(model)
    for info in model.model_fields.values():
        for arg in _types(info.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                _models(arg, seen)


def _types(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", ())
    return [annotation, *[t for a in args for t in _types(a)]]


def test_every_field_has_a_description() -> None:
    """Every field of every model has a docstring (it becomes the CRD's description)."""
    seen: set[type[BaseModel]] = set()
    for resource in RESOURCES:
        _models(resource.spec, seen)
        _models(resource.status, seen)
    missing = [
        f"{model.__name__}.{name}"
        for model in seen
        for name, info in model.model_fields.items()
        if not info.description
    ]
    assert len(seen) > 15
    assert missing == []


@pytest.mark.parametrize("key", ["status", "checknumber.status", "check.number.result", ""])
def test_selector_keys_name_results(key: str) -> None:
    """selector.match keys other than `result` and `<task>.result` are rejected."""
    trigger = {"event": "dev.a.finished", "selector": {"match": {key: "pass"}}}
    with pytest.raises(ValidationError, match=r"selector\.match keys"):
        ShipyardSpec.model_validate(shipyard(tasks=[{"name": "t"}], triggeredOn=[trigger]))


@pytest.mark.parametrize("key", ["result", "checknumber.result"])
def test_selector_keys_accept_results(key: str) -> None:
    """`result` and `<task>.result` are valid selector keys."""
    trigger = {"event": "dev.a.finished", "selector": {"match": {key: "fail"}}}
    spec = ShipyardSpec.model_validate(shipyard(tasks=[{"name": "t"}], triggeredOn=[trigger]))
    selector = spec.stages[0].sequences[0].triggered_on[0].selector
    assert selector is not None
    assert selector.match == {key: Result.FAIL}


def test_result_names_are_the_result_enum() -> None:
    """The plain-string result type lists exactly the verdicts of the Result enum, in order."""
    from typing import get_args

    from slipway.api.common import Result, ResultName

    assert get_args(ResultName) == tuple(r.value for r in Result)


def test_a_copied_status_is_equal_and_independent() -> None:
    """`copied()` (dump and validate again) gives what a deep copy gives: an equal status
    whose nested records and data change without touching the original."""
    status = SequenceRunStatus.model_validate(
        {
            "phase": "Started",
            "startedAt": "2026-11-30T10:00:00Z",
            "tasks": [{"index": 0, "name": "a", "phase": "Started"}],
            "data": {"nested": {"list": [1, 2]}},
        }
    )
    copy = status.copied()
    assert copy == status
    assert copy.to_wire() == status.to_wire()
    copy.tasks[0].name = "b"
    copy.data["nested"]["list"].append(3)
    assert status.tasks[0].name == "a"
    assert status.data["nested"]["list"] == [1, 2]
