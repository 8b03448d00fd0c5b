"""What incoming events mean: tool responses, run triggers and synchronous replies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cloudevents.core.bindings import http
from cloudevents.core.v1.event import CloudEvent

from slipway.events import (
    RESERVED_DATA_KEYS,
    IncomingEvent,
    MalformedEventError,
    ResponsePhase,
    RunScope,
    SequenceTrigger,
    TaskResponse,
    UnprocessableEventError,
    build_sequence_finished,
    build_task_triggered,
    interpret,
    interpret_sequence_trigger,
    interpret_task_response,
    parse_http,
    parse_sync_response,
    to_http,
)

TRIGGERED_ID = "caps/r-0-checknumber/phone/0"
STRUCTURED = {"Content-Type": "application/cloudevents+json"}


def incoming(
    type_: str = "checknumber.finished",
    data: dict[str, Any] | None = None,
    prefix: str = "",
    **attributes: Any,
) -> IncomingEvent:
    """A parsed structured event with Slipway's usual response attributes."""
    document: dict[str, Any] = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "tools/phone-checker",
        "type": type_,
        "triggeredid": TRIGGERED_ID,
        "slipwaycontext": "6f1c",
        "data": data if data is not None else {},
        **attributes,
    }
    document = {k: v for k, v in document.items() if v is not None}
    return parse_http(STRUCTURED, json.dumps(document).encode(), prefix=prefix)


@pytest.mark.parametrize(
    ("data", "result", "status", "note"),
    [
        ({"result": "pass"}, "pass", None, None),
        ({"result": "warning"}, "warning", None, None),
        ({"result": "fail"}, "fail", None, None),
        ({"result": "pass", "status": "succeeded"}, "pass", "succeeded", None),
        ({"result": "warning", "status": "succeeded"}, "warning", "succeeded", None),
        ({}, "fail", None, "no result: counts as fail"),
        ({"result": None}, "fail", None, "no result: counts as fail"),
        ({"result": "passed"}, "fail", None, "result 'passed' is not one of pass, warning, fail"),
        ({"result": "PASS"}, "fail", None, "result 'PASS'"),
        ({"result": 1}, "fail", None, "result 1 is not"),
        (
            {"result": "pass", "status": "errored"},
            "fail",
            "errored",
            "status errored: counts as fail",
        ),
        ({"result": "fail", "status": "errored"}, "fail", "errored", None),
        ({"result": "pass", "status": "aborted"}, "fail", "errored", "status 'aborted' is not one"),
        ({"status": "succeeded"}, "fail", "succeeded", "no result"),
        (
            {"result": "x", "status": "y"},
            "fail",
            "errored",
            "result 'x' is not one of pass, warning, fail; status 'y'",
        ),
    ],
)
def test_finished_verdict(
    data: dict[str, Any], result: str, status: str | None, note: str | None
) -> None:
    """Missing or unknown results and errored (or unknown) status count as fail, with a note."""
    response = interpret_task_response(incoming(data=data))
    assert (response.result, response.status) == (result, status)
    if note is None:
        assert response.result_note is None
    else:
        assert response.result_note is not None
        assert response.result_note.startswith(note)


def test_finished_output_drops_reserved_keys() -> None:
    """The output is the data minus result, status, message and Slipway's own keys."""
    data = {
        "result": "pass",
        "status": "succeeded",
        "message": "ok",
        "shipyard": "osint",
        "stage": "dev",
        "sequence": "sequence-one",
        "task": "checknumber",
        "run": {"namespace": "caps", "name": "r"},
        "valid": True,
        "checknumber": {"carrier": "BT"},
        "number": "+44",
    }
    response = interpret_task_response(incoming(data=data))
    assert response.output == {"valid": True, "checknumber": {"carrier": "BT"}, "number": "+44"}
    assert response.message == "ok"
    assert set(data) - set(response.output) == RESERVED_DATA_KEYS


def test_reserved_keys_are_documented_set() -> None:
    """The reserved set is exactly the response verdict keys and the .triggered metadata keys."""
    assert {"result", "status", "message", "shipyard", "stage", "sequence", "task", "run"} == (
        RESERVED_DATA_KEYS
    )


@pytest.mark.parametrize(
    ("type_", "phase"),
    [
        ("checknumber.started", "started"),
        ("checknumber.status.changed", "status.changed"),
    ],
)
def test_progress_events_have_no_verdict(type_: str, phase: ResponsePhase) -> None:
    """`.started` and `.status.changed` carry a message but no result, status or output."""
    response = interpret_task_response(incoming(type_, {"message": "50%", "result": "pass"}))
    assert response == TaskResponse(
        task="checknumber",
        phase=phase,
        triggered_id=TRIGGERED_ID,
        context="6f1c",
        source="tools/phone-checker",
        id="e-1",
        time=None,
        message="50%",
        result=None,
        status=None,
        result_note=None,
        output=None,
    )
    assert response.dedup_key == ("tools/phone-checker", "e-1")


