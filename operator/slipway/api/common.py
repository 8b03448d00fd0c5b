"""Building blocks shared by every resource: names, durations, results, phases, conditions.

Every model here and in the sibling modules is both the operator's typed view of a resource
and the source its CRD schema is generated from (`slipway.api.crds`): attribute docstrings
become the schema's descriptions, so `kubectl explain` shows them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

#: A DNS label (RFC 1123) without dots: dots separate the segments of event types.
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: A Kubernetes object name that is also usable as a label value (at most 63 characters).
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
#: A Go/Keptn duration: one or more `<number><unit>` with unit ns, us, µs, ms, s, m or h.
#: (`[.]`, not an escaped dot: the pattern is also written into a CEL string.)
DURATION_PATTERN = r"^(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|ms|s|m|h))+)$"

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)")
_DURATION_WHOLE = re.compile(DURATION_PATTERN)
#: Microseconds per unit; timedelta's resolution is one microsecond.
_UNIT_MICROSECONDS = {
    "ns": Fraction(1, 1000),
    "us": Fraction(1),
    "µs": Fraction(1),
    "ms": Fraction(1000),
    "s": Fraction(1_000_000),
    "m": Fraction(60_000_000),
    "h": Fraction(3_600_000_000),
}

#: Schema extension read by `slipway.api.schema`: `{"what": ..., "how": ...}` makes the CRD
#: check the `pattern` with a CEL rule whose message quotes the value and says how to fix it,
#: instead of the OpenAPI pattern's bare "should match <regex>".
EXPLAINED_PATTERN = "x-slipway-explained-pattern"


def explained(what: str, how: str) -> dict[str, Any]:
    """Schema extra: check the pattern with a CEL rule saying `<value> is not <what>: <how>`."""
    return {EXPLAINED_PATTERN: {"what": what, "how": how}}


Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=63,
        pattern=NAME_PATTERN,
        json_schema_extra=explained(
            "a valid name",
            "use lower-case letters, digits and '-', start and end with a letter or digit, "
            "and no dots (dots separate the parts of event types)",
        ),
    ),
]
"""A stage, sequence or task name: lower-case letters, digits and `-`, no dots."""

ObjectName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=63,
        pattern=OBJECT_NAME_PATTERN,
        json_schema_extra=explained(
            "an object name",
            "use lower-case letters, digits, '-' and '.', start and end with a letter or digit",
        ),
    ),
]
"""The name of a Kubernetes object in the same namespace (a Shipyard, a SequenceRun)."""

Duration = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        pattern=DURATION_PATTERN,
        json_schema_extra=explained(
            "a duration", "write a number and a unit (ns, us, ms, s, m, h), e.g. 30s, 10m or 1h30m"
        ),
    ),
]
"""A duration as Go and Keptn write it: `30s`, `10m`, `1h30m`, `1.5h`; see `parse_duration`."""

Data = dict[str, Any]
"""A free-form JSON object (kept as is by the API server)."""


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration (`10m`, `1h30m`, `1.5h`, `250ms`, `0`) into a timedelta.

    Negative durations and bare numbers other than `0` are rejected with `ValueError`, as the
    CRD's pattern rejects them. Sub-microsecond parts are rounded to the nearest microsecond.
    """
    if not isinstance(text, str) or not _DURATION_WHOLE.fullmatch(text):
        raise ValueError(
            f"invalid duration {text!r}: write a number and a unit (ns, us, ms, s, m, h), "
            "for example 30s, 10m or 1h30m"
        )
    total = Fraction(0)
    for number, unit in _DURATION_PART.findall(text):
        total += Fraction(number) * _UNIT_MICROSECONDS[unit]
    return timedelta(microseconds=round(total))


class SlipwayModel(BaseModel):
    """Base of every model: camelCase on the wire, snake_case in Python, both accepted."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        use_attribute_docstrings=True,
        extra="forbid",
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON object as the API server stores it: camelCase keys, unset fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(SlipwayModel):
    """Base of status models: unknown keys are ignored, so an older operator can read a status
    a newer one wrote."""

    model_config = ConfigDict(extra="ignore")

    def copied(self) -> Self:
        """A deep copy to change, made by dumping and validating again (in pydantic's compiled
        core): about nine times faster than `model_copy(deep=True)`, Python's deepcopy, for a
        run's status, and the engine copies a status at every decision."""
        return self.model_validate(self.model_dump(round_trip=True))


class Phase(StrEnum):
    """Where a run or task execution is in its life."""

    PENDING = "Pending"
    STARTED = "Started"
    FINISHED = "Finished"


class Result(StrEnum):
    """The verdict of a task, a sequence or an evaluation."""

    PASS = "pass"
    WARNING = "warning"
    FAIL = "fail"


#: `Result`'s values as a type, for plain-string fields (a tool's answer, an evaluation
#: report); a unit test proves the two list the same verdicts.
ResultName = Literal["pass", "warning", "fail"]

#: Results from best to worst: the worst of several is the one with the highest index.
RESULT_ORDER: tuple[Result, ...] = (Result.PASS, Result.WARNING, Result.FAIL)


class Reason(StrEnum):
    """Why a run or task execution finished."""

    COMPLETED = "Completed"
    FAILED = "Failed"
    TIMED_OUT = "TimedOut"
    ABORTED = "Aborted"
    INVALID = "Invalid"
    NO_PROVIDER = "NoProvider"
    DATA_TOO_LARGE = "DataTooLarge"


#: Condition reason (never a finish reason): a task has no TaskProvider yet and waits for one
#: until its `startTimeout`, then finishes with reason `NoProvider`.
WAITING_FOR_PROVIDER: Final = "WaitingForProvider"


class ConditionStatus(StrEnum):
    """Whether a condition holds."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """One observation about the object, as in Kubernetes' own `metav1.Condition`."""

    type: Annotated[str, Field(min_length=1, max_length=316)]
    """The kind of observation, CamelCase: `Ready` on a Shipyard, `Succeeded` on a
    SequenceRun or TaskExecution."""

    status: ConditionStatus
    """`True`, `False` or `Unknown` (still running, or not yet known)."""

    reason: Annotated[str, Field(max_length=1024)] = ""
    """One CamelCase word saying why, suited to `kubectl get` (e.g. `Completed`, `TimedOut`,
    `WaitingForProvider`)."""

    message: Annotated[str, Field(max_length=32768)] = ""
    """What happened, for a person."""

    last_transition_time: datetime | None = None
    """When `status` last changed."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The `metadata.generation` of the object this condition was computed from."""


def conditions_field() -> Any:
    """The `conditions` field of a status: a list keyed by `type` (one entry per type)."""
    return Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
