"""The quality gate's verdict: SLI values + an SLO + earlier evaluations -> a `Report`.

Keptn v1's lighthouse scoring, as API.md ("Evaluation providers") states it:
- an objective with `pass` criteria is scored: pass earns its weight, warning (checked only when
  pass is not met) half of it, fail or a missing value 0; without `pass` criteria it is
  informative only (`info`, never scored, never failing);
- score = 100 * earned / Σ weights of the scored objectives; none scored -> pass with 100;
- result: a failed key SLI (fail or no value) -> fail; else pass when score >= pass%; else warning
  when a warning% is set and reached; else fail. A key SLI that warns earns half and does not
  fail the evaluation (as in Keptn). An SLO without objectives fails, with score 0;
- relative criteria compare with the aggregate of the SLI's values in the earlier evaluations
  chosen by `select_history`; with no earlier value they are met.

Values are numbers, None (missing) or an `SLIError`; a non-finite number (NaN from a query that
divided by zero) counts as missing. Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from slipway.api.slo import SLO, Comparison, CriteriaSet, Objective
from slipway.engine.aggregation import aggregate
from slipway.engine.criteria import compare, parse_criterion
from slipway.engine.report import (
    ComparisonReport,
    ObjectiveReport,
    Report,
    Result,
    Status,
    Target,
    Targets,
    Totals,
    format_number,
)


@dataclass(frozen=True)
class SLIError:
    """An SLI whose value could not be fetched; `message` says why."""

    message: str


SLIValue = float | SLIError | None
"""A fetched SLI value: a number, None (nothing received) or the error that prevented it."""


@dataclass(frozen=True)
class EarlierEvaluation:
    """A finished evaluation of the same shipyard/stage/sequence/task, as history."""

    result: Result
    """Its overall result: `include_result_with_score` filters on it."""
    values: Mapping[str, SLIValue] = field(default_factory=dict)
    """Its SLI values; only numbers are aggregated."""
    invalidated: bool = False
    """Invalidated evaluations are never compared with."""
    id: str = ""
    """A name to report it by (a TaskExecution's name, say); may be empty."""


_INCLUDED: dict[str, frozenset[str]] = {
    "pass": frozenset({"pass"}),
    "pass_or_warn": frozenset({"pass", "warning"}),
    "all": frozenset({"pass", "warning", "fail"}),
}


def select_history(
    history: Sequence[EarlierEvaluation], comparison: Comparison
) -> list[tuple[int, EarlierEvaluation]]:
    """The earlier evaluations to compare with, each with its position in `history` (which is
    newest first): not invalidated, with an overall result `include_result_with_score` admits,
    then the newest `comparison.results_to_compare` of those."""
    admitted = _INCLUDED[comparison.include_result_with_score]
    chosen = [
        (position, evaluation)
        for position, evaluation in enumerate(history)
        if not evaluation.invalidated and evaluation.result in admitted
    ]
    return chosen[: comparison.results_to_compare]


def evaluate(
    slo: SLO, values: Mapping[str, SLIValue], history: Sequence[EarlierEvaluation] = ()
) -> Report:
    """Score `values` against `slo`; `history` is the earlier evaluations, newest first (all of
    them: this function does the choosing). SLIs in `values` that no objective names are
    ignored; an objective whose SLI is absent from `values` has no value."""
    comparison = slo.comparison
    selected = select_history(history, comparison)
    chosen = [evaluation for _, evaluation in selected]
    objectives = [
        _judge(objective, values.get(objective.sli), chosen, comparison)
        for objective in slo.objectives
    ]
    scored = [o for o in objectives if o.status != "info"]
    earned = math.fsum(o.score for o in scored)
    maximum = float(sum(o.weight for o in scored))
    key_failed = [o.sli for o in scored if o.key_sli and o.status == "fail"]
    totals = Totals(
        earned=earned,
        maximum=maximum,
        pass_threshold=slo.total_score.pass_percent,
        warning_threshold=slo.total_score.warning_percent,
        passed=sum(o.status == "pass" for o in objectives),
        warnings=sum(o.status == "warning" for o in objectives),
        failed=sum(o.status == "fail" for o in objectives),
        informative=sum(o.status == "info" for o in objectives),
    )
    result, score, message = _verdict(totals, key_failed, bool(objectives))
    return Report(
        result=result,
        score=score,
        message=message,
        key_sli_failed=key_failed,
        totals=totals,
        comparison=ComparisonReport(
            compare_with=comparison.compare_with,
            include_result_with_score=comparison.include_result_with_score,
            number_of_comparison_results=comparison.results_to_compare,
            aggregate_function=comparison.aggregate_function,
            compared=[evaluation.id or f"#{position}" for position, evaluation in selected],
        ),
        objectives=objectives,
    )


def _verdict(
    totals: Totals, key_failed: list[str], any_objective: bool
) -> tuple[Result, float, str]:
    if not any_objective:
        return "fail", 0.0, "fail: the SLO has no objectives"
    if totals.maximum == 0:
        return "pass", 100.0, "pass: no objective is scored (all are informative)"
    score = 100.0 * (totals.earned / totals.maximum)
    shown = format_number(score)
    pass_at = totals.pass_threshold
    warn_at = totals.warning_threshold
    if key_failed:
        names = ", ".join(key_failed)
        return "fail", score, f"fail: key SLI {names} failed (score {shown})"
    if compare(score, ">=", pass_at):
        return "pass", score, f"pass: score {shown} >= {format_number(pass_at)}%"
    if warn_at is not None and compare(score, ">=", warn_at):
        return (
            "warning",
            score,
            f"warning: score {shown} < {format_number(pass_at)}% but >= {format_number(warn_at)}%",
        )
    lowest = pass_at if warn_at is None else min(pass_at, warn_at)
    return "fail", score, f"fail: score {shown} < {format_number(lowest)}%"


def _judge(
    objective: Objective,
    raw: SLIValue,
    earlier: Sequence[EarlierEvaluation],
    comparison: Comparison,
) -> ObjectiveReport:
    value, problem = _measured(raw)
    compared = aggregate(_earlier_values(objective.sli, earlier), comparison.aggregate_function)
    pass_sets = _targets(objective.pass_, value, compared)
    warning_sets = _targets(objective.warning, value, compared)
    shown = format_number(value)
    status: Status
    score = 0.0
    if not objective.pass_:
        status = "info"
        message = "informative only (no pass criteria): " + (
            shown if value is not None else f"no value ({problem})"
        )
    elif value is None:
        status = "fail"
        message = f"fail: no value ({problem})"
    elif (met := _first_met(pass_sets)) is not None:
        status, score = "pass", float(objective.weight)
        message = f"pass: {shown} meets {_describe(met)}"
    elif (met := _first_met(warning_sets)) is not None:
        status, score = "warning", objective.weight / 2
        message = (
            f"warning: {shown} misses pass ({_missed(pass_sets)})"
            f" but meets warning ({_describe(met)})"
        )
    else:
        status = "fail"
        message = f"fail: {shown} misses pass ({_missed(pass_sets)})"
        if warning_sets:
            message += f" and warning ({_missed(warning_sets)})"
    return ObjectiveReport(
        sli=objective.sli,
        display_name=objective.display_name or objective.sli,
        value=value,
        compared_value=compared,
        targets=Targets(pass_=pass_sets, warning=warning_sets),
        status=status,
        score=score,
        weight=objective.weight,
        key_sli=objective.key_sli,
        message=message,
    )


def _measured(raw: SLIValue) -> tuple[float | None, str]:
    """The usable value, or None and why there is none."""
    if isinstance(raw, SLIError):
        return None, raw.message
    if raw is None:
        return None, "no value received"
    if not math.isfinite(raw):
        return None, f"the value is not a finite number ({raw})"
    return float(raw), ""


def _earlier_values(sli: str, earlier: Sequence[EarlierEvaluation]) -> list[float]:
    values = []
    for evaluation in earlier:
        value, _ = _measured(evaluation.values.get(sli))
        if value is not None:
            values.append(value)
    return values


def _targets(
    sets: Sequence[CriteriaSet], value: float | None, compared: float | None
) -> list[list[Target]]:
    result = []
    for criteria_set in sets:
        targets = []
        for text in criteria_set.criteria:
            criterion = parse_criterion(text)
            threshold = criterion.threshold(compared)
            met = value is not None and criterion.holds(value, threshold)
            targets.append(Target(criteria=text, threshold=threshold, met=met))
        result.append(targets)
    return result


def _first_met(sets: list[list[Target]]) -> list[Target] | None:
    return next((targets for targets in sets if all(t.met for t in targets)), None)


def _describe(targets: list[Target]) -> str:
    return " and ".join(_describe_target(target) for target in targets)


def _missed(sets: list[list[Target]]) -> str:
    """The criteria that were not met, set by set (every set has at least one)."""
    return " or ".join(_describe([t for t in targets if not t.met]) for targets in sets)


def _describe_target(target: Target) -> str:
    if target.threshold is None:
        return f"{target.criteria} [no earlier value]"
    if parse_criterion(target.criteria).relative:
        return f"{target.criteria} [{format_number(target.threshold)}]"
    return target.criteria


# --- Inputs of `slipway evaluate` (and of anything else holding plain JSON) ---------------------


class InvalidInputError(ValueError):
    """SLI values or a history that do not have the documented shape; the message says where."""


_VALUE_SHAPE = 'a number, null or {"error": "..."}'
_RESULTS: dict[str, Result] = {"pass": "pass", "warning": "warning", "fail": "fail"}


def parse_values(document: object) -> dict[str, SLIValue]:
    """SLI values from JSON: an object mapping each SLI name to a number, null (no value) or
    `{"error": "..."}` (fetching it failed). Raises InvalidInputError listing every problem."""
    if not isinstance(document, dict):
        raise InvalidInputError(f"SLI values must be a JSON object mapping names to {_VALUE_SHAPE}")
    problems: list[str] = []
    values = {str(name): _value(raw, str(name), problems) for name, raw in document.items()}
    if problems:
        raise InvalidInputError("invalid SLI values:\n" + "\n".join(problems))
    return values


def parse_history(document: object) -> list[EarlierEvaluation]:
    """Earlier evaluations from JSON: a list, newest first, of objects with
    - `result`: `pass`, `warning` or `fail` (required);
    - `invalidated`: true to leave it out of every comparison (optional, default false);
    - `id`: a name to report it by (optional);
    - `values`: SLI name -> number, null or `{"error": ...}` like the SLI values, or, instead,
      `objectives`: a list of `{"sli": ..., "value": ...}` — so a report (`slipway evaluate
      --output json`) is itself a valid entry. Other keys are ignored.
    Raises InvalidInputError listing every problem."""
    if not isinstance(document, list):
        raise InvalidInputError("a history must be a JSON list of evaluations, newest first")
    problems: list[str] = []
    history = [_earlier(entry, f"[{index}]", problems) for index, entry in enumerate(document)]
    if problems:
        raise InvalidInputError("invalid history:\n" + "\n".join(problems))
    return [evaluation for evaluation in history if evaluation is not None]


def _shown(raw: object) -> str:
    """A piece of the input as it looks in JSON."""
    return json.dumps(raw, default=repr)


def _value(raw: object, where: str, problems: list[str]) -> SLIValue:
    if raw is None:
        return None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, dict) and isinstance(raw.get("error"), str):
        return SLIError(raw["error"])
    problems.append(f"  {where}: {_shown(raw)} is not {_VALUE_SHAPE}")
    return None


