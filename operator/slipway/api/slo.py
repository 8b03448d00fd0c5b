"""The SLO document of an evaluation provider: Keptn v1's `slo.yaml`, accepted unchanged.

Keys are Keptn's own (`spec_version`, `total_score`, `key_sli`, `displayName`, `pass`, ...), so a
Keptn v1 `slo.yaml` validates as it is; Python code may also use the field names (`pass_`,
`display_name`). Defaults follow Keptn v1's lighthouse-service code, not its older docs: see
`Comparison`. Stricter than Keptn on purpose (each would be a silent surprise there): unknown keys,
unknown `compare_with` / `aggregate_function` / `include_result_with_score` values, an unparsable
criterion or percentage, a negative weight and a criteria set without criteria make the document
invalid instead of being ignored or defaulted.

Every field carries a docstring: they become the descriptions of the CRD schema that embeds `SLO`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

CompareWith = Literal["single_result", "several_results"]
IncludeResultWithScore = Literal["pass", "pass_or_warn", "all"]
AggregateFunction = Literal["avg", "p50", "p90", "p95"]

_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"

CRITERION_PATTERN = rf"^\s*(<\s*=|>\s*=|<|>|=)\s*([+-]?)\s*({_NUMBER})\s*(%?)\s*$"
"""One criterion: operator, optional sign, number, optional `%`; blanks between the parts are
allowed. Groups: 1 operator, 2 sign, 3 number, 4 percent. A sign or a `%` makes the criterion
relative to the aggregate of earlier results (so, as in Keptn, `=-5` means "A - 5", never an
absolute -5). The same text is the `pattern` of the CRD schema, so the API server rejects typos."""

PERCENTAGE_PATTERN = r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*%?\s*$"
"""A total-score threshold: a number with an optional `%` (`"90%"`, `"90"`, `90`)."""

OPTIONAL_PERCENTAGE_PATTERN = r"^\s*(?:([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*%?\s*)?$"
"""A percentage, or nothing (blank): the optional warning threshold."""

DEFAULT_COMPARISON_RESULTS = 3
"""How many earlier evaluations `several_results` compares with when no number is given."""


def _scalar_to_str(value: Any) -> Any:
    """YAML turns `spec_version: 1.0` or `pass: 90` into numbers; Keptn read them as strings."""
    if isinstance(value, bool):
        return value  # `true` is not a version or a percentage: let validation say so
    if isinstance(value, int | float):
        return str(value)
    return value


def _none_to_empty_list(value: Any) -> Any:
    """`pass:` or `objectives:` with nothing after it is YAML null: read as an empty list."""
    return [] if value is None else value


def _none_to_empty_dict(value: Any) -> Any:
    return {} if value is None else value


def _str_map(value: Any) -> Any:
    """`filter` values are placeholders in queries: numbers are taken as their text."""
    value = _none_to_empty_dict(value)
    if isinstance(value, dict):
        return {key: _scalar_to_str(item) for key, item in value.items()}
    return value


Criterion = Annotated[str, Field(pattern=CRITERION_PATTERN)]
Percentage = Annotated[str, BeforeValidator(_scalar_to_str), Field(pattern=PERCENTAGE_PATTERN)]
OptionalPercentage = Annotated[
    str, BeforeValidator(_scalar_to_str), Field(pattern=OPTIONAL_PERCENTAGE_PATTERN)
]


class _Document(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


class CriteriaSet(_Document):
    """One entry of `pass` or `warning`: it is met when every one of its criteria holds (AND);
    a list of sets is met when any set is met (OR)."""

    criteria: list[Criterion] = Field(min_length=1)
    """Criteria that must all hold: an operator (`<`, `<=`, `=`, `>=`, `>`) and a threshold.
    An absolute threshold is a plain number (`<600`, `=0`). A relative one compares with the
    aggregate A of earlier results: `+x%` (or `x%`) means A·(1+x/100), `-x%` A·(1-x/100),
    `+x` A+x, `-x` A-x (`<=+10%`: at most 10 % above A). With no earlier value, a relative
    criterion is met."""


class Objective(_Document):
    """One SLI and what it must meet."""

    sli: str = Field(min_length=1)
    """Name of the SLI whose value is judged (a key of the evaluation's sources)."""

    display_name: str = Field("", alias="displayName")
    """Label for people; empty means the SLI name."""

    pass_: Annotated[list[CriteriaSet], BeforeValidator(_none_to_empty_list)] = Field(
        default_factory=list, alias="pass"
    )
    """Criteria sets for `pass` (ORed). Without any, the objective is informative only: its value
    is reported but it is not scored."""

    warning: Annotated[list[CriteriaSet], BeforeValidator(_none_to_empty_list)] = Field(
        default_factory=list
    )
    """Criteria sets for `warning` (ORed), checked when `pass` is not met; meeting one earns half
    the weight."""

    weight: int = Field(1, ge=0, strict=True)
    """Points this objective is worth when it passes (half when it warns). Default 1; as in
    Keptn v1, 0 counts as 1."""

    key_sli: bool = Field(False, strict=True)
    """A key SLI that fails (or has no value) fails the whole evaluation, whatever the score.
    A key SLI that only warns does not."""

    @field_validator("weight", mode="before")
    @classmethod
    def _default_weight(cls, value: Any) -> Any:
        return 1 if value is None or (isinstance(value, int) and value == 0) else value


class Comparison(_Document):
    """Which earlier evaluations relative criteria compare with, and how they are aggregated.

    Defaults are those of Keptn v1's lighthouse-service code: without this block, one earlier
    result of any score, averaged; with the block present, `compare_with` defaults to
    `several_results` and `number_of_comparison_results` to 3 (Keptn's docs said
    `single_result`/1, its code did otherwise, and existing files were scored by the code)."""

    compare_with: CompareWith = "several_results"
    """`single_result`: the newest earlier evaluation only; `several_results`: the newest
    `number_of_comparison_results`. Default `several_results` when this block is present."""

    include_result_with_score: IncludeResultWithScore = "all"
    """Which earlier evaluations count, by their overall result: `pass` only, `pass_or_warn`
    (pass or warning) or `all`. Invalidated evaluations never count."""

    number_of_comparison_results: int = Field(DEFAULT_COMPARISON_RESULTS, ge=0, strict=True)
    """How many earlier evaluations `several_results` uses (newest first, after filtering).
    Default 3; 0 also means 3, as in Keptn v1. Ignored for `single_result`."""

    aggregate_function: AggregateFunction = "avg"
    """How the earlier values of an SLI become the one value A that relative criteria use:
    `avg`, or the percentile `p50`, `p90`, `p95` (linear interpolation between ranks, as
    Keptn v1 computed it)."""

    @field_validator("number_of_comparison_results", mode="before")
    @classmethod
    def _default_count(cls, value: Any) -> Any:
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and value == 0):
            return DEFAULT_COMPARISON_RESULTS
        return value

    @property
    def results_to_compare(self) -> int:
        """How many earlier evaluations are compared with: 1 for `single_result`."""
        return 1 if self.compare_with == "single_result" else self.number_of_comparison_results


