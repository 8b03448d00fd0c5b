"""TaskProvider: who does a task. A remote CloudEvent endpoint, a container Job, the built-in
evaluation (quality gate), or an approval (a human gate)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, model_validator

from slipway.api.common import (
    Condition,
    Duration,
    Name,
    ObjectName,
    Result,
    SlipwayModel,
    StatusModel,
    conditions_field,
    explained,
)
from slipway.api.slo import SLO

Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        json_schema_extra=explained(
            "an http(s) URL", "write an absolute URL such as http://phone-checker.tools:8080/"
        ),
    ),
]
"""An absolute http or https URL."""

#: A JSONPath into a JSON document, such as `$.latency.p95` or `$.extract-metadata.exif`.
JsonPath = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^\$")]


class ProviderKind(StrEnum):
    """How a TaskProvider carries out its task."""

    CLOUD_EVENT = "cloudEvent"
    JOB = "job"
    EVALUATION = "evaluation"
    APPROVAL = "approval"


class CloudEventMode(StrEnum):
    """The CloudEvents HTTP content mode."""

    STRUCTURED = "structured"
    BINARY = "binary"


class SecretReference(SlipwayModel):
    """A Secret in the TaskProvider's namespace."""

    name: ObjectName
    """The Secret's name."""


class HeadersFrom(SlipwayModel):
    """Where extra HTTP headers come from."""

    secret_ref: SecretReference
    """A Secret whose every key is a header name and whose value is the header's value (for
    example `Authorization: Bearer ...`)."""


class CloudEventProvider(SlipwayModel):
    """A remote tool, in any language, anywhere: it receives `<task>.triggered` as an HTTP POST
    and answers with `.started`/`.status.changed`/`.finished` events to the callback URL."""

    url: Url
    """Where the `.triggered` event is POSTed."""

    mode: CloudEventMode = CloudEventMode.STRUCTURED
    """`structured` (the whole event as a JSON body) or `binary` (attributes as `ce-`
    headers, the data as the body)."""

    headers_from: HeadersFrom | None = None
    """Extra headers sent with every POST, e.g. credentials of the tool."""

    timeout: Duration = "10s"
    """How long one POST may take. A POST that fails with a connection error or a 5xx answer
    is retried with backoff."""


class JobProvider(SlipwayModel):
    """A container task: each attempt runs as a Kubernetes Job."""

    template: dict[str, Any] = Field(
        json_schema_extra={
            "x-kubernetes-preserve-unknown-fields": True,
            "x-kubernetes-embedded-resource": False,
        }
    )
    """A Pod template (`metadata`, `spec`) as in a Job's `spec.template`. The container gets
    the `.triggered` event as JSON in `SLIPWAY_EVENT` and a callback URL and token in
    `SLIPWAY_CALLBACK_URL`/`SLIPWAY_CALLBACK_TOKEN`. Restricted Pod Security defaults apply
    unless the template says otherwise; the task's timeout becomes `activeDeadlineSeconds`."""


class PrometheusSource(SlipwayModel):
    """SLI values from Prometheus instant queries."""

    url: Url
    """Base URL of the Prometheus server, e.g. `http://prometheus:9090`."""

    queries: dict[str, Annotated[str, Field(max_length=4096)]] = Field(min_length=1, max_length=64)
    """SLI name → PromQL instant query, evaluated at the window's end. Placeholders:
    `$DURATION` (and Keptn's `$DURATION_SECONDS`): the window's length, e.g. `300s`;
    `$START`, `$END`: its bounds in unix seconds (for PromQL's `@`); `$SHIPYARD`, `$STAGE`,
    `$SEQUENCE`, `$TASK`, `$RUN`, `$NAMESPACE`; each key of the SLO's `filter` (as written and
    in capitals). The answer must be one number (a scalar or a single series)."""

    headers_from: HeadersFrom | None = None
    """Extra headers for each query, e.g. credentials."""


class HttpSource(SlipwayModel):
    """An SLI value read from any HTTP endpoint answering JSON."""

    name: Annotated[str, Field(min_length=1, max_length=128)]
    """The SLI name the value is known by in the SLO's objectives."""

    url: Url
    """The URL to GET."""

    json_path: JsonPath
    """Where the number is in the answer, e.g. `$.latency.p95`."""

    headers_from: HeadersFrom | None = None
    """Extra headers for the request, e.g. credentials."""


class Sources(SlipwayModel):
    """Where each SLI value comes from; an SLI name should be defined by one source only."""

    prometheus: PrometheusSource | None = None
    """SLI values from Prometheus queries."""

    http: list[HttpSource] = Field(default_factory=list, max_length=64)
    """SLI values from HTTP JSON endpoints."""

    data: dict[str, JsonPath] = Field(default_factory=dict, max_length=64)
    """SLI name → JSONPath into the run's data, e.g. `$.extract-metadata.exif_present`: values
    produced by earlier tasks of the run."""


class EvaluationProvider(SlipwayModel):
    """The built-in quality gate: fetch SLI values, score them against a Keptn v1 SLO, and
    finish the task with `pass`, `warning` or `fail` and a score."""

    sources: Sources
    """Where the SLI values come from."""

    slo: SLO
    """A Keptn v1 SLO document, unchanged (snake_case keys as in Keptn's `slo.yaml`):
    `comparison`, `objectives` (`sli`, `pass`, `warning`, `weight`, `key_sli`) and
    `total_score` (`pass`, `warning`)."""

    timeframe: Duration | None = None
    """How long the window the SLI values describe is; it ends when the evaluation starts.
    The task's settings win over it (`timeframe`, or `start`/`end`, in the task's properties
    or in the run's data under the task's name); when neither sets a window, it runs from the
    run's start to the evaluation."""


