"""What an incoming event means: a tool's response to a task, or a request to start a run.

`interpret_task_response` reads `<task>.started`, `.status.changed` and `.finished` (from the
gateway or from a synchronous tool's HTTP response); `interpret_sequence_trigger` reads
`<stage>.<sequence>.triggered`. Any other valid Slipway type is refused with 422.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from slipway.events.attributes import (
    MAX_EVENT_SIZE,
    RESERVED_DATA_KEYS,
    RESULTS,
    STATUSES,
    Result,
    Status,
)
from slipway.events.errors import MalformedEventError, UnprocessableEventError
from slipway.events.incoming import IncomingEvent, is_cloudevent, parse_http
from slipway.events.jsonlimits import JsonLimits
from slipway.events.names import SequenceEventType, TaskEventType, is_object_name

ResponsePhase = Literal["started", "status.changed", "finished"]
_RESPONSE_PHASE: Final[dict[str, ResponsePhase]] = {
    "started": "started",
    "status.changed": "status.changed",
    "finished": "finished",
}
_RESULT: Final[dict[object, Result]] = {result: result for result in RESULTS}
_STATUS: Final[dict[object, Status]] = {status: status for status in STATUSES}


@dataclass(frozen=True, slots=True)
class TaskResponse:
    """A tool's `<task>.started`, `.status.changed` or `.finished`.

    `result`, `status` and `output` are set for `.finished` only (None otherwise). `result`
    is already the verdict to apply: a missing or unknown result, and `status: errored` (or
    an unknown status), give `fail`, and `result_note` then says why. `output` is the data
    without `RESERVED_DATA_KEYS`. `message` is the tool's message, as text.
    """

    task: str
    phase: ResponsePhase
    triggered_id: str
    context: str | None
    source: str
    id: str
    time: datetime | None
    message: str | None
    result: Result | None
    status: Status | None
    result_note: str | None
    output: dict[str, Any] | None

    @property
    def dedup_key(self) -> tuple[str, str]:
        """(source, id): a repeated response is applied once."""
        return (self.source, self.id)


@dataclass(frozen=True, slots=True)
class SequenceTrigger:
    """A request to start a run: `<stage>.<sequence>.triggered`.

    `shipyard` is `data.shipyard` (None: the namespace's only Shipyard); `data` is the rest
    of the event's data, to become the run's `spec.data`; `context` the caller's
    `slipwaycontext`, if any.
    """

    stage: str
    sequence: str
    shipyard: str | None
    data: dict[str, Any]
    context: str | None
    source: str
    id: str

    @property
    def dedup_key(self) -> tuple[str, str]:
        """(source, id): a repeated trigger starts one run."""
        return (self.source, self.id)


def _message(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def _verdict(data: Mapping[str, Any]) -> tuple[Result, Status | None, str | None]:
    """(result, status, note) of a `.finished` data, as API.md rules: missing or unknown
    result is fail; errored (or an unknown status) is fail."""
    notes: list[str] = []
    raw_result = data.get("result")
    result = _RESULT.get(raw_result if isinstance(raw_result, str) else None)
    if result is None:
        result = "fail"
        notes.append(
            "no result"
            if raw_result is None
            else f"result {raw_result!r} is not one of {', '.join(RESULTS)}"
        )
    raw_status = data.get("status")
    status = _STATUS.get(raw_status if isinstance(raw_status, str) else None)
    if raw_status is not None and status is None:
        status = "errored"
        notes.append(f"status {raw_status!r} is not one of {', '.join(STATUSES)}")
    elif status == "errored" and result != "fail":
        notes.append("status errored")
    if status == "errored":
        result = "fail"
    note = f"{'; '.join(notes)}: counts as fail" if notes else None
    return result, status, note


def interpret_task_response(
    event: IncomingEvent, *, triggered_id: str | None = None
) -> TaskResponse:
    """Read a tool's response. `triggered_id`: the `.triggered` id the caller knows it
    answers (a synchronous reply); it fills in a missing `triggeredid` and must match a
    present one.

    Raises `UnprocessableEventError` (422) for a sequence event or a `<task>.triggered`, and
    `MalformedEventError` (400) when the event does not say which `.triggered` it answers or
    answers another one than `triggered_id`.
    """
    event_type = event.event_type
    if not isinstance(event_type, TaskEventType):
        raise UnprocessableEventError(
            f"{event.type!r} is a sequence event; a tool answers a task with "
            "<task>.started, <task>.status.changed or <task>.finished"
        )
    phase = _RESPONSE_PHASE.get(event_type.phase)
    if phase is None:
        raise UnprocessableEventError(
            f"{event.type!r}: Slipway sends .triggered events to tools and does not accept "
            f"them; answer with {event_type.task}.started, .status.changed or .finished"
        )
    answered = event.triggered_id
    if answered is None:
        if triggered_id is None:
            raise MalformedEventError(
                f"{event.type!r} has no extension attribute 'triggeredid': set it to the id "
                "of the .triggered event it answers"
            )
        answered = triggered_id
    elif triggered_id is not None and answered != triggered_id:
        raise MalformedEventError(
            f"{event.type!r} answers the .triggered event {answered!r}, not {triggered_id!r}"
        )
    result: Result | None = None
    status: Status | None = None
    note: str | None = None
    output: dict[str, Any] | None = None
    if phase == "finished":
        result, status, note = _verdict(event.data)
        output = {key: value for key, value in event.data.items() if key not in RESERVED_DATA_KEYS}
    return TaskResponse(
        task=event_type.task,
        phase=phase,
        triggered_id=answered,
        context=event.context,
        source=event.source,
        id=event.id,
        time=event.time,
        message=_message(event.data.get("message")),
        result=result,
        status=status,
        result_note=note,
        output=output,
    )


def interpret_sequence_trigger(event: IncomingEvent) -> SequenceTrigger:
    """Read `<stage>.<sequence>.triggered`. Raises `UnprocessableEventError` (422) for any
    other type and `MalformedEventError` (400) when `data.shipyard` is not an object name."""
    event_type = event.event_type
    if not isinstance(event_type, SequenceEventType) or event_type.phase != "triggered":
        raise UnprocessableEventError(
            f"{event.type!r} cannot start a run: send <stage>.<sequence>.triggered "
            "(task responses go with their callback token)"
            if isinstance(event_type, TaskEventType)
            else f"{event.type!r} is sent by Slipway; start a run with "
            f"{event_type.stage}.{event_type.sequence}.triggered"
        )
    data = dict(event.data)
    shipyard = data.pop("shipyard", None)
    if shipyard is not None and not (isinstance(shipyard, str) and is_object_name(shipyard)):
        raise MalformedEventError(
            f"data.shipyard must be the name of a Shipyard in this namespace, not {shipyard!r}"
        )
    return SequenceTrigger(
        stage=event_type.stage,
        sequence=event_type.sequence,
        shipyard=shipyard,
        data=data,
        context=event.context,
        source=event.source,
        id=event.id,
    )


def interpret(event: IncomingEvent) -> TaskResponse | SequenceTrigger:
    """What the gateway does with an event: a task response or a run to start (422 for
    anything else, see the two functions)."""
    if isinstance(event.event_type, TaskEventType):
        return interpret_task_response(event)
    return interpret_sequence_trigger(event)


def parse_sync_response(
    headers: Mapping[str, str],
    body: bytes,
    *,
    task: str,
    triggered_id: str,
    prefix: str = "",
    max_size: int = MAX_EVENT_SIZE,
    limits: JsonLimits | None = None,
) -> TaskResponse | None:
    """Read the HTTP response of a tool to the POST of `<task>.triggered` (id `triggered_id`).

    None when the response carries no CloudEvent (no structured content type and no `ce-`
    header: an asynchronous tool that will call back). Otherwise the event, parsed as by
    `parse_http`; it must be a response of `task` to `triggered_id` (a missing `triggeredid`
    is taken to be it), else `MalformedEventError`/`UnprocessableEventError` say why.
    """
    if not is_cloudevent(headers):
        return None
    event = parse_http(headers, body, prefix=prefix, max_size=max_size, limits=limits)
    response = interpret_task_response(event, triggered_id=triggered_id)
    if response.task != task:
        raise MalformedEventError(
            f"the tool answered {task}.triggered with an event of task {response.task!r}"
        )
    return response
