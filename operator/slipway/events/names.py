"""Event type names: `<stage>.<sequence>.<phase>` and `<task>.<phase>`, with an optional prefix.

Sequence phases are `triggered`, `started`, `finished`; task phases add `status.changed` (the
only phase of two segments). Stage, sequence and task names are DNS labels, so they never
contain the dots that separate the segments, and a type string parses back unambiguously.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Final, Literal, get_args

from slipway.events.errors import UnknownEventTypeError

SequencePhase = Literal["triggered", "started", "finished"]
TaskPhase = Literal["triggered", "started", "status.changed", "finished"]

SEQUENCE_PHASES: Final[tuple[SequencePhase, ...]] = get_args(SequencePhase)
TASK_PHASES: Final[tuple[TaskPhase, ...]] = get_args(TaskPhase)
STATUS_CHANGED: Final = "status.changed"
_SEQUENCE_PHASE: Final[dict[str, SequencePhase]] = {phase: phase for phase in SEQUENCE_PHASES}
_TASK_PHASE: Final[dict[str, TaskPhase]] = {phase: phase for phase in TASK_PHASES}

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


def is_name(value: str) -> bool:
    """Whether `value` is a DNS label (lower-case letters, digits, inner `-`, 1-63 chars)."""
    return _LABEL.fullmatch(value) is not None


def is_object_name(value: str) -> bool:
    """Whether `value` is a Kubernetes object name (a DNS subdomain, at most 253 chars)."""
    return len(value) <= 253 and _SUBDOMAIN.fullmatch(value) is not None


def check_name(value: str, what: str) -> str:
    """Return `value` if it is a DNS label; otherwise raise `ValueError` naming `what`."""
    if not is_name(value):
        raise ValueError(
            f"{what} {value!r} is not a valid name: use a DNS label (lower-case letters, digits "
            "and '-', at most 63 characters, starting and ending with a letter or digit, no dots)"
        )
    return value


def normalize_prefix(prefix: str) -> str:
    """The configured type prefix with exactly one trailing dot (`dev.slipway` and
    `dev.slipway.` both give `dev.slipway.`); `""` means no prefix. Raises `ValueError` for
    empty segments or characters other than letters, digits, `-` and `_`."""
    if not prefix:
        return ""
    body = prefix.removesuffix(".")
    if not all(_PREFIX_SEGMENT.fullmatch(segment) for segment in body.split(".")):
        raise ValueError(
            f"event type prefix {prefix!r} is not valid: use dot-separated segments of letters, "
            "digits, '-' and '_', such as 'dev.slipway.'"
        )
    return body + "."


@dataclass(frozen=True, slots=True)
class SequenceEventType:
    """`<stage>.<sequence>.<phase>`; construction validates names and phase (`ValueError`)."""

    stage: str
    sequence: str
    phase: SequencePhase
    kind: ClassVar[Literal["sequence"]] = "sequence"

    def __post_init__(self) -> None:
        check_name(self.stage, "stage")
        check_name(self.sequence, "sequence")
        if self.phase not in SEQUENCE_PHASES:
            raise ValueError(f"sequence phase {self.phase!r} is not one of {SEQUENCE_PHASES}")

    @property
    def names(self) -> tuple[str, str]:
        """(stage, sequence)."""
        return (self.stage, self.sequence)

    def to_string(self, prefix: str = "") -> str:
        """The CloudEvents `type`, with the (normalised) prefix in front."""
        return f"{normalize_prefix(prefix)}{self.stage}.{self.sequence}.{self.phase}"


@dataclass(frozen=True, slots=True)
class TaskEventType:
    """`<task>.<phase>`; construction validates the name and phase (`ValueError`)."""

    task: str
    phase: TaskPhase
    kind: ClassVar[Literal["task"]] = "task"

    def __post_init__(self) -> None:
        check_name(self.task, "task")
        if self.phase not in TASK_PHASES:
            raise ValueError(f"task phase {self.phase!r} is not one of {TASK_PHASES}")

    @property
    def names(self) -> tuple[str]:
        """(task,)."""
        return (self.task,)

    def to_string(self, prefix: str = "") -> str:
        """The CloudEvents `type`, with the (normalised) prefix in front."""
        return f"{normalize_prefix(prefix)}{self.task}.{self.phase}"


EventType = SequenceEventType | TaskEventType


def sequence_event_type(stage: str, sequence: str, phase: SequencePhase, prefix: str = "") -> str:
    """`[prefix]<stage>.<sequence>.<phase>`; `ValueError` for an invalid name or phase."""
    return SequenceEventType(stage, sequence, phase).to_string(prefix)


def task_event_type(task: str, phase: TaskPhase, prefix: str = "") -> str:
    """`[prefix]<task>.<phase>`; `ValueError` for an invalid name or phase."""
    return TaskEventType(task, phase).to_string(prefix)


def _expected(prefix: str) -> str:
    return (
        f"expected '{prefix}<stage>.<sequence>.triggered|started|finished' or "
        f"'{prefix}<task>.triggered|started|status.changed|finished'"
    )


def parse_event_type(value: str, prefix: str = "") -> EventType:
    """Parse a CloudEvents `type` into a `SequenceEventType` or `TaskEventType`.

    Raises `UnknownEventTypeError` (HTTP 422) when `value` lacks the configured prefix, has
    an unknown phase, the wrong number of name segments, or a segment that is not a DNS label.
    `ValueError` only for an invalid `prefix` itself (a configuration error).
    """
    prefix = normalize_prefix(prefix)

    def fail(reason: str) -> UnknownEventTypeError:
        return UnknownEventTypeError(
            f"event type {value!r} is not a Slipway event type: {reason}; {_expected(prefix)}"
        )

    if not value.startswith(prefix):
        raise fail(f"it does not start with the configured prefix {prefix!r}")
    rest = value[len(prefix) :]
    if rest == STATUS_CHANGED:
        raise fail("'status.changed' needs a task name in front")
    names: list[str]
    phase: str
    if rest.endswith("." + STATUS_CHANGED):
        names, phase = rest[: -len(STATUS_CHANGED) - 1].split("."), STATUS_CHANGED
        if len(names) != 1:
            raise fail("only task events have the phase 'status.changed'")
    else:
        *names, phase = rest.split(".")
        if phase not in _SEQUENCE_PHASE:
            raise fail(f"it ends in {phase!r}, not a phase")
        if len(names) not in (1, 2):
            raise fail(f"it has {len(names)} name segments before the phase, not 1 or 2")
    for name in names:
        if not is_name(name):
            raise fail(f"segment {name!r} is not a DNS label")
    if len(names) == 1:
        return TaskEventType(names[0], _TASK_PHASE[phase])
    return SequenceEventType(names[0], names[1], _SEQUENCE_PHASE[phase])
