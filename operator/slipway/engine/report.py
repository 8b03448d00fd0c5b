"""The report of an evaluation, and its two renderings: JSON for machines, a table for people.

The JSON keys are camelCase (`comparedValue`, `keySli`) like the rest of Slipway's API. A report's
JSON is also a valid entry of an evaluation history (see `slipway.engine.scoring.parse_history`),
so the output of one `slipway evaluate` can be fed back as history of the next.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from slipway.api.common import ResultName
from slipway.api.slo import AggregateFunction, CompareWith, IncludeResultWithScore
from slipway.engine.criteria import parse_criterion

Result = ResultName
Status = Literal["pass", "warning", "fail", "info"]


class _ReportModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        use_attribute_docstrings=True,
    )


class Target(_ReportModel):
    """One criterion as it was applied."""

    criteria: str
    """The criterion as written in the SLO (`<=+10%`)."""
    threshold: float | None
    """The resolved threshold; null for a relative criterion with no earlier value."""
    met: bool
    """Whether the value met it (always false without a value; always true for a relative
    criterion without an earlier value when there is a value)."""


class Targets(_ReportModel):
    """Every criterion of an objective, set by set: a set is met when all its targets are met,
    the list when any of its sets is."""

    pass_: list[list[Target]] = Field(default_factory=list, alias="pass")
    """The `pass` criteria sets."""
    warning: list[list[Target]] = Field(default_factory=list)
    """The `warning` criteria sets (evaluated and shown even when `pass` was met)."""


class ObjectiveReport(_ReportModel):
    """The verdict on one objective."""

    sli: str
    """The SLI's name."""
    display_name: str
    """The objective's label (the SLI's name when the SLO gave none)."""
    value: float | None
    """The SLI's value; null when it was missing or could not be fetched."""
    compared_value: float | None
    """The aggregate of the SLI's earlier values that relative criteria use; null when none."""
    targets: Targets
    """Each criterion with its resolved threshold and whether it was met."""
    status: Status
    """`pass`, `warning`, `fail`, or `info` for an objective without pass criteria."""
    score: float
    """Points earned: the weight for pass, half of it for warning, 0 otherwise."""
    weight: int
    """Points at stake (not counted in the total when `status` is `info`)."""
    key_sli: bool
    """Whether failing this objective fails the evaluation."""
    message: str
    """The verdict in one sentence, with the error when the value could not be fetched."""


class Totals(_ReportModel):
    """The sums behind the score."""

    earned: float
    """Points earned by the scored objectives."""
    maximum: float
    """Points the scored objectives could earn (the sum of their weights)."""
    pass_threshold: float
    """The SLO's `total_score.pass`, in percent."""
    warning_threshold: float | None
    """The SLO's `total_score.warning`, in percent; null when it has none."""
    passed: int
    """Objectives that passed."""
    warnings: int
    """Objectives that warned."""
    failed: int
    """Objectives that failed (including those without a value)."""
    informative: int
    """Objectives without pass criteria, reported but not scored."""


class ComparisonReport(_ReportModel):
    """How earlier evaluations were chosen, and which were used."""

    compare_with: CompareWith
    include_result_with_score: IncludeResultWithScore
    number_of_comparison_results: int
    """How many earlier evaluations were asked for (1 for `single_result`)."""
    aggregate_function: AggregateFunction
    compared: list[str] = Field(default_factory=list)
    """The earlier evaluations used, newest first: their `id`, or `#<position in the given
    history>` when they have none."""


class Report(_ReportModel):
    """The outcome of one evaluation."""

    result: Result
    """`pass`, `warning` or `fail`."""
    score: float
    """The total score, 0 to 100: earned points in percent of the scored objectives' weights."""
    message: str
    """The verdict in one line, with its reason."""
    key_sli_failed: list[str] = Field(default_factory=list)
    """SLIs of the key objectives that failed (any forces `fail`)."""
    totals: Totals
    comparison: ComparisonReport
    objectives: list[ObjectiveReport] = Field(default_factory=list)
    """One entry per objective of the SLO, in its order."""


def format_number(value: float | None) -> str:
    """A number as people read it: integers without `.0`, others to 6 significant digits;
    `-` for None."""
    if value is None:
        return "-"
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def render_json(report: Report) -> str:
    """The report as one indented JSON object with camelCase keys."""
    return report.model_dump_json(by_alias=True, indent=2)


def render_table(report: Report) -> str:
    """The report as a table for a terminal: the verdict, one row per objective, then the
    message of every objective that did not pass."""
    totals = report.totals
    thresholds = f"pass >= {format_number(totals.pass_threshold)}%"
    if totals.warning_threshold is not None:
        thresholds += f", warning >= {format_number(totals.warning_threshold)}%"
    comparison = report.comparison
    lines = [
        f"RESULT {report.result}   SCORE {report.score:.2f}   "
        f"({format_number(totals.earned)} of {format_number(totals.maximum)} points; {thresholds})",
        f"compared with {len(comparison.compared)} earlier evaluation(s)"
        + (f": {', '.join(comparison.compared)}" if comparison.compared else "")
        + f" ({comparison.compare_with}, {comparison.aggregate_function}, "
        f"include {comparison.include_result_with_score})",
        "",
    ]
    header = ("OBJECTIVE", "STATUS", "VALUE", "COMPARED", "POINTS", "TARGETS")
    rows = [header] + [
        (
            objective.display_name + (" *" if objective.key_sli else ""),
            objective.status,
            format_number(objective.value),
            format_number(objective.compared_value),
            "-"
            if objective.status == "info"
            else f"{format_number(objective.score)}/{objective.weight}",
            _describe_targets(objective.targets),
        )
        for objective in report.objectives
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    if not report.objectives:
        lines.append("(no objectives)")
    if any(objective.key_sli for objective in report.objectives):
        lines.append("* key SLI")
    notes = [o for o in report.objectives if o.status != "pass"]
    if notes:
        lines.append("")
        lines.extend(f"{o.display_name}: {o.message}" for o in notes)
    lines.extend(["", report.message])
    return "\n".join(lines)


def _describe_targets(targets: Targets) -> str:
    parts = []
    for kind, sets in (("pass", targets.pass_), ("warning", targets.warning)):
        if sets:
            described = " or ".join(
                " and ".join(_describe_target(target) for target in criteria_set)
                for criteria_set in sets
            )
            parts.append(f"{kind}: {described}")
    return "; ".join(parts) or "-"


def _describe_target(target: Target) -> str:
    verdict = "met" if target.met else "missed"
    try:
        relative = parse_criterion(target.criteria).relative
    except ValueError:  # a report read from elsewhere: show what it says
        relative = target.threshold is None
    if not relative:
        return f"{target.criteria} {verdict}"
    if target.threshold is None:
        return f"{target.criteria} [no earlier value] {verdict}"
    return f"{target.criteria} [{format_number(target.threshold)}] {verdict}"
