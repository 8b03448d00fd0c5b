"""Events Slipway receives over HTTP: parse headers and body into a typed `IncomingEvent`.

Framework-free: callers pass a headers mapping (any case) and the body bytes. Every way a
request can be unusable maps to an `EventError` subclass carrying the HTTP status to answer:
413 too large (checked before anything is parsed), 415 not a CloudEvent, 400 malformed,
422 a valid CloudEvent whose type is not a Slipway type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings import http
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from slipway.events.attributes import (
    JSON_CONTENT_TYPE,
    MAX_EVENT_SIZE,
    SLIPWAYCONTEXT,
    SPECVERSION,
    STRUCTURED_CONTENT_TYPE,
    TRIGGEREDID,
    Mode,
)
from slipway.events.errors import (
    EventError,
    EventTooLargeError,
    MalformedEventError,
    NotACloudEventError,
)
from slipway.events.jsonlimits import JsonLimitError, JsonLimits, check_document
from slipway.events.names import EventType, parse_event_type

_FORMAT = JSONFormat()
_CE_PREFIX: Final = "ce-"
_REQUIRED: Final = ("specversion", "id", "source", "type")
#: Context attributes of CloudEvents 1.0 itself; every other attribute is an extension.
_CORE: Final = frozenset(
    {"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema"}
)
_HOW: Final = (
    "send either structured mode (Content-Type: application/cloudevents+json, the event as "
    "a JSON object) or binary mode (ce-specversion, ce-id, ce-source and ce-type headers, "
    "Content-Type: application/json, the data as the body)"
)


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    """A CloudEvent 1.0 received by Slipway, with a Slipway type.

    `time` is in UTC. `time`, `subject`, `datacontenttype`, `dataschema` are None when
    absent. `data` is always a JSON object (`{}` when the event had none). `extensions` holds
    every other attribute as its canonical string (booleans `true`/`false`), including
    Slipway's own.
    """

    specversion: str
    id: str
    source: str
    type: str
    event_type: EventType
    time: datetime | None
    subject: str | None
    datacontenttype: str | None
    dataschema: str | None
    data: dict[str, Any]
    extensions: dict[str, str]
    mode: Mode

    @property
    def context(self) -> str | None:
        """The run context id (`slipwaycontext`), None when absent or empty."""
        return self.extensions.get(SLIPWAYCONTEXT) or None

    @property
    def triggered_id(self) -> str | None:
        """The `.triggered` event this one answers (`triggeredid`), None when absent/empty."""
        return self.extensions.get(TRIGGEREDID) or None

    @property
    def dedup_key(self) -> tuple[str, str]:
        """(source, id): CloudEvents says this pair identifies an event; a repeat is a
        duplicate delivery and is applied once."""
        return (self.source, self.id)


def check_size(size: int, max_size: int = MAX_EVENT_SIZE) -> None:
    """Raise `EventTooLargeError` (413) when `size` bytes exceed `max_size`. The gateway may
    call it with the Content-Length before reading the body; `parse_http` calls it first."""
    if size > max_size:
        raise EventTooLargeError(
            f"the event is {size} bytes; the limit is {max_size} bytes: send less data"
        )


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def is_cloudevent(headers: Mapping[str, str]) -> bool:
    """Whether the headers announce a CloudEvent: a structured-mode content type or any
    `ce-` header. A synchronous tool's reply without either is not an event."""
    lowered = _lower(headers)
    return _media_type(lowered.get("content-type")).startswith("application/cloudevents") or any(
        name.startswith(_CE_PREFIX) for name in lowered
    )


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except RecursionError as exc:  # a safety net: check_depth runs first
        raise JsonLimitError("the JSON nests too deeply to be read") from exc
    except UnicodeDecodeError as exc:
        raise MalformedEventError(f"the body is not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise MalformedEventError(f"the body is not valid JSON: {exc}") from exc


def _parse_time(value: str) -> datetime:
    """RFC 3339 (`2024-05-01T12:00:00Z`, any fraction, any offset, either case)."""
    try:
        parsed = datetime.fromisoformat(value.upper())
    except ValueError as exc:
        raise MalformedEventError(
            f"attribute 'time' {value!r} is not an RFC 3339 timestamp such as "
            "'2024-05-01T12:00:00Z'"
        ) from exc
    if parsed.tzinfo is None:
        raise MalformedEventError(
            f"attribute 'time' {value!r} has no time zone offset: add 'Z' or '+hh:mm'"
        )
    return parsed.astimezone(UTC)


def _check_required(attributes: Mapping[str, Any], spelled: str) -> None:
    missing = [name for name in _REQUIRED if not attributes.get(name)]
    if missing:
        names = ", ".join(spelled.format(name) for name in missing)
        raise MalformedEventError(f"required CloudEvents attributes missing or empty: {names}")
    if attributes["specversion"] != SPECVERSION:
        raise MalformedEventError(
            f"specversion {attributes['specversion']!r} is not supported: send CloudEvents "
            f"{SPECVERSION}"
        )


def _check_json_media(content_type: str, what: str) -> None:
    """JSON is `application/json`, `text/json` or any `+json` suffix, parameters aside."""
    kind, _, subtype = _media_type(content_type).partition("/")
    if kind not in ("application", "text") or not (subtype == "json" or subtype.endswith("+json")):
        raise NotACloudEventError(
            f"{what} {content_type!r} is not supported: Slipway events carry JSON data "
            f"({JSON_CONTENT_TYPE})"
        )


def _sdk_event(attributes: dict[str, Any], data: Any) -> CloudEvent:
    """Validate with the SDK's CloudEvent (extension names, types); it would fill in a
    missing id, time or specversion, so they are checked before and a copy is passed."""
    try:
        return CloudEvent(dict(attributes), data)
    except BaseCloudEventException as exc:
        raise MalformedEventError(f"not a valid CloudEvent: {exc}") from exc


def _read_structured(body: bytes, limits: JsonLimits) -> tuple[dict[str, Any], Any]:
    document = _parse_json(body)
    check_document(document, limits)
    if not isinstance(document, dict):
        raise MalformedEventError(
            f"a structured-mode body must be a JSON object (the event), not {_kind(document)}"
        )
    if document.get("data_base64") is not None:
        raise MalformedEventError(
            "data_base64 (binary data) is not supported: send data as a JSON object"
        )
    data = document.get("data")
    attributes: dict[str, Any] = {}
    for name, value in document.items():
        if name in ("data", "data_base64") or value is None:  # null means absent
            continue
        if name in _CORE:
            if not isinstance(value, str):
                raise MalformedEventError(
                    f"attribute {name!r} must be a string, not {_kind(value)}"
                )
            attributes[name] = value
        elif isinstance(value, bool):
            attributes[name] = "true" if value else "false"
        elif isinstance(value, str | int):
            attributes[name] = str(value)
        else:
            raise MalformedEventError(
                f"extension attribute {name!r} must be a string, integer or boolean, "
                f"not {_kind(value)}"
            )
    _check_required(attributes, "'{}'")
    if "time" in attributes:
        attributes["time"] = _parse_time(attributes["time"])
    if "datacontenttype" in attributes:
        _check_json_media(attributes["datacontenttype"], "datacontenttype")
    _sdk_event(attributes, data)
    return attributes, data


def _read_binary(
    headers: dict[str, str], body: bytes, limits: JsonLimits
) -> tuple[dict[str, Any], Any]:
    wire = {name: value for name, value in headers.items() if name.startswith(_CE_PREFIX)}
    _check_required({name[len(_CE_PREFIX) :]: value for name, value in wire.items()}, "'ce-{}'")
    content_type = headers.get("content-type")
    if content_type is not None:
        _check_json_media(content_type, "Content-Type")
        wire["content-type"] = content_type
    captured: list[tuple[dict[str, Any], Any]] = []

    def factory(attributes: dict[str, Any], data: Any) -> BaseCloudEvent:
        captured.append((dict(attributes), data))
        return _sdk_event(attributes, data)

    try:
        http.from_binary(http.HTTPMessage(headers=wire, body=body), _FORMAT, factory)
    except EventError:
        raise
    except RecursionError as exc:  # a safety net: check_depth runs first
        raise JsonLimitError("the JSON nests too deeply to be read") from exc
    except (ValueError, OverflowError) as exc:  # the SDK parsing ce-time
        raise MalformedEventError(
            f"header 'ce-time' is not an RFC 3339 timestamp such as '2024-05-01T12:00:00Z': {exc}"
        ) from exc
    attributes, data = captured[0]
    if "time" in attributes:
        attributes["time"] = attributes["time"].astimezone(UTC)
    if data is not None and not isinstance(data, dict):
        # The SDK hands back text when the body is not JSON: say which it is.
        data = _parse_json(body)
    check_document(data, limits)
    return attributes, data


def parse_http(
    headers: Mapping[str, str],
    body: bytes,
    *,
    prefix: str = "",
    max_size: int = MAX_EVENT_SIZE,
    limits: JsonLimits | None = None,
) -> IncomingEvent:
    """Parse an HTTP request (or a synchronous tool's response) carrying one CloudEvent.

    Structured mode when the Content-Type is `application/cloudevents+json` (any `ce-`
    headers are then ignored, as the HTTP binding says); otherwise binary mode when any `ce-`
    header is present. Raises `EventTooLargeError` (413), `NotACloudEventError` (415: no
    CloudEvent, batch mode, or data that is not JSON), `MalformedEventError` (400) or
    `UnknownEventTypeError` (422, type not Slipway's under `prefix`). `limits` bound the
    JSON's nesting (checked on the raw bytes before parsing), keys and strings
    (`JsonLimitError`, 413; default `JsonLimits()`).
    """
    check_size(len(body), max_size)
    limits = limits or JsonLimits()
    limits.check(body)
    lowered = _lower(headers)
    media = _media_type(lowered.get("content-type"))
    mode: Mode
    if media == STRUCTURED_CONTENT_TYPE:
        attributes, data = _read_structured(body, limits)
        mode = "structured"
    elif media.startswith("application/cloudevents"):
        raise NotACloudEventError(
            f"Content-Type {media!r} is not supported (batch mode and formats other than "
            f"JSON are not): {_HOW}"
        )
    elif any(name.startswith(_CE_PREFIX) for name in lowered):
        attributes, data = _read_binary(lowered, body, limits)
        mode = "binary"
    else:
        raise NotACloudEventError(f"the request is not a CloudEvent: {_HOW}")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MalformedEventError(f"the event's data must be a JSON object, not {_kind(data)}")
    event_type = parse_event_type(attributes["type"], prefix)
    return IncomingEvent(
        specversion=attributes["specversion"],
        id=attributes["id"],
        source=attributes["source"],
        type=attributes["type"],
        event_type=event_type,
        time=attributes.get("time"),
        subject=attributes.get("subject"),
        datacontenttype=attributes.get("datacontenttype"),
        dataschema=attributes.get("dataschema"),
        data=data,
        extensions={name: value for name, value in attributes.items() if name not in _CORE},
        mode=mode,
    )
