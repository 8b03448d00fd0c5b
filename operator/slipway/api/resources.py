"""The four kinds of the API: names, models, printer columns and whole-object rules.

Each `Resource` says everything the CRD generator needs; the operator uses `parse_*` to read
an object's spec and status into models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from slipway.api.sequencerun import SequenceRunSpec, SequenceRunStatus
from slipway.api.shipyard import ShipyardSpec, ShipyardStatus
from slipway.api.taskexecution import TaskExecutionSpec, TaskExecutionStatus
from slipway.api.taskprovider import TaskProviderSpec, TaskProviderStatus
from slipway.constants import (
    SEQUENCERUN_PLURAL,
    SHIPYARD_PLURAL,
    TASKEXECUTION_PLURAL,
    TASKPROVIDER_PLURAL,
)

CATEGORY = "slipway"


@dataclass(frozen=True)
class Column:
    """A column of `kubectl get`; priority 1 shows only with `-o wide`."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0

    def to_crd(self) -> dict[str, Any]:
        """The CRD's `additionalPrinterColumns` entry."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            out["description"] = self.description
        if self.priority:
            out["priority"] = self.priority
        return out


AGE = Column("Age", ".metadata.creationTimestamp", "date", "Time since creation.")
READY_CONDITION = '.status.conditions[?(@.type=="Ready")]'


@dataclass(frozen=True)
class Resource:
    """One kind of the API."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    description: str
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: tuple[Column, ...]
    #: CEL rules on the whole object (only metadata.name and generateName are visible).
    rules: tuple[dict[str, str], ...] = field(default_factory=tuple)

    @property
    def singular(self) -> str:
        return self.kind.lower()


def _short_name_rule(kind: str, why: str) -> dict[str, str]:
    """Names of this kind end up in label values, which are limited to 63 characters."""
    return {
        "rule": "self.metadata.name.size() <= 63",
        "fieldPath": ".metadata.name",
        "message": f"a {kind} name must be at most 63 characters ({why})",
    }


SHIPYARD = Resource(
    kind="Shipyard",
    plural=SHIPYARD_PLURAL,
    short_names=("sy",),
    description=(
        "What happens: stages (dev, prod), each with named sequences, each an ordered list of "
        "tasks. Sequences can be linked: one starts when another finishes."
    ),
    spec=ShipyardSpec,
    status=ShipyardStatus,
    columns=(
        Column("Ready", f"{READY_CONDITION}.status", description="Whether it is consistent."),
        Column("Message", f"{READY_CONDITION}.message", description="What to fix, if anything."),
        AGE,
    ),
    rules=(_short_name_rule("Shipyard", "runs and executions are labelled with it"),),
)

TASK_PROVIDER = Resource(
    kind="TaskProvider",
    plural=TASKPROVIDER_PLURAL,
    short_names=("tp",),
    description=(
        "Who does a task: a remote tool reached by CloudEvents over HTTP, a container run as a "
        "Job, or the built-in evaluation. Swapping a tool means changing a TaskProvider only."
    ),
    spec=TaskProviderSpec,
    status=TaskProviderStatus,
    columns=(
        Column("Task", ".spec.task", description="The task it carries out."),
        Column("Kind", ".status.kind", description="cloudEvent, job, evaluation or approval."),
        Column("Stages", ".spec.stages", description="Stages served (all if empty).", priority=1),
        AGE,
    ),
)

SEQUENCE_RUN = Resource(
    kind="SequenceRun",
    plural=SEQUENCERUN_PLURAL,
    short_names=("sr",),
    description=(
        "One run of one sequence of a Shipyard in one stage, with its input data. The operator "
        "runs its tasks in order and records everything in its status."
    ),
    spec=SequenceRunSpec,
    status=SequenceRunStatus,
    columns=(
        Column("Shipyard", ".spec.shipyard", description="The Shipyard."),
        Column("Stage", ".spec.stage", description="The stage."),
        Column("Sequence", ".spec.sequence", description="The sequence."),
        Column(
            "Phase",
            ".status.phase",
            description="Pending, Queued, Started, Suspended or Finished.",
        ),
        Column("Result", ".status.result", description="pass, warning or fail."),
        Column("Task", ".status.currentTask", description="The current (or last) task."),
        Column("Score", ".status.score", "number", "Last evaluation score (empty: none)."),
        Column("Reason", ".status.reason", description="Why it finished.", priority=1),
        Column(
            "Message",
            ".status.message",
            description="What happened, or why it waits (queued, suspended).",
            priority=1,
        ),
        AGE,
    ),
    rules=(_short_name_rule("SequenceRun", "its TaskExecutions are labelled with it"),),
)

TASK_EXECUTION = Resource(
    kind="TaskExecution",
    plural=TASKEXECUTION_PLURAL,
    short_names=("te",),
    description=(
        "One task of one SequenceRun, created and owned by the run: which providers were "
        "triggered, what each answered, and the task's result."
    ),
    spec=TaskExecutionSpec,
    status=TaskExecutionStatus,
    columns=(
        Column("Run", ".spec.run", description="The SequenceRun."),
        Column("Task", ".spec.task.name", description="The task."),
        Column("Phase", ".status.phase", description="Pending, Started or Finished."),
        Column("Result", ".status.result", description="pass, warning or fail."),
        Column("Attempts", ".status.attempts", "integer", "Attempts so far.", priority=1),
        Column("Reason", ".status.reason", description="Why it finished.", priority=1),
        AGE,
    ),
)

RESOURCES: tuple[Resource, ...] = (SHIPYARD, TASK_PROVIDER, SEQUENCE_RUN, TASK_EXECUTION)
