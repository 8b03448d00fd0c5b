"""Shipyard: what happens. Stages, each with named sequences, each an ordered list of tasks."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator
from pydantic.config import JsonDict

from slipway.api.common import (
    NAME_PATTERN,
    Condition,
    Data,
    Duration,
    Name,
    Result,
    SlipwayModel,
    StatusModel,
    conditions_field,
    explained,
)
from slipway.api.inputs import Inputs

#: Bounds that keep objects small and the API server's CEL cost estimate within its budget
#: (the name, duration and selector rules run once per entry of every enclosing list).
MAX_STAGES = 16
MAX_SEQUENCES = 32
MAX_TASKS = 32
MAX_TRIGGERS = 16
MAX_SELECTOR_KEYS = 16

_LABEL = NAME_PATTERN.strip("^$")
#: `<stage>.<sequence>.finished`: the only event a sequence can be linked to.
TRIGGER_EVENT_PATTERN = rf"^{_LABEL}[.]{_LABEL}[.]finished$"
#: Keys of `selector.match`: `result` (the sequence's) or `<task>.result` (the last task's).
#: (`[.]`, not an escaped dot: the same text must also be a valid CEL string.)
SELECTOR_KEY_PATTERN = rf"^(result|{_LABEL}[.]result)$"


def keyed_by_name() -> JsonDict:
    """A list keyed by `name`: the API server rejects a second entry with the same name
    ("Duplicate value" at the entry's index), at no CEL cost, and server-side apply merges
    entries by name."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}


class Retries(SlipwayModel):
    """How a failed attempt of a task is retried."""

    limit: Annotated[int, Field(ge=0, le=20)] = 0
    """How many more attempts follow a failed one (0: none). A task fails when its last
    attempt fails."""

    backoff: Duration = "10s"
    """Delay before each retry."""


class Task(SlipwayModel):
    """One step of a sequence, by name only: the *what*. TaskProviders say *how*."""

    name: Name
    """The task's name; its events are `<name>.triggered`, `<name>.started`,
    `<name>.status.changed` and `<name>.finished`. A DNS label without dots."""

    properties: Data = Field(default_factory=dict, json_schema_extra={"maxProperties": 256})
    """Free-form settings for the tool; they reach it as `data.<task name>` of its
    `.triggered` event."""

    start_timeout: Duration | None = None
    """How long the task may wait for its first `.started` or `.finished` (or for a provider to
    appear) before it fails with reason `TimedOut` (`NoProvider` when none appeared). Unset:
    the operator's default (10m)."""

    timeout: Duration | None = None
    """How long one attempt may take from its `.triggered` to its `.finished` before it fails
    with reason `TimedOut`. For a Job it also becomes `activeDeadlineSeconds`. Unset: no limit
    beyond `startTimeout`."""

    triggered_after: Duration | None = None
    """A delay between the previous task finishing and this task's `.triggered` event."""

    retries: Retries | None = None
    """Retry a failed attempt. Unset: no retry."""


class Selector(SlipwayModel):
    """Which outcomes of the triggering sequence start the linked sequence."""

    match: dict[str, Result] = Field(
        min_length=1,
        max_length=MAX_SELECTOR_KEYS,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": (f"self.all(k, k.size() <= 80 && k.matches('{SELECTOR_KEY_PATTERN}'))"),
                    "message": (
                        "selector.match keys are `result` (the sequence's result) or "
                        "`<task>.result` (the result of the last task that ran)"
                    ),
                }
            ]
        },
    )
    """Key `result` (the finished sequence's result) or `<task>.result` (the result of its
    last executed task); value `pass`, `warning` or `fail`. The link fires when any entry
    matches."""

    @field_validator("match")
    @classmethod
    def _keys_name_results(cls, match: dict[str, Result]) -> dict[str, Result]:
        """The same rule as the CRD's: keys are `result` or `<task>.result`."""
        bad = [k for k in match if not re.fullmatch(SELECTOR_KEY_PATTERN, k)]
        if bad:
            raise ValueError(
                f"selector.match keys are `result` or `<task>.result`, not {', '.join(bad)}"
            )
        return match


class Trigger(SlipwayModel):
    """A link: start this sequence when another sequence finishes."""

    event: Annotated[
        str,
        Field(
            max_length=137,
            pattern=TRIGGER_EVENT_PATTERN,
            json_schema_extra=explained(
                "a sequence's finished event",
                "write <stage>.<sequence>.finished, e.g. dev.sequence-one.finished",
            ),
        ),
    ]
    """The event that starts this sequence: `<stage>.<sequence>.finished` (without any
    configured event type prefix). The stage and sequence must exist in this Shipyard."""

    selector: Selector | None = None
    """Which results fire the link. Unset: the link fires when the sequence finished with
    `pass` or `warning`."""


#: `{{ path }}` placeholders of a concurrency key: `shipyard`, `stage`, `sequence` or
#: `data.<key>[.<key>...]` (the run's `spec.data`).
KEY_TEMPLATE_PATTERN = r"^([^{}]|[{][{] *[A-Za-z0-9_.-]+ *[}][}])*$"


