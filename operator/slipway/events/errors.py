"""Typed errors of reading events, each carrying the HTTP status the gateway answers with.

The gateway turns any `EventError` into a JSON response `error_body(err)` with status
`err.status`; the same errors describe a synchronous tool's unusable HTTP response, where the
status is informative only.
"""

from __future__ import annotations

from typing import ClassVar


class EventError(Exception):
    """An event that cannot be accepted; `message` says what to change, for a person."""

    status: ClassVar[int] = 400
    error: ClassVar[str] = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MalformedEventError(EventError):
    """400: not valid JSON, a required attribute missing or of the wrong type, data not an
    object, or a response that does not say which `.triggered` event it answers."""

    status = 400
    error = "malformed_event"


class EventTooLargeError(EventError):
    """413: the body is larger than the configured limit (checked before parsing)."""

    status = 413
    error = "event_too_large"


class NotACloudEventError(EventError):
    """415: neither structured mode (`application/cloudevents+json`) nor binary mode (`ce-`
    headers), or data in a media type other than JSON."""

    status = 415
    error = "not_a_cloudevent"


class UnprocessableEventError(EventError):
    """422: a valid CloudEvent Slipway cannot act on (for example a `.triggered` task event
    sent to Slipway, or, raised by the gateway, an unknown stage, sequence or task)."""

    status = 422
    error = "unprocessable_event"


class UnknownEventTypeError(UnprocessableEventError, ValueError):
    """422: the `type` is not `[prefix]<stage>.<sequence>.<phase>` or `[prefix]<task>.<phase>`."""

    error = "unknown_event_type"


def error_body(err: EventError) -> dict[str, str]:
    """The JSON body of an error response: `{"error": <code>, "message": <for a person>}`."""
    return {"error": err.error, "message": err.message}