def test_response_with_prefix_and_time() -> None:
    """A prefixed response is read the same; its time is kept."""
    event = incoming(
        "dev.slipway.checknumber.status.changed", prefix="dev.slipway", time="2024-05-01T12:00:00Z"
    )
    response = interpret_task_response(event)
    assert (response.task, response.phase) == ("checknumber", "status.changed")
    assert response.time == datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("message", "expected"),
    [("done", "done"), (None, None), ({"a": 1}, '{"a": 1}'), (3, "3")],
)
def test_message_becomes_text(message: Any, expected: str | None) -> None:
    """A non-text message is kept as its JSON text."""
    data = {"result": "pass"} if message is None else {"result": "pass", "message": message}
    assert interpret_task_response(incoming(data=data)).message == expected


def test_context_is_optional_on_responses() -> None:
    """A response without `slipwaycontext` is still read (the triggeredid correlates it)."""
    assert interpret_task_response(incoming(slipwaycontext=None)).context is None


@pytest.mark.parametrize(
    ("event_kwargs", "triggered_id", "error", "match"),
    [
        ({"triggeredid": None}, None, MalformedEventError, "triggeredid"),
        ({"triggeredid": ""}, None, MalformedEventError, "triggeredid"),
        ({}, "caps/other/phone/0", MalformedEventError, "not 'caps/other/phone/0'"),
        ({"type_": "checknumber.triggered"}, None, UnprocessableEventError, "does not accept"),
        ({"type_": "dev.s.finished"}, None, UnprocessableEventError, "sequence event"),
        ({"type_": "dev.s.triggered"}, None, UnprocessableEventError, "sequence event"),
    ],
)
def test_unusable_task_responses(
    event_kwargs: dict[str, Any],
    triggered_id: str | None,
    error: type[Exception],
    match: str,
) -> None:
    """Responses must name the .triggered they answer and be a response type."""
    with pytest.raises(error, match=match):
        interpret_task_response(incoming(**event_kwargs), triggered_id=triggered_id)


def test_known_triggered_id_fills_in_a_missing_one() -> None:
    """When the caller knows the .triggered answered, a missing triggeredid is taken as it."""
    response = interpret_task_response(incoming(triggeredid=None), triggered_id=TRIGGERED_ID)
    assert response.triggered_id == TRIGGERED_ID


@pytest.mark.parametrize(
    ("data", "shipyard", "rest"),
    [
        ({"shipyard": "osint", "number": "+44"}, "osint", {"number": "+44"}),
        ({"number": "+44"}, None, {"number": "+44"}),
        ({}, None, {}),
        ({"shipyard": "my.shipyard"}, "my.shipyard", {}),
    ],
)
def test_sequence_trigger(data: dict[str, Any], shipyard: str | None, rest: dict[str, Any]) -> None:
    """`<stage>.<sequence>.triggered` names the run; data.shipyard is taken out of spec.data."""
    trigger = interpret_sequence_trigger(incoming("dev.sequence-one.triggered", data))
    assert trigger == SequenceTrigger(
        stage="dev",
        sequence="sequence-one",
        shipyard=shipyard,
        data=rest,
        context="6f1c",
        source="tools/phone-checker",
        id="e-1",
    )
    assert trigger.dedup_key == ("tools/phone-checker", "e-1")