class Approvers(SlipwayModel):
    """Who may decide, besides what RBAC says (the `approve` verb on `taskexecutions`)."""

    users: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        default_factory=list, max_length=64
    )
    """Usernames as the API server knows them (a TokenReview's `username`, e.g.
    `alice@example.com` or `system:serviceaccount:team:deployer`)."""

    groups: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        default_factory=list, max_length=64
    )
    """Groups: a member of any of them may decide."""


class ApprovalProvider(SlipwayModel):
    """A human gate: the task waits until enough people approve it (or one rejects it).

    A decision is `POST /v1/namespaces/{ns}/taskexecutions/{name}/approval` with
    `{decision: approve|reject, comment}` to the gateway, or `slipway approve|reject`. The
    caller needs the RBAC verb `approve` on `taskexecutions` in the namespace, must be listed
    in `approvers` when that is set, and may not be the person who triggered the run unless
    `allowSelfApproval` is true."""

    approvers: Approvers | None = None
    """Who may decide. Unset or empty: anyone RBAC allows to `approve` taskexecutions."""

    required: Annotated[int, Field(ge=1, le=16)] = 1
    """How many distinct people must approve. One rejection fails the task at once."""

    automatic: list[Result] = Field(default_factory=list, max_length=3)
    """Results of the run so far (the worst result of its finished tasks) that approve the
    task without a person, e.g. `[pass]`: a passing run goes on, a warning waits for a
    person (Keptn v1's `approval` semantics). A run with no finished task has no result and
    always waits for a person."""

    allow_self_approval: bool = False
    """Whether the person who triggered the run (`slipway.dev/triggered-by`) may approve it."""

    timeout: Duration | None = None
    """How long to wait for the decisions; then the task fails `TimedOut`. Unset: only the
    task's own `timeout` applies (the approval answers `.started` at once, so `startTimeout`
    never ends it)."""


class TaskProviderSpec(SlipwayModel):
    """Which tool does a task, in which stages and Shipyards. Set exactly one of
    `cloudEvent`, `job`, `evaluation` and `approval`."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": (
                        "has(self.cloudEvent) || has(self.job) || has(self.evaluation)"
                        " || has(self.approval)"
                    ),
                    "message": (
                        "set one of spec.cloudEvent (a remote tool), spec.job (a container), "
                        "spec.evaluation (the built-in quality gate) or spec.approval "
                        "(a human gate)"
                    ),
                    "reason": "FieldValueRequired",
                },
                {
                    "rule": (
                        "(has(self.cloudEvent) ? 1 : 0) + (has(self.job) ? 1 : 0)"
                        " + (has(self.evaluation) ? 1 : 0) + (has(self.approval) ? 1 : 0) <= 1"
                    ),
                    "message": (
                        "set only one of spec.cloudEvent, spec.job, spec.evaluation and "
                        "spec.approval; "
                        "use one TaskProvider per tool (several may serve the same task)"
                    ),
                    "reason": "FieldValueForbidden",
                },
            ]
        }
    )

    task: Name
    """The task this provider carries out, by name (`checknumber`)."""

    stages: list[Name] | None = Field(default=None, max_length=32)
    """The stages it serves. Unset: every stage."""

    shipyards: list[ObjectName] | None = Field(default=None, max_length=32)
    """The Shipyards (in this namespace) it serves. Unset: every Shipyard."""

    cloud_event: CloudEventProvider | None = None
    """A remote tool that receives the task's `.triggered` CloudEvent over HTTP."""

    job: JobProvider | None = None
    """A container run as a Kubernetes Job."""

    evaluation: EvaluationProvider | None = None
    """The built-in quality gate."""

    approval: ApprovalProvider | None = None
    """A human gate: people approve or reject the task."""

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Self:
        """The same rule as the CRD's: exactly one of the three kinds is set."""
        kinds = (self.cloud_event, self.job, self.evaluation, self.approval)
        count = sum(x is not None for x in kinds)
        if count != 1:
            raise ValueError(
                "a TaskProvider sets exactly one of cloudEvent, job, evaluation and approval"
                f" (this one sets {count})"
            )
        return self

    @property
    def kind(self) -> ProviderKind:
        """Which of the three kinds this provider is (the schema ensures exactly one)."""
        if self.cloud_event is not None:
            return ProviderKind.CLOUD_EVENT
        if self.job is not None:
            return ProviderKind.JOB
        if self.evaluation is not None:
            return ProviderKind.EVALUATION
        if self.approval is not None:
            return ProviderKind.APPROVAL
        raise ValueError("a TaskProvider sets one of cloudEvent, job, evaluation and approval")

    def serves(self, shipyard: str, stage: str, task: str) -> bool:
        """Whether this provider carries out `task` in `stage` of `shipyard`."""
        return (
            self.task == task
            and (self.stages is None or stage in self.stages)
            and (self.shipyards is None or shipyard in self.shipyards)
        )


class TaskProviderStatus(StatusModel):
    """What the operator observed about the TaskProvider (written by the operator only)."""

    kind: ProviderKind | None = None
    """Which kind of provider this is (`cloudEvent`, `job`, `evaluation` or `approval`), for
    `kubectl get`."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The `metadata.generation` the status describes."""

    conditions: list[Condition] = conditions_field()
    """Observations about the provider, e.g. `Ready`."""