def _earlier(entry: object, where: str, problems: list[str]) -> EarlierEvaluation | None:
    if not isinstance(entry, dict):
        problems.append(f"  {where}: an evaluation must be a JSON object")
        return None
    raw_result = entry.get("result")
    result = _RESULTS.get(raw_result) if isinstance(raw_result, str) else None
    if result is None:
        problems.append(f"  {where}.result: {_shown(raw_result)} is not one of pass, warning, fail")
    invalidated = entry.get("invalidated", False)
    if not isinstance(invalidated, bool):
        problems.append(f"  {where}.invalidated: {_shown(invalidated)} is not true or false")
    name = entry.get("id", "")
    if not isinstance(name, str):
        problems.append(f"  {where}.id: {_shown(name)} is not a string")
    values = _earlier_values_of(entry, where, problems)
    if result is None or not isinstance(invalidated, bool) or not isinstance(name, str):
        return None
    return EarlierEvaluation(result=result, values=values, invalidated=invalidated, id=name)


def _earlier_values_of(
    entry: dict[str, object], where: str, problems: list[str]
) -> dict[str, SLIValue]:
    if "values" in entry:
        raw_values = entry["values"]
        if not isinstance(raw_values, dict):
            problems.append(f"  {where}.values: must be an object mapping names to {_VALUE_SHAPE}")
            return {}
        return {
            str(name): _value(raw, f"{where}.values.{name}", problems)
            for name, raw in raw_values.items()
        }
    objectives = entry.get("objectives", [])
    if not isinstance(objectives, list):
        problems.append(f"  {where}.objectives: must be a list of {{sli, value}} objects")
        return {}
    values: dict[str, SLIValue] = {}
    for index, objective in enumerate(objectives):
        here = f"{where}.objectives[{index}]"
        if not isinstance(objective, dict) or not isinstance(objective.get("sli"), str):
            problems.append(f"  {here}: must be an object with a string `sli`")
            continue
        values.setdefault(
            objective["sli"], _value(objective.get("value"), f"{here}.value", problems)
        )
    return values