def _comparison_without_block() -> Comparison:
    return Comparison(compare_with="single_result")


class TotalScore(_Document):
    """Thresholds on the total score, in percent of the points the scored objectives can earn."""

    pass_: Percentage = Field(alias="pass")
    """Required. The evaluation passes when its score is at least this (`"90%"`)."""

    warning: OptionalPercentage = ""
    """Optional. Below `pass`, the evaluation warns when its score is at least this (`"75%"`);
    empty means no warning band: below `pass` is a failure."""

    @property
    def pass_percent(self) -> float:
        """The pass threshold as a number (90.0 for `"90%"`)."""
        return _percent(self.pass_)

    @property
    def warning_percent(self) -> float | None:
        """The warning threshold as a number, or None when there is none."""
        return _percent(self.warning) if self.warning.strip() else None


def _percent(text: str) -> float:
    return float(text.strip().rstrip("%").strip())


class SLO(_Document):
    """A Keptn v1 SLO document (`slo.yaml`): objectives, how to compare, when the total passes."""

    spec_version: Annotated[str, BeforeValidator(_scalar_to_str)] = "1.0"
    """Version of the SLO format; Keptn v1 files say `"1.0"`. Not interpreted."""

    filter: Annotated[dict[str, str], BeforeValidator(_str_map)] = Field(default_factory=dict)
    """Key-value pairs handed to the SLI sources; each key is usable as a `$key` placeholder in
    their queries."""

    comparison: Comparison = Field(default_factory=_comparison_without_block)
    """How relative criteria pick and aggregate earlier results. When absent: the newest single
    earlier result of any score, `avg`."""

    objectives: Annotated[list[Objective], BeforeValidator(_none_to_empty_list)] = Field(
        default_factory=list
    )
    """The SLIs judged. An empty list makes every evaluation fail."""

    total_score: TotalScore
    """Required: the pass (and optional warning) threshold of the total score."""


class SLODocumentError(ValueError):
    """A document that is not a valid SLO; the message lists every problem, one per line."""


def parse_slo(document: object) -> SLO:
    """Validate a parsed document (from YAML or JSON) as an SLO. Raises SLODocumentError with
    a readable message naming each invalid key by its path."""
    if not isinstance(document, dict):
        kind = "empty" if document is None else f"a {type(document).__name__}, not a mapping"
        raise SLODocumentError(f"not an SLO document: it is {kind}")
    try:
        return SLO.model_validate(document)
    except ValidationError as error:
        raise SLODocumentError(
            "not a valid SLO document:\n" + describe_validation_error(error)
        ) from None


def describe_validation_error(error: ValidationError) -> str:
    """Each problem of a validation error on a line of its own: `  path.to.key: message`."""
    lines = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "(document)"
        message = problem["msg"]
        if problem["type"] == "string_pattern_mismatch" and "criteria" in problem["loc"]:
            message = (
                f"invalid criterion {problem['input']!r}: expected an operator (<, <=, =, >=, >) "
                "and a number, optionally signed (+/-) and/or with %, like '<=+10%' or '<600'"
            )
        elif problem["type"] == "string_pattern_mismatch" and "total_score" in problem["loc"]:
            message = f"{problem['input']!r} is not a percentage like '90%'"
        elif problem["type"] == "extra_forbidden":
            message = "unknown key (not part of a Keptn v1 SLO document)"
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)
