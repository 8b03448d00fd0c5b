"""Events Slipway sends: ids, data, extension attributes, HTTP serialisation."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cloudevents.core.v1.event import CloudEvent

from slipway.events import (
    SLIPWAYCALLBACK,
    SLIPWAYCONTEXT,
    SLIPWAYTOKEN,
    SOURCE,
    TRIGGEREDID,
    Mode,
    RunScope,
    SequencePhase,
    build_sequence_finished,
    build_sequence_started,
    build_sequence_triggered,
    build_task_triggered,
    callback_url,
    parse_http,
    sequence_event_id,
    task_triggered_id,
    to_binary,
    to_http,
    to_json,
    to_structured,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
SCOPE = RunScope(
    namespace="caps",
    run="check-0042",
    shipyard="osint",
    stage="dev",
    sequence="sequence-one",
    context="6f1c",
)
METADATA = {
    "shipyard": "osint",
    "stage": "dev",
    "sequence": "sequence-one",
    "run": {"namespace": "caps", "name": "check-0042"},
}


def triggered(**overrides: Any) -> CloudEvent:
    """A checknumber.triggered with defaults, any argument overridable."""
    arguments: dict[str, Any] = {
        "task": "checknumber",
        "execution": "check-0042-0-checknumber",
        "event_id": task_triggered_id("caps", "check-0042-0-checknumber", "phone", 0),
        "time": NOW,
        "data": {"number": "+44"},
        "properties": {"country": "GB"},
        "callback_url": "http://gw:8080/v1/namespaces/caps/events",
        "callback_token": "secret-token",
    }
    arguments.update(overrides)
    return build_task_triggered(SCOPE, **arguments)


def test_task_triggered_attributes() -> None:
    """`.triggered` has the task type, id, source, subject, time, JSON content and extensions."""
    event = triggered()
    attributes = event.get_attributes()
    assert attributes == {
        "specversion": "1.0",
        "id": "caps/check-0042-0-checknumber/phone/0",
        "source": SOURCE,
        "type": "checknumber.triggered",
        "subject": "caps/check-0042-0-checknumber",
        "time": NOW,
        "datacontenttype": "application/json",
        SLIPWAYCONTEXT: "6f1c",
        SLIPWAYCALLBACK: "http://gw:8080/v1/namespaces/caps/events",
        SLIPWAYTOKEN: "secret-token",
    }
    assert TRIGGEREDID not in attributes


@pytest.mark.parametrize(
    ("data", "properties", "expected_extra"),
    [
        ({"number": "+44"}, {"country": "GB"}, {"number": "+44", "checknumber": {"country": "GB"}}),
        ({"number": "+44"}, None, {"number": "+44"}),
        ({"number": "+44"}, {}, {"number": "+44"}),
        (
            {"checknumber": {"valid": True, "deep": {"a": 1}}},
            {"country": "GB", "deep": {"b": 2}},
            {"checknumber": {"valid": True, "country": "GB", "deep": {"a": 1, "b": 2}}},
        ),
        ({"checknumber": "text"}, {"country": "GB"}, {"checknumber": {"country": "GB"}}),
        ({"checknumber": {"country": "FR"}}, {"country": "GB"}, {"checknumber": {"country": "GB"}}),
        (
            {"stage": "user", "task": "user", "run": "user", "x": 1},
            None,
            {"x": 1},
        ),
    ],
)
def test_task_triggered_data(
    data: dict[str, Any], properties: dict[str, Any] | None, expected_extra: dict[str, Any]
) -> None:
    """Data = run data, properties merged under data.<task>, then Slipway's keys on top."""
    event = triggered(data=data, properties=properties)
    assert event.get_data() == {**expected_extra, **METADATA, "task": "checknumber"}


def test_task_triggered_copies_its_inputs() -> None:
    """The event owns its data: the caller's mappings are neither changed nor shared."""
    data: dict[str, Any] = {"nested": {"a": 1}, "checknumber": {"v": 1}}
    properties: dict[str, Any] = {"deep": {"b": 2}}
    event = triggered(data=data, properties=properties)
    payload = event.get_data()
    assert isinstance(payload, dict)
    payload["nested"]["a"] = 99
    payload["checknumber"]["deep"]["b"] = 99
    assert data == {"nested": {"a": 1}, "checknumber": {"v": 1}}
    assert properties == {"deep": {"b": 2}}


