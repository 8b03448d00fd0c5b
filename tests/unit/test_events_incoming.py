"""Parsing HTTP requests into IncomingEvents, and every error with its HTTP status."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slipway.events import (
    MAX_EVENT_SIZE,
    EventError,
    EventTooLargeError,
    MalformedEventError,
    NotACloudEventError,
    TaskEventType,
    UnknownEventTypeError,
    UnprocessableEventError,
    check_size,
    error_body,
    is_cloudevent,
    parse_http,
)

STRUCTURED = {"Content-Type": "application/cloudevents+json"}
EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "e-1",
    "source": "tools/phone-checker",
    "type": "checknumber.finished",
    "triggeredid": "caps/r-0-checknumber/phone/0",
    "slipwaycontext": "6f1c",
    "data": {"result": "pass"},
}
BINARY = {
    "ce-specversion": "1.0",
    "ce-id": "e-1",
    "ce-source": "tools/phone-checker",
    "ce-type": "checknumber.finished",
    "ce-triggeredid": "caps/r-0-checknumber/phone/0",
    "ce-slipwaycontext": "6f1c",
    "Content-Type": "application/json",
}


def structured(**changes: Any) -> bytes:
    """The structured body of EVENT with attributes changed (None removes one)."""
    document = {**EVENT, **changes}
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


def binary_headers(**changes: str | None) -> dict[str, str]:
    """BINARY with headers changed (None removes one)."""
    headers: dict[str, str | None] = {**BINARY, **changes}
    return {k: v for k, v in headers.items() if v is not None}


def test_structured_event_is_parsed() -> None:
    """A structured-mode event gives every attribute, the data and the extensions."""
    body = structured(time="2024-05-01T12:00:00.5+02:00", subject="caps/r", dataschema="urn:s")
    event = parse_http(STRUCTURED, body)
    assert event.mode == "structured"
    assert (event.specversion, event.id, event.source) == ("1.0", "e-1", "tools/phone-checker")
    assert event.type == "checknumber.finished"
    assert event.event_type == TaskEventType("checknumber", "finished")
    assert event.time == datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC)
    assert event.time is not None
    assert event.time.utcoffset() == timedelta(0)
    assert (event.subject, event.dataschema, event.datacontenttype) == ("caps/r", "urn:s", None)
    assert event.data == {"result": "pass"}
    assert event.extensions == {
        "triggeredid": "caps/r-0-checknumber/phone/0",
        "slipwaycontext": "6f1c",
    }
    assert event.triggered_id == "caps/r-0-checknumber/phone/0"
    assert event.context == "6f1c"
    assert event.dedup_key == ("tools/phone-checker", "e-1")


def test_binary_event_is_parsed() -> None:
    """A binary-mode event reads attributes from ce- headers (any case) and data from the body."""
    headers = binary_headers(**{"CE-Time": "2024-05-01T12:00:00Z", "ce-subject": "caps%2Fr"})
    event = parse_http(headers, b'{"result": "warning", "n": 1}')
    assert event.mode == "binary"
    assert (event.id, event.type, event.subject) == ("e-1", "checknumber.finished", "caps/r")
    assert event.time == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert event.datacontenttype == "application/json"
    assert event.data == {"result": "warning", "n": 1}
    assert event.triggered_id == "caps/r-0-checknumber/phone/0"
    assert event.context == "6f1c"


@pytest.mark.parametrize(
    ("headers", "body", "data"),
    [
        (STRUCTURED, structured(data=None), {}),
        (STRUCTURED, structured(data={}), {}),
        (
            {"content-type": "application/cloudevents+json; charset=utf-8"},
            structured(),
            {"result": "pass"},
        ),
        (binary_headers(), b"", {}),
        (binary_headers(**{"Content-Type": None}), b"", {}),
        (binary_headers(**{"Content-Type": None}), b'{"a": 1}', {"a": 1}),
        (
            binary_headers(**{"Content-Type": "application/json; charset=utf-8"}),
            b'{"a": 1}',
            {"a": 1},
        ),
        (binary_headers(**{"Content-Type": "text/json"}), b'{"a": 1}', {"a": 1}),
        (binary_headers(**{"Content-Type": "application/vnd.x+json"}), b'{"a": 1}', {"a": 1}),
    ],
)
def test_data_variants_are_accepted(headers: dict[str, str], body: bytes, data: Any) -> None:
    """No data means `{}`; JSON media types with parameters or suffixes are JSON."""
    assert parse_http(headers, body).data == data


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01t12:00:00z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00.123456789Z", datetime(2024, 5, 1, 12, 0, 0, 123456, UTC)),
        ("2024-05-01T14:00:00+02:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ],
)
@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_times_are_read_as_utc(value: str, expected: datetime, mode: str) -> None:
    """RFC 3339 times (either case, nanoseconds, offsets) are read in both modes, in UTC."""
    if mode == "structured":
        event = parse_http(STRUCTURED, structured(time=value))
    else:
        event = parse_http(binary_headers(**{"ce-time": value}), b"{}")
    assert event.time == expected
    assert event.time is not None
    assert event.time.tzinfo == UTC


@pytest.mark.parametrize(
    ("value", "expected"),
    [("x", "x"), (True, "true"), (False, "false"), (7, "7"), (None, None)],
)
def test_structured_extension_values_become_strings(value: Any, expected: str | None) -> None:
    """Extension values are kept as their canonical strings; null means absent."""
    event = parse_http(STRUCTURED, structured(myext=value))
    assert event.extensions.get("myext") == expected


def test_structured_mode_wins_over_ce_headers() -> None:
    """With a structured content type, ce- headers are ignored, as the HTTP binding says."""
    headers = {**STRUCTURED, "ce-id": "from-header", "ce-type": "other.finished"}
    event = parse_http(headers, structured())
    assert (event.mode, event.id, event.type) == ("structured", "e-1", "checknumber.finished")


def test_prefix_applies_to_incoming_types() -> None:
    """With a prefix configured, incoming types must carry it."""
    body = structured(type="dev.slipway.checknumber.status.changed")
    event = parse_http(STRUCTURED, body, prefix="dev.slipway.")
    assert event.event_type == TaskEventType("checknumber", "status.changed")
    with pytest.raises(UnknownEventTypeError):
        parse_http(STRUCTURED, structured(), prefix="dev.slipway.")


def test_empty_context_and_triggeredid_count_as_absent() -> None:
    """Empty `slipwaycontext`/`triggeredid` read as None."""
    event = parse_http(STRUCTURED, structured(slipwaycontext="", triggeredid=""))
    assert (event.context, event.triggered_id) == (None, None)


ERRORS: list[tuple[str, dict[str, str], bytes, type[EventError], int, str]] = [
    # 413
    ("too large", STRUCTURED, b" " * (MAX_EVENT_SIZE + 1), EventTooLargeError, 413, "limit"),
    # 415
    ("no content type", {}, structured(), NotACloudEventError, 415, "not a CloudEvent"),
    (
        "plain json",
        {"Content-Type": "application/json"},
        structured(),
        NotACloudEventError,
        415,
        "ce-",
    ),
    ("text", {"Content-Type": "text/plain"}, b"hello", NotACloudEventError, 415, "structured mode"),
    (
        "batch",
        {"Content-Type": "application/cloudevents-batch+json"},
        b"[]",
        NotACloudEventError,
        415,
        "batch",
    ),
    (
        "binary text data",
        binary_headers(**{"Content-Type": "text/plain"}),
        b"hi",
        NotACloudEventError,
        415,
        "Content-Type 'text/plain'",
    ),
    (
        "structured non-json datacontenttype",
        STRUCTURED,
        structured(datacontenttype="application/xml"),
        NotACloudEventError,
        415,
        "datacontenttype 'application/xml'",
    ),
    # 400: structured
    ("bad json", STRUCTURED, b'{"id": ', MalformedEventError, 400, "not valid JSON"),
    ("not utf-8", STRUCTURED, b'{"id": "\xff"}', MalformedEventError, 400, "UTF-8"),
    ("empty body", STRUCTURED, b"", MalformedEventError, 400, "not valid JSON"),
    ("array", STRUCTURED, b"[]", MalformedEventError, 400, "not an array"),
    ("missing id", STRUCTURED, structured(id=None), MalformedEventError, 400, "'id'"),
    (
        "missing several",
        STRUCTURED,
        structured(source=None, type=None),
        MalformedEventError,
        400,
        "'source', 'type'",
    ),
    ("empty source", STRUCTURED, structured(source=""), MalformedEventError, 400, "'source'"),
    (
        "missing specversion",
        STRUCTURED,
        structured(specversion=None),
        MalformedEventError,
        400,
        "'specversion'",
    ),
    (
        "old specversion",
        STRUCTURED,
        structured(specversion="0.3"),
        MalformedEventError,
        400,
        "'0.3'",
    ),
    ("numeric id", STRUCTURED, structured(id=5), MalformedEventError, 400, "'id' must be a string"),
    ("bad time", STRUCTURED, structured(time="yesterday"), MalformedEventError, 400, "RFC 3339"),
    (
        "naive time",
        STRUCTURED,
        structured(time="2024-05-01T12:00:00"),
        MalformedEventError,
        400,
        "time zone",
    ),
    ("date only", STRUCTURED, structured(time="2024-05-01"), MalformedEventError, 400, "time zone"),
    ("data list", STRUCTURED, structured(data=[1]), MalformedEventError, 400, "not an array"),
    (
        "data string",
        STRUCTURED,
        structured(data='{"a": 1}'),
        MalformedEventError,
        400,
        "not a string",
    ),
    (
        "data_base64",
        STRUCTURED,
        structured(data=None, data_base64="e30="),
        MalformedEventError,
        400,
        "data_base64",
    ),
    (
        "object extension",
        STRUCTURED,
        structured(myext={"a": 1}),
        MalformedEventError,
        400,
        "'myext'",
    ),
    ("bad extension name", STRUCTURED, structured(MyExt="x"), MalformedEventError, 400, "MyExt"),
    # 400: binary
    (
        "missing ce-id",
        binary_headers(**{"ce-id": None}),
        b"{}",
        MalformedEventError,
        400,
        "'ce-id'",
    ),
    (
        "empty ce-type",
        binary_headers(**{"ce-type": ""}),
        b"{}",
        MalformedEventError,
        400,
        "'ce-type'",
    ),
    (
        "only an extension header",
        {"ce-foo": "x"},
        b"{}",
        MalformedEventError,
        400,
        "'ce-specversion'",
    ),
    (
        "binary old specversion",
        binary_headers(**{"ce-specversion": "0.3"}),
        b"{}",
        MalformedEventError,
        400,
        "'0.3'",
    ),
    ("binary bad json", binary_headers(), b"{nope", MalformedEventError, 400, "not valid JSON"),
    ("binary not utf-8", binary_headers(), b"\xff\xfe\xfa", MalformedEventError, 400, "UTF-8"),
    ("binary array", binary_headers(), b"[1, 2]", MalformedEventError, 400, "not an array"),
    ("binary number", binary_headers(), b"42", MalformedEventError, 400, "not a number"),
    ("binary string", binary_headers(), b'"x"', MalformedEventError, 400, "not a string"),
    (
        "binary bad time",
        binary_headers(**{"ce-time": "soon"}),
        b"{}",
        MalformedEventError,
        400,
        "ce-time",
    ),
    (
        "binary naive time",
        binary_headers(**{"ce-time": "2024-05-01T12:00:00"}),
        b"{}",
        MalformedEventError,
        400,
        "timezone",
    ),
    (
        "binary bad extension name",
        binary_headers(**{"ce-my_ext": "x"}),
        b"{}",
        MalformedEventError,
        400,
        "my_ext",
    ),
    # 422
    (
        "foreign type",
        STRUCTURED,
        structured(type="com.example.created"),
        UnknownEventTypeError,
        422,
        "not a Slipway event type",
    ),
    (
        "binary foreign type",
        binary_headers(**{"ce-type": "a.b.c.finished"}),
        b"{}",
        UnknownEventTypeError,
        422,
        "3 name segments",
    ),
]


@pytest.mark.parametrize(
    ("headers", "body", "error", "status", "match"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_bad_requests_map_to_typed_errors(
    headers: dict[str, str], body: bytes, error: type[EventError], status: int, match: str
) -> None:
    """Every unusable request raises its error class with the HTTP status and a clear message."""
    with pytest.raises(error, match=match) as caught:
        parse_http(headers, body)
    assert caught.value.status == status
    assert error_body(caught.value) == {
        "error": caught.value.error,
        "message": caught.value.message,
    }


def test_malformed_beats_unknown_type() -> None:
    """A request both malformed and of a foreign type is reported as malformed (400)."""
    with pytest.raises(MalformedEventError):
        parse_http(STRUCTURED, structured(type="com.example.x", data=[1]))


def test_size_limit_is_configurable_and_checked_first() -> None:
    """The size check comes before parsing: an oversized non-JSON body is 413, not 400."""
    with pytest.raises(EventTooLargeError, match="11 bytes; the limit is 10"):
        parse_http(STRUCTURED, b"not json!!!", max_size=10)
    body = structured()
    assert parse_http(STRUCTURED, body, max_size=len(body)).id == "e-1"


@pytest.mark.parametrize(
    ("size", "max_size", "raises"),
    [(0, 10, False), (10, 10, False), (11, 10, True), (MAX_EVENT_SIZE + 1, MAX_EVENT_SIZE, True)],
)
def test_check_size(size: int, max_size: int, raises: bool) -> None:
    """`check_size` (for a Content-Length) refuses only sizes above the limit."""
    if raises:
        with pytest.raises(EventTooLargeError):
            check_size(size, max_size)
    else:
        check_size(size, max_size)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (MalformedEventError, 400, "malformed_event"),
        (EventTooLargeError, 413, "event_too_large"),
        (NotACloudEventError, 415, "not_a_cloudevent"),
        (UnprocessableEventError, 422, "unprocessable_event"),
        (UnknownEventTypeError, 422, "unknown_event_type"),
    ],
)
def test_error_classes_carry_status_and_code(
    error: type[EventError], status: int, code: str
) -> None:
    """Each error class has its HTTP status and a stable machine-readable code."""
    err = error("what to change")
    assert (err.status, err.error, str(err)) == (status, code, "what to change")
    assert error_body(err) == {"error": code, "message": "what to change"}
    assert json.loads(json.dumps(error_body(err))) == error_body(err)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Content-Type": "application/cloudevents+json"}, True),
        ({"content-type": "Application/CloudEvents+JSON; charset=utf-8"}, True),
        ({"CE-ID": "x"}, True),
        ({"Content-Type": "application/json"}, False),
        ({"Content-Type": "text/plain", "X-Other": "y"}, False),
        ({}, False),
    ],
)
def test_is_cloudevent(headers: dict[str, str], expected: bool) -> None:
    """A structured content type or any ce- header announces a CloudEvent."""
    assert is_cloudevent(headers) is expected
