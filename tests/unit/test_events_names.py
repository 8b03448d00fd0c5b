"""Event type names: building, parsing, prefixes and name rules."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from slipway.events import (
    SequenceEventType,
    SequencePhase,
    TaskEventType,
    TaskPhase,
    UnknownEventTypeError,
    check_name,
    is_name,
    is_object_name,
    normalize_prefix,
    parse_event_type,
    sequence_event_type,
    task_event_type,
)


@pytest.mark.parametrize(
    ("stage", "sequence", "phase", "prefix", "expected"),
    [
        ("dev", "sequence-one", "triggered", "", "dev.sequence-one.triggered"),
        ("dev", "sequence-one", "started", "", "dev.sequence-one.started"),
        ("prod", "s1", "finished", "", "prod.s1.finished"),
        ("dev", "seq", "triggered", "dev.slipway.", "dev.slipway.dev.seq.triggered"),
        ("dev", "seq", "triggered", "dev.slipway", "dev.slipway.dev.seq.triggered"),
    ],
)
def test_sequence_event_type_is_built(
    stage: str, sequence: str, phase: SequencePhase, prefix: str, expected: str
) -> None:
    """A sequence type is `[prefix]<stage>.<sequence>.<phase>`."""
    assert sequence_event_type(stage, sequence, phase, prefix) == expected


@pytest.mark.parametrize(
    ("task", "phase", "prefix", "expected"),
    [
        ("checknumber", "triggered", "", "checknumber.triggered"),
        ("checknumber", "started", "", "checknumber.started"),
        ("checknumber", "status.changed", "", "checknumber.status.changed"),
        ("checknumber", "finished", "", "checknumber.finished"),
        ("a", "finished", "com.example.", "com.example.a.finished"),
    ],
)
def test_task_event_type_is_built(task: str, phase: TaskPhase, prefix: str, expected: str) -> None:
    """A task type is `[prefix]<task>.<phase>`, `status.changed` included."""
    assert task_event_type(task, phase, prefix) == expected


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: sequence_event_type("Dev", "s", "triggered"), "stage 'Dev'"),
        (lambda: sequence_event_type("dev", "a.b", "triggered"), "sequence 'a.b'"),
        (lambda: sequence_event_type("dev", "s", "status.changed"), "sequence phase"),  # type: ignore[arg-type]  # deliberately invalid
        (lambda: task_event_type("", "triggered"), "task ''"),
        (lambda: task_event_type("-x", "triggered"), "task '-x'"),
        (lambda: task_event_type("x" * 64, "triggered"), "not a valid name"),
        (lambda: task_event_type("x", "done"), "task phase"),  # type: ignore[arg-type]  # deliberately invalid
        (lambda: task_event_type("x", "triggered", "a..b"), "prefix"),
    ],
)
def test_invalid_type_parts_are_refused_when_building(
    build: Callable[[], object], match: str
) -> None:
    """Building a type with a bad name, phase or prefix raises ValueError naming it."""
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize(
    ("value", "prefix", "expected"),
    [
        ("dev.sequence-one.triggered", "", SequenceEventType("dev", "sequence-one", "triggered")),
        ("dev.s.started", "", SequenceEventType("dev", "s", "started")),
        ("prod.s.finished", "", SequenceEventType("prod", "s", "finished")),
        ("checknumber.triggered", "", TaskEventType("checknumber", "triggered")),
        ("checknumber.started", "", TaskEventType("checknumber", "started")),
        ("checknumber.status.changed", "", TaskEventType("checknumber", "status.changed")),
        ("checknumber.finished", "", TaskEventType("checknumber", "finished")),
        ("status.status.changed", "", TaskEventType("status", "status.changed")),
        ("status.finished", "", TaskEventType("status", "finished")),
        ("started.triggered", "", TaskEventType("started", "triggered")),
        ("dev.slipway.x.status.changed", "dev.slipway.", TaskEventType("x", "status.changed")),
        ("dev.slipway.dev.s.triggered", "dev.slipway", SequenceEventType("dev", "s", "triggered")),
    ],
)
def test_type_strings_parse(value: str, prefix: str, expected: object) -> None:
    """Task types have one name segment, sequence types two; status.changed is one phase."""
    assert parse_event_type(value, prefix) == expected


@pytest.mark.parametrize(
    ("value", "prefix", "match"),
    [
        ("", "", "ends in ''"),
        ("triggered", "", "0 name segments"),
        ("a.b.c.triggered", "", "3 name segments"),
        ("checknumber.done", "", "ends in 'done'"),
        ("status.changed", "", "needs a task name"),
        ("dev.seq.status.changed", "", "only task events"),
        ("Check.triggered", "", "segment 'Check'"),
        ("dev..triggered", "", "segment ''"),
        ("com.example.object.created", "", "ends in 'created'"),
        ("dev.s.triggered", "dev.slipway.", "does not start with the configured prefix"),
        ("dev.slipwayx.triggered", "dev.slipway", "does not start with the configured prefix"),
    ],
)
def test_foreign_type_strings_are_unknown(value: str, prefix: str, match: str) -> None:
    """Anything but a Slipway type raises UnknownEventTypeError (422) saying why."""
    with pytest.raises(UnknownEventTypeError, match=match) as caught:
        parse_event_type(value, prefix)
    assert caught.value.status == 422
    assert "expected '" in caught.value.message


@pytest.mark.parametrize(
    "event_type",
    [
        SequenceEventType("dev", "sequence-one", "finished"),
        TaskEventType("checknumber", "status.changed"),
        TaskEventType("a-1", "triggered"),
    ],
)
@pytest.mark.parametrize("prefix", ["", "dev.slipway.", "sh.keptn.event."])
def test_type_round_trips(event_type: SequenceEventType | TaskEventType, prefix: str) -> None:
    """Parsing a built type string gives back the same type, with or without a prefix."""
    assert parse_event_type(event_type.to_string(prefix), prefix) == event_type


def test_type_exposes_kind_and_names() -> None:
    """Parsed types say their kind and their name segments."""
    sequence = parse_event_type("dev.s.triggered")
    task = parse_event_type("t.status.changed")
    assert (sequence.kind, sequence.names, sequence.phase) == (
        "sequence",
        ("dev", "s"),
        "triggered",
    )
    assert (task.kind, task.names, task.phase) == ("task", ("t",), "status.changed")


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [("", ""), ("dev.slipway", "dev.slipway."), ("dev.slipway.", "dev.slipway."), ("x", "x.")],
)
def test_prefix_is_normalised(prefix: str, expected: str) -> None:
    """A prefix gets exactly one trailing dot; empty means none."""
    assert normalize_prefix(prefix) == expected


@pytest.mark.parametrize("prefix", [".", "a..b", ".a", "a b.", "a/b"])
def test_bad_prefix_is_refused(prefix: str) -> None:
    """A prefix with empty segments or odd characters is a configuration error."""
    with pytest.raises(ValueError, match="prefix"):
        normalize_prefix(prefix)


@pytest.mark.parametrize(
    ("value", "label", "object_name"),
    [
        ("checknumber", True, True),
        ("a", True, True),
        ("a-1", True, True),
        ("x" * 63, True, True),
        ("x" * 64, False, True),
        ("my.shipyard", False, True),
        ("-a", False, False),
        ("a-", False, False),
        ("A", False, False),
        ("", False, False),
        ("a_b", False, False),
        ("a\n", False, False),
    ],
)
def test_name_rules(value: str, label: bool, object_name: bool) -> None:
    """Names are DNS labels; Shipyard names may be DNS subdomains."""
    assert is_name(value) is label
    assert is_object_name(value) is object_name
    if label:
        assert check_name(value, "task") == value
    else:
        with pytest.raises(ValueError, match="DNS label"):
            check_name(value, "task")
