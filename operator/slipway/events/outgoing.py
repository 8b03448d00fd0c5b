"""Events Slipway sends: built with the CloudEvents SDK, serialised for HTTP.

Builders are pure: the caller passes the time and (for task events) the id, so a delivery
retried after a crash carries the same id. Data is copied; the caller's mappings are not
changed and later changes to them do not reach the event.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloudevents.core.bindings import http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from slipway.engine.data import task_data
from slipway.events.attributes import (
    JSON_CONTENT_TYPE,
    SLIPWAYCALLBACK,
    SLIPWAYCONTEXT,
    SLIPWAYTOKEN,
    SOURCE,
    Mode,
    Result,
)
from slipway.events.names import (
    SequenceEventType,
    SequencePhase,
    TaskEventType,
    check_name,
)

_FORMAT = JSONFormat()


@dataclass(frozen=True, slots=True)
class RunScope:
    """Which run an event belongs to; every field is required and checked by the builders."""

    namespace: str
    run: str
    shipyard: str
    stage: str
    sequence: str
    context: str

    def metadata(self) -> dict[str, Any]:
        """The data keys every Slipway event carries: shipyard, stage, sequence and
        run = {namespace, name}."""
        return {
            "shipyard": self.shipyard,
            "stage": self.stage,
            "sequence": self.sequence,
            "run": {"namespace": self.namespace, "name": self.run},
        }


def task_triggered_id(namespace: str, execution: str, provider: str, attempt: int) -> str:
    """The id of the `.triggered` event sent to `provider` for `attempt` of a TaskExecution:
    `<namespace>/<execution>/<provider>/<attempt>`. The same inputs give the same id, so every
    delivery retry (and a re-delivery after an operator restart) reuses it; a new attempt, or
    another provider of the same task, gets a new one. Unique per source: namespace and
    execution name identify the execution cluster-wide."""
    if attempt < 0:
        raise ValueError(f"attempt must be 0 or more, not {attempt}")
    for what, value in (("namespace", namespace), ("execution", execution), ("provider", provider)):
        if not value or "/" in value:
            raise ValueError(f"{what} {value!r} must be a non-empty name without '/'")
    return f"{namespace}/{execution}/{provider}/{attempt}"


@dataclass(frozen=True)
class TriggeredId:
    """The parts of a `task_triggered_id`."""

    namespace: str
    execution: str
    provider: str
    attempt: int


def parse_triggered_id(triggered_id: str) -> TriggeredId | None:
    """The parts of an id made by `task_triggered_id`; None when it is not one."""
    parts = triggered_id.split("/")
    if len(parts) != 4 or not all(parts[:3]) or not parts[3].isdigit():
        return None
    return TriggeredId(parts[0], parts[1], parts[2], int(parts[3]))


def sequence_event_id(namespace: str, run: str, phase: SequencePhase) -> str:
    """The id of a run's `<stage>.<sequence>.<phase>` event: `<namespace>/<run>/<phase>`.
    A run sends each phase once, so the id is stable across restarts."""
    return f"{namespace}/{run}/{phase}"


def callback_url(gateway_url: str, namespace: str) -> str:
    """The URL tools POST their responses to: `<gateway_url>/v1/namespaces/<ns>/events`."""
    return f"{gateway_url.rstrip('/')}/v1/namespaces/{namespace}/events"


def _check_time(time: datetime) -> None:
    if time.tzinfo is None or time.utcoffset() is None:
        raise ValueError(f"event time {time.isoformat()} must be timezone-aware")


def _event(
    *,
    type_: str,
    source: str,
    event_id: str,
    subject: str,
    time: datetime,
    context: str,
    data: dict[str, Any],
    extensions: Mapping[str, str] | None = None,
) -> CloudEvent:
    _check_time(time)
    if not context:
        raise ValueError("the run context id must not be empty")
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": type_,
        "subject": subject,
        "time": time,
        "datacontenttype": JSON_CONTENT_TYPE,
        SLIPWAYCONTEXT: context,
        **(extensions or {}),
    }
    return CloudEvent(attributes, data)


def build_task_triggered(
    scope: RunScope,
    *,
    task: str,
    execution: str,
    event_id: str,
    time: datetime,
    data: Mapping[str, Any],
    properties: Mapping[str, Any] | None,
    callback_url: str,
    callback_token: str,
    source: str = SOURCE,
    prefix: str = "",
) -> CloudEvent:
    """`<task>.triggered` for one provider of one TaskExecution.

    Data: a deep copy of the run's `data`; then `data.<task>` = the task's `properties`
    (deep-merged over whatever the run's data has under that key; no properties leaves the
    key as it is); then Slipway's keys, which win over same-named run data: `shipyard`,
    `stage`, `sequence`, `task`, `run` = {namespace, name}. Subject `<namespace>/<execution>`.
    Extensions: `slipwaycontext`, `slipwaycallback`, `slipwaytoken`. Use `task_triggered_id`
    for `event_id`. `ValueError` for an invalid name, a naive time or an empty token/URL.
    """
    check_name(task, "task")
    if not callback_url or not callback_token:
        raise ValueError("a task's .triggered needs a callback URL and a callback token")
    payload = task_data(data, task, properties)
    payload.update(scope.metadata())
    payload["task"] = task
    return _event(
        type_=TaskEventType(task, "triggered").to_string(prefix),
        source=source,
        event_id=event_id,
        subject=f"{scope.namespace}/{execution}",
        time=time,
        context=scope.context,
        data=payload,
        extensions={SLIPWAYCALLBACK: callback_url, SLIPWAYTOKEN: callback_token},
    )


def _sequence_event(
    scope: RunScope,
    phase: SequencePhase,
    *,
    data: dict[str, Any],
    time: datetime,
    event_id: str | None,
    source: str,
    prefix: str,
) -> CloudEvent:
    payload = {**data, **scope.metadata()}
    return _event(
        type_=SequenceEventType(scope.stage, scope.sequence, phase).to_string(prefix),
        source=source,
        event_id=event_id or sequence_event_id(scope.namespace, scope.run, phase),
        subject=f"{scope.namespace}/{scope.run}",
        time=time,
        context=scope.context,
        data=payload,
    )


def build_sequence_triggered(
    scope: RunScope,
    *,
    data: Mapping[str, Any],
    time: datetime,
    event_id: str | None = None,
    source: str = SOURCE,
    prefix: str = "",
) -> CloudEvent:
    """`<stage>.<sequence>.triggered`: data = a deep copy of the run's `data` plus
    `shipyard`, `stage`, `sequence`, `run`. `event_id` None: `sequence_event_id(...)`."""
    return _sequence_event(
        scope,
        "triggered",
        data=copy.deepcopy(dict(data)),
        time=time,
        event_id=event_id,
        source=source,
        prefix=prefix,
    )


def build_sequence_started(
    scope: RunScope,
    *,
    time: datetime,
    event_id: str | None = None,
    source: str = SOURCE,
    prefix: str = "",
) -> CloudEvent:
    """`<stage>.<sequence>.started`: data = `shipyard`, `stage`, `sequence`, `run` only."""
    return _sequence_event(
        scope, "started", data={}, time=time, event_id=event_id, source=source, prefix=prefix
    )


def build_sequence_finished(
    scope: RunScope,
    *,
    result: Result,
    reason: str,
    message: str | None,
    data: Mapping[str, Any],
    time: datetime,
    event_id: str | None = None,
    source: str = SOURCE,
    prefix: str = "",
) -> CloudEvent:
    """`<stage>.<sequence>.finished`: data = a deep copy of the run's final `data`, then
    `result`, `reason` (Completed, Failed, TimedOut, ...), `message` (when not None) and
    `shipyard`, `stage`, `sequence`, `run`."""
    payload: dict[str, Any] = copy.deepcopy(dict(data))
    payload["result"] = result
    payload["reason"] = reason
    if message is not None:
        payload["message"] = message
    return _sequence_event(
        scope,
        "finished",
        data=payload,
        time=time,
        event_id=event_id,
        source=source,
        prefix=prefix,
    )


def to_structured(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """Structured mode: `Content-Type: application/cloudevents+json` and the whole event
    (attributes and data) as the JSON body."""
    message = http.to_structured(event, _FORMAT)
    return dict(message.headers), message.body


def to_binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """Binary mode: every attribute as a `ce-<name>` header (percent-encoded as the HTTP
    binding requires), `Content-Type: application/json`, and the data as the JSON body."""
    message = http.to_binary(event, _FORMAT)
    return dict(message.headers), message.body


def to_http(event: CloudEvent, mode: Mode) -> tuple[dict[str, str], bytes]:
    """Headers and body of `event` in `mode` (a TaskProvider's `cloudEvent.mode`)."""
    if mode == "structured":
        return to_structured(event)
    if mode == "binary":
        return to_binary(event)
    raise ValueError(f"mode {mode!r} is not 'structured' or 'binary'")


def to_json(event: CloudEvent) -> str:
    """The event in structured JSON as text (what a Job gets in `SLIPWAY_EVENT`)."""
    return _FORMAT.write(event).decode("utf-8")