def test_task_triggered_uses_the_prefix() -> None:
    """A configured prefix goes in front of the type."""
    assert triggered(prefix="dev.slipway").get_type() == "dev.slipway.checknumber.triggered"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"task": "Check"}, "task 'Check'"),
        ({"time": datetime(2024, 5, 1)}, "timezone-aware"),
        ({"callback_token": ""}, "callback token"),
        ({"callback_url": ""}, "callback URL"),
        ({"prefix": "a..b"}, "prefix"),
    ],
)
def test_task_triggered_refuses_bad_input(overrides: dict[str, Any], match: str) -> None:
    """Invalid names, naive times and missing callback details raise ValueError."""
    with pytest.raises(ValueError, match=match):
        triggered(**overrides)


def test_empty_context_is_refused() -> None:
    """Every event carries a context id, so an empty one is a programming error."""
    scope = RunScope("caps", "r", "osint", "dev", "s", context="")
    with pytest.raises(ValueError, match="context"):
        build_sequence_started(scope, time=NOW)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (("caps", "r-0-t", "phone", 0), "caps/r-0-t/phone/0"),
        (("caps", "r-0-t", "phone", 2), "caps/r-0-t/phone/2"),
        (("caps", "r-0-t", "other.provider", 0), "caps/r-0-t/other.provider/0"),
    ],
)
def test_task_triggered_id_is_deterministic(
    arguments: tuple[str, str, str, int], expected: str
) -> None:
    """The id depends only on namespace, execution, provider and attempt."""
    assert task_triggered_id(*arguments) == expected
    assert task_triggered_id(*arguments) == task_triggered_id(*arguments)


@pytest.mark.parametrize(
    "arguments",
    [("caps", "r", "p", -1), ("", "r", "p", 0), ("caps", "", "p", 0), ("caps", "r", "a/b", 0)],
)
def test_task_triggered_id_refuses_ambiguous_parts(arguments: tuple[str, str, str, int]) -> None:
    """Empty parts, '/' inside a part and negative attempts would make ids collide."""
    with pytest.raises(ValueError, match="must be"):
        task_triggered_id(*arguments)


def test_retried_delivery_is_byte_identical() -> None:
    """Building the same .triggered twice gives the same bytes, so a retry is the same event."""
    assert to_structured(triggered()) == to_structured(triggered())
    assert to_binary(triggered()) == to_binary(triggered())


@pytest.mark.parametrize(
    ("gateway_url", "expected"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1/namespaces/caps/events"),
        (
            "http://gw.slipway-system:8080/",
            "http://gw.slipway-system:8080/v1/namespaces/caps/events",
        ),
    ],
)
def test_callback_url(gateway_url: str, expected: str) -> None:
    """Tools call back on the gateway's events endpoint of their namespace."""
    assert callback_url(gateway_url, "caps") == expected


@pytest.mark.parametrize(
    ("build", "phase", "expected_data"),
    [
        (
            lambda: build_sequence_triggered(SCOPE, data={"number": "+44"}, time=NOW),
            "triggered",
            {"number": "+44", **METADATA},
        ),
        (lambda: build_sequence_started(SCOPE, time=NOW), "started", METADATA),
        (
            lambda: build_sequence_finished(
                SCOPE,
                result="warning",
                reason="Completed",
                message="1 warning",
                data={"number": "+44", "checknumber": {"valid": True}},
                time=NOW,
            ),
            "finished",
            {
                "number": "+44",
                "checknumber": {"valid": True},
                "result": "warning",
                "reason": "Completed",
                "message": "1 warning",
                **METADATA,
            },
        ),
        (
            lambda: build_sequence_finished(
                SCOPE, result="pass", reason="Completed", message=None, data={}, time=NOW
            ),
            "finished",
            {"result": "pass", "reason": "Completed", **METADATA},
        ),
    ],
)
def test_sequence_events(
    build: Callable[[], CloudEvent], phase: SequencePhase, expected_data: Any
) -> None:
    """Sequence events: type, deterministic id per run and phase, subject, context, data."""
    event = build()
    assert event.get_type() == f"dev.sequence-one.{phase}"
    assert event.get_id() == sequence_event_id("caps", "check-0042", phase)
    assert event.get_id() == f"caps/check-0042/{phase}"
    assert event.get_subject() == "caps/check-0042"
    assert event.get_extension(SLIPWAYCONTEXT) == "6f1c"
    assert event.get_extension(SLIPWAYTOKEN) is None
    assert event.get_data() == expected_data