class Concurrency(SlipwayModel):
    """At most `limit` runs with the same key run at once; the others wait in phase `Queued`
    and start first in, first out (creation time, then name)."""

    limit: Annotated[int, Field(ge=1, le=1000)] = 1
    """How many runs with the same key may be started (running or suspended) at once."""

    key: Annotated[
        str,
        Field(
            min_length=1,
            max_length=256,
            pattern=KEY_TEMPLATE_PATTERN,
            json_schema_extra=explained(
                "a key template",
                "write text with {{ placeholders }} such as {{ stage }}, {{ sequence }}, "
                "{{ shipyard }} or {{ data.number }}",
            ),
        ),
    ] = "{{ stage }}.{{ sequence }}"
    """Which runs share a queue (within the Shipyard): text with `{{ shipyard }}`,
    `{{ stage }}`, `{{ sequence }}` and `{{ data.<path> }}` (from the run's `spec.data`)
    substituted; nothing is evaluated. Runs of several sequences whose keys render the same
    share one queue. Default: one queue per stage and sequence."""


class History(SlipwayModel):
    """How many finished runs to keep. The oldest beyond these are deleted (their
    TaskExecutions, Jobs and Secrets with them), except runs whose evaluations a later
    evaluation still compares with. Unset fields take the operator's defaults
    (`SLIPWAY_HISTORY_*`)."""

    successful_runs: Annotated[int, Field(ge=0, le=100_000)] | None = None
    """Finished runs with `pass` or `warning` to keep per stage and sequence."""

    failed_runs: Annotated[int, Field(ge=0, le=100_000)] | None = None
    """Finished runs with `fail` to keep per stage and sequence."""

    ttl_after_finished: Duration | None = None
    """Delete a finished run this long after it finished, whatever the counts say
    (`0`: keep no finished run beyond what evaluations need)."""


class Sequence(SlipwayModel):
    """An ordered list of tasks; task N+1 starts after task N finished."""

    name: Name
    """The sequence's name, unique within its stage; its events are
    `<stage>.<name>.triggered|started|finished`. A DNS label without dots."""

    title: Annotated[str, Field(max_length=200)] | None = None
    """What the sequence does, for people (`Check a phone number`). Only sequences with a
    title are offered on the web page's catalogue."""

    description: Annotated[str, Field(max_length=2000)] | None = None
    """A sentence or two in plain words: what it checks, what the verdict means."""

    inputs: Inputs | None = None
    """The run's data as a JSON Schema subset: the page's form is built from it, the gateway
    answers 422 to a trigger whose data does not fit, and a run created otherwise finishes
    `Invalid` with the same message. Unset: any data."""

    tasks: list[Task] = Field(min_length=1, max_length=MAX_TASKS, json_schema_extra=keyed_by_name())
    """The tasks, run one after the other. A `fail` stops the sequence; a `warning`
    continues."""

    triggered_on: list[Trigger] = Field(default_factory=list, max_length=MAX_TRIGGERS)
    """Start this sequence (as a new SequenceRun carrying the same context and data) when one
    of these events happens."""

    concurrency: Concurrency | None = None
    """Limit how many runs of this sequence (with the same key) run at once. Unset: no
    limit."""


class Stage(SlipwayModel):
    """An environment or phase (`dev`, `prod`); sequences are looked up per stage."""

    name: Name
    """The stage's name, unique within the Shipyard. A DNS label without dots."""

    sequences: list[Sequence] = Field(
        min_length=1, max_length=MAX_SEQUENCES, json_schema_extra=keyed_by_name()
    )
    """The sequences that can run in this stage."""


class ShipyardSpec(SlipwayModel):
    """The process: stages, each with named sequences, each an ordered list of tasks."""

    stages: list[Stage] = Field(
        min_length=1, max_length=MAX_STAGES, json_schema_extra=keyed_by_name()
    )
    """The stages, in no particular order of execution (links between sequences say what
    follows what)."""

    history: History | None = None
    """How many finished runs of this Shipyard to keep (see `History`). Unset: the operator's
    defaults."""

    def stage(self, name: str) -> Stage | None:
        """The stage called `name`, or None."""
        return next((s for s in self.stages if s.name == name), None)

    def sequence(self, stage: str, name: str) -> Sequence | None:
        """The sequence `name` of stage `stage`, or None when either does not exist."""
        found = self.stage(stage)
        if found is None:
            return None
        return next((s for s in found.sequences if s.name == name), None)


class ShipyardStatus(StatusModel):
    """What the operator observed about the Shipyard (written by the operator only)."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The `metadata.generation` the conditions describe."""

    conditions: list[Condition] = conditions_field()
    """`Ready`: `True` when the Shipyard is consistent (every `triggeredOn` names an existing
    stage and sequence, every selector names a task of its sequence), else `False` with the
    reason and a message saying what to fix."""