@pytest.mark.parametrize(
    ("type_", "data", "error", "match"),
    [
        ("dev.s.started", {}, UnprocessableEventError, "sent by Slipway"),
        ("dev.s.finished", {}, UnprocessableEventError, "dev.s.triggered"),
        ("checknumber.finished", {}, UnprocessableEventError, "cannot start a run"),
        ("dev.s.triggered", {"shipyard": 5}, MalformedEventError, "data.shipyard"),
        ("dev.s.triggered", {"shipyard": "Bad_Name"}, MalformedEventError, "data.shipyard"),
    ],
)
def test_unusable_sequence_triggers(
    type_: str, data: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Only `.triggered` starts a run, and data.shipyard must be an object name."""
    with pytest.raises(error, match=match):
        interpret_sequence_trigger(incoming(type_, data))


@pytest.mark.parametrize(
    ("type_", "expected"),
    [("dev.s.triggered", SequenceTrigger), ("checknumber.finished", TaskResponse)],
)
def test_interpret_dispatches_on_kind(type_: str, expected: type) -> None:
    """`interpret` gives a SequenceTrigger for sequence events and a TaskResponse for tasks."""
    assert isinstance(interpret(incoming(type_, {"result": "pass"})), expected)


def test_sequence_finished_is_refused_by_interpret() -> None:
    """A Slipway-emitted sequence `.finished` posted back is 422, even if Slipway built it."""
    scope = RunScope("caps", "r", "osint", "dev", "s", "6f1c")
    event = build_sequence_finished(
        scope,
        result="pass",
        reason="Completed",
        message=None,
        data={},
        time=datetime.now(UTC),
    )
    headers, body = to_http(event, "binary")
    with pytest.raises(UnprocessableEventError):
        interpret(parse_http(headers, body))


def sync_reply(
    mode: str, type_: str = "checknumber.finished", **data: Any
) -> tuple[dict[str, str], bytes]:
    """A tool's synchronous reply, built with the CloudEvents SDK as a Python tool would."""
    event = CloudEvent(
        {"id": "reply-1", "source": "tools/phone-checker", "type": type_},
        data,
    )
    message = (
        http.to_structured_event(event) if mode == "structured" else http.to_binary_event(event)
    )
    return message.headers, message.body


@pytest.mark.parametrize("mode", ["structured", "binary"])
@pytest.mark.parametrize(
    ("type_", "data", "phase", "result"),
    [
        ("checknumber.finished", {"result": "pass", "valid": True}, "finished", "pass"),
        ("checknumber.finished", {"valid": True}, "finished", "fail"),
        ("checknumber.started", {}, "started", None),
    ],
)
def test_sync_response_is_parsed(
    mode: str, type_: str, data: dict[str, Any], phase: str, result: str | None
) -> None:
    """A tool answering the POST with .started or .finished (either mode) is read as a response."""
    headers, body = sync_reply(mode, type_, **data)
    response = parse_sync_response(headers, body, task="checknumber", triggered_id=TRIGGERED_ID)
    assert response is not None
    assert (response.phase, response.result, response.triggered_id) == (phase, result, TRIGGERED_ID)
    if phase == "finished":
        assert response.output == {"valid": True}


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, b""),
        ({"Content-Type": "text/plain"}, b"accepted"),
        ({"Content-Type": "application/json"}, b'{"status": "accepted"}'),
    ],
)
def test_sync_response_without_event_means_asynchronous(
    headers: dict[str, str], body: bytes
) -> None:
    """A reply that is not a CloudEvent is None: the tool will call back later."""
    assert parse_sync_response(headers, body, task="checknumber", triggered_id=TRIGGERED_ID) is None


@pytest.mark.parametrize(
    ("reply", "error", "match"),
    [
        (
            sync_reply("structured", "other.finished", result="pass"),
            MalformedEventError,
            "task 'other'",
        ),
        (sync_reply("binary", "checknumber.triggered"), UnprocessableEventError, "does not accept"),
        ((STRUCTURED, b"{oops"), MalformedEventError, "not valid JSON"),
        (
            (
                {**sync_reply("binary")[0], "ce-triggeredid": "caps/x/p/0"},
                b"{}",
            ),
            MalformedEventError,
            "answers the .triggered event 'caps/x/p/0'",
        ),
    ],
)
def test_unusable_sync_responses(
    reply: tuple[dict[str, str], bytes], error: type[Exception], match: str
) -> None:
    """A reply that claims to be a CloudEvent but cannot be used raises, saying why."""
    with pytest.raises(error, match=match):
        parse_sync_response(*reply, task="checknumber", triggered_id=TRIGGERED_ID)


def test_full_exchange_with_prefix() -> None:
    """Slipway's .triggered and the tool's prefixed .finished reply correlate end to end."""
    scope = RunScope("caps", "r", "osint", "dev", "s", "6f1c")
    sent = build_task_triggered(
        scope,
        task="checknumber",
        execution="r-0-checknumber",
        event_id=TRIGGERED_ID,
        time=datetime(2024, 5, 1, tzinfo=UTC),
        data={"number": "+44"},
        properties=None,
        callback_url="http://gw/v1/namespaces/caps/events",
        callback_token="t",
        prefix="dev.slipway.",
    )
    received = parse_http(*to_http(sent, "binary"), prefix="dev.slipway.")
    reply = {
        "specversion": "1.0",
        "id": "reply-1",
        "source": "tools/phone-checker",
        "type": "dev.slipway.checknumber.finished",
        "triggeredid": received.id,
        "slipwaycontext": received.context,
        "data": {**received.data, "result": "warning", "carrier": "BT"},
    }
    response = parse_sync_response(
        STRUCTURED,
        json.dumps(reply).encode(),
        task="checknumber",
        triggered_id=sent.get_id(),
        prefix="dev.slipway.",
    )
    assert response is not None
    assert (response.result, response.context) == ("warning", "6f1c")
    assert response.output == {"number": "+44", "carrier": "BT"}