def test_sequence_event_takes_explicit_id_source_and_prefix() -> None:
    """An explicit id, source and prefix override the defaults."""
    event = build_sequence_started(
        SCOPE, time=NOW, event_id="abc", source="urn:test", prefix="dev.slipway."
    )
    assert (event.get_id(), event.get_source(), event.get_type()) == (
        "abc",
        "urn:test",
        "dev.slipway.dev.sequence-one.started",
    )


def test_structured_serialisation() -> None:
    """Structured mode: one content-type header and the whole event as a JSON body."""
    headers, body = to_structured(triggered())
    assert headers == {"content-type": "application/cloudevents+json"}
    document = json.loads(body)
    assert document["type"] == "checknumber.triggered"
    assert document["time"] == "2024-05-01T12:00:00Z"
    assert document[SLIPWAYTOKEN] == "secret-token"
    assert document["data"]["checknumber"] == {"country": "GB"}


def test_binary_serialisation() -> None:
    """Binary mode: ce- headers for every attribute, JSON content type, data as the body."""
    headers, body = to_binary(triggered())
    assert headers == {
        "ce-specversion": "1.0",
        "ce-id": "caps/check-0042-0-checknumber/phone/0",
        "ce-source": SOURCE,
        "ce-type": "checknumber.triggered",
        "ce-subject": "caps/check-0042-0-checknumber",
        "ce-time": "2024-05-01T12:00:00Z",
        "content-type": "application/json",
        "ce-slipwaycontext": "6f1c",
        "ce-slipwaycallback": "http://gw:8080/v1/namespaces/caps/events",
        "ce-slipwaytoken": "secret-token",
    }
    assert json.loads(body) == triggered().get_data()


def test_binary_serialisation_percent_encodes_header_values() -> None:
    """Header values outside printable ASCII are percent-encoded and decode back."""
    event = build_sequence_started(SCOPE, time=NOW, event_id="id with spaces é")
    headers, body = to_binary(event)
    assert headers["ce-id"] == "id%20with%20spaces%20%C3%A9"
    assert parse_http(headers, body).id == "id with spaces é"


@pytest.mark.parametrize("mode", ["structured", "binary"])
@pytest.mark.parametrize("prefix", ["", "dev.slipway."])
def test_round_trip(mode: Mode, prefix: str) -> None:
    """What Slipway sends, Slipway's parser reads back unchanged, in both modes."""
    event = triggered(prefix=prefix, time=NOW + timedelta(microseconds=123456))
    headers, body = to_http(event, mode)
    incoming = parse_http(headers, body, prefix=prefix)
    assert incoming.mode == mode
    assert incoming.id == event.get_id()
    assert incoming.type == event.get_type()
    assert incoming.source == SOURCE
    assert incoming.subject == event.get_subject()
    assert incoming.time == event.get_time()
    assert incoming.data == event.get_data()
    assert incoming.context == "6f1c"
    assert incoming.extensions[SLIPWAYCALLBACK] == "http://gw:8080/v1/namespaces/caps/events"
    assert incoming.extensions[SLIPWAYTOKEN] == "secret-token"
    assert incoming.event_type.names == ("checknumber",)


def test_unknown_mode_is_refused() -> None:
    """A mode other than structured or binary is an error, not a silent default."""
    with pytest.raises(ValueError, match="mode"):
        to_http(triggered(), "batch")  # type: ignore[arg-type]  # deliberately invalid


def test_json_is_the_structured_body() -> None:
    """`to_json` (a Job's SLIPWAY_EVENT) is the structured-mode body as text."""
    assert to_json(triggered()).encode() == to_structured(triggered())[1]


def test_parse_triggered_id_reads_what_task_triggered_id_wrote() -> None:
    """The parts come back from the id; anything not of that shape is None."""
    from slipway.events import TriggeredId, parse_triggered_id

    made = task_triggered_id("caps", "r-0-t", "phone", 2)
    assert parse_triggered_id(made) == TriggeredId("caps", "r-0-t", "phone", 2)
    for other in ("caps/r-0-t/phone", "caps//phone/0", "caps/r/phone/x", "a/b/c/1/2", ""):
        assert parse_triggered_id(other) is None
