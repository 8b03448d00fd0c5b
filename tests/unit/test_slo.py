"""The SLO document model: Keptn v1 `slo.yaml` files validate unchanged, mistakes are named."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from slipway.api.slo import SLO, SLODocumentError, parse_slo

KEPTN_SLO = """
---
spec_version: '1.0'
comparison:
  compare_with: "several_results"
  include_result_with_score: "pass"
  number_of_comparison_results: 2
  aggregate_function: avg
filter:
  handler: "ItemsController"
  id: 42
objectives:
  - sli: "response_time_p95"
    displayName: "Response time P95"
    key_sli: false
    pass:
      - criteria:
          - "<=+10%"
          - "<600"
    warning:
      - criteria:
          - "<=800"
    weight: 1
  - sli: "throughput"
  - sli: "error_rate"
    weight: 2
    key_sli: true
    pass:
      - criteria: ["<=1"]
    warning:
      - criteria: ["<=5"]
total_score:
  pass: "90%"
  warning: "75%"
"""


def minimal(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "objectives": [{"sli": "x", "pass": [{"criteria": ["<1"]}]}],
        "total_score": {"pass": "90%"},
    }
    document.update(overrides)
    return document


def test_keptn_file_validates_unchanged() -> None:
    """A Keptn v1 slo.yaml (snake_case keys, displayName, quoted criteria) parses as it is."""
    slo = parse_slo(yaml.safe_load(KEPTN_SLO))
    assert slo.spec_version == "1.0"
    assert slo.filter == {"handler": "ItemsController", "id": "42"}
    assert slo.comparison.compare_with == "several_results"
    assert slo.comparison.include_result_with_score == "pass"
    assert slo.comparison.results_to_compare == 2
    latency, throughput, errors = slo.objectives
    assert latency.display_name == "Response time P95"
    assert [s.criteria for s in latency.pass_] == [["<=+10%", "<600"]]
    assert [s.criteria for s in latency.warning] == [["<=800"]]
    assert (throughput.pass_, throughput.weight) == ([], 1)
    assert (errors.key_sli, errors.weight) == (True, 2)
    assert slo.total_score.pass_percent == 90.0
    assert slo.total_score.warning_percent == 75.0


def test_dump_by_alias_gives_keptn_keys_back() -> None:
    """Serialising by alias writes Keptn's own keys, so the document round-trips."""
    slo = parse_slo(yaml.safe_load(KEPTN_SLO))
    dumped = slo.model_dump(by_alias=True)
    assert set(dumped) == {"spec_version", "filter", "comparison", "objectives", "total_score"}
    assert {"displayName", "pass", "warning", "weight", "key_sli", "sli"} == set(
        dumped["objectives"][0]
    )
    assert dumped["total_score"] == {"pass": "90%", "warning": "75%"}
    assert parse_slo(dumped) == slo


def test_python_field_names_are_accepted() -> None:
    """Code may build the model with field names (`pass_`, `display_name`) as well."""
    slo = SLO.model_validate(
        {
            "objectives": [{"sli": "x", "display_name": "X", "pass_": [{"criteria": ["<1"]}]}],
            "total_score": {"pass_": "50"},
        }
    )
    assert slo.objectives[0].display_name == "X"
    assert slo.total_score.pass_percent == 50.0


@pytest.mark.parametrize(
    ("comparison", "compare_with", "include", "count", "function"),
    [
        (None, "single_result", "all", 1, "avg"),
        ({}, "several_results", "all", 3, "avg"),
        ({"compare_with": "single_result", "number_of_comparison_results": 5}, "single_result",
         "all", 1, "avg"),
        ({"compare_with": "several_results"}, "several_results", "all", 3, "avg"),
        ({"compare_with": "several_results", "number_of_comparison_results": 0},
         "several_results", "all", 3, "avg"),
        ({"number_of_comparison_results": 5, "aggregate_function": "p95",
          "include_result_with_score": "pass_or_warn"},
         "several_results", "pass_or_warn", 5, "p95"),
    ],
)  # fmt: skip
def test_comparison_defaults_follow_keptn_code(
    comparison: dict[str, Any] | None, compare_with: str, include: str, count: int, function: str
) -> None:
    """Without the block: one earlier result; with it, several (3 unless given, 0 means 3)."""
    document = minimal() if comparison is None else minimal(comparison=comparison)
    resolved = parse_slo(document).comparison
    assert resolved.compare_with == compare_with
    assert resolved.include_result_with_score == include
    assert resolved.results_to_compare == count
    assert resolved.aggregate_function == function


@pytest.mark.parametrize(
    ("objective", "weight", "key_sli", "display_name", "scored"),
    [
        ({"sli": "x"}, 1, False, "", False),
        ({"sli": "x", "weight": 0}, 1, False, "", False),
        ({"sli": "x", "weight": None, "pass": None, "warning": None}, 1, False, "", False),
        ({"sli": "x", "weight": 5, "key_sli": True, "displayName": "X",
          "pass": [{"criteria": ["<1"]}]}, 5, True, "X", True),
    ],
)  # fmt: skip
def test_objective_defaults(
    objective: dict[str, Any], weight: int, key_sli: bool, display_name: str, scored: bool
) -> None:
    """Weight defaults to 1 (0 and null too), key_sli to false, an empty/null pass to none."""
    parsed = parse_slo(minimal(objectives=[objective])).objectives[0]
    assert parsed.weight == weight
    assert parsed.key_sli is key_sli
    assert parsed.display_name == display_name
    assert bool(parsed.pass_) is scored


@pytest.mark.parametrize(
    ("total_score", "pass_percent", "warning_percent"),
    [
        ({"pass": "90%"}, 90.0, None),
        ({"pass": "90"}, 90.0, None),
        ({"pass": 90}, 90.0, None),
        ({"pass": 92.5, "warning": 75}, 92.5, 75.0),
        ({"pass": " 90 % ", "warning": ""}, 90.0, None),
        ({"pass": "0%", "warning": "0%"}, 0.0, 0.0),
    ],
)
def test_total_score_thresholds(
    total_score: dict[str, Any], pass_percent: float, warning_percent: float | None
) -> None:
    """Thresholds are numbers with or without `%`, given as text or as YAML numbers."""
    parsed = parse_slo(minimal(total_score=total_score)).total_score
    assert parsed.pass_percent == pass_percent
    assert parsed.warning_percent == warning_percent


@pytest.mark.parametrize(
    "criterion",
    ["<600", "<=+10%", "<=-10%", ">=+5", ">-5", "=0", "<10%", "<= +10 %", " > 0.5 ", "<1e3",
     "<.5", "< = 3"],
)  # fmt: skip
def test_valid_criteria(criterion: str) -> None:
    """Every form of the grammar validates, blanks between its parts included."""
    parse_slo(minimal(objectives=[{"sli": "x", "pass": [{"criteria": [criterion]}]}]))


@pytest.mark.parametrize(
    "criterion",
    ["600", "<<5", "=>5", "==5", "<=x", "<=10%%", "", "<", "+10%", "<=1 0", "<inf", "<=+-5",
     "!=5"],
)  # fmt: skip
def test_invalid_criteria_are_named(criterion: str) -> None:
    """A criterion outside the grammar makes the document invalid, naming it and its path."""
    document = minimal(objectives=[{"sli": "x", "pass": [{"criteria": ["<1", criterion]}]}])
    with pytest.raises(SLODocumentError) as caught:
        parse_slo(document)
    assert f"objectives.0.pass.0.criteria.1: invalid criterion {criterion!r}" in str(caught.value)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"objectives": []}, "total_score: Field required"),
        ({"objectives": [], "total_score": {}}, "total_score.pass: Field required"),
        ({"objectives": [], "total_score": {"warning": "75%"}}, "total_score.pass: Field required"),
        (minimal(total_score={"pass": ""}), "total_score.pass: '' is not a percentage"),
        (minimal(total_score={"pass": "ninety"}), "total_score.pass: 'ninety' is not a percentage"),
        (minimal(total_score={"pass": "90%", "warning": "high"}),
         "total_score.warning: 'high' is not a percentage"),
        (minimal(total_score={"pass": True}), "total_score.pass: Input should be a valid string"),
        (minimal(comparison={"compare_with": "all_results"}), "comparison.compare_with"),
        (minimal(comparison={"aggregate_function": "max"}), "comparison.aggregate_function"),
        (minimal(comparison={"include_result_with_score": "fail"}),
         "comparison.include_result_with_score"),
        (minimal(comparison={"number_of_comparison_results": -1}),
         "comparison.number_of_comparison_results"),
        (minimal(objectives=[{"sli": "x", "weight": -1}]), "objectives.0.weight"),
        (minimal(objectives=[{"sli": "x", "weight": True}]), "objectives.0.weight"),
        (minimal(objectives=[{"sli": "x", "weight": "2"}]), "objectives.0.weight"),
        (minimal(objectives=[{"sli": "x", "key_sli": "yes"}]), "objectives.0.key_sli"),
        (minimal(comparison={"number_of_comparison_results": "3"}),
         "comparison.number_of_comparison_results"),
        (minimal(objectives=[{"sli": "x", "weigth": 2}]),
         "objectives.0.weigth: unknown key (not part of a Keptn v1 SLO document)"),
        (minimal(objectives=[{"sli": ""}]), "objectives.0.sli"),
        (minimal(objectives=[{"displayName": "x"}]), "objectives.0.sli: Field required"),
        (minimal(objectives=[{"sli": "x", "pass": [{"criteria": []}]}]),
         "objectives.0.pass.0.criteria"),
        (minimal(objectives=[{"sli": "x", "pass": ["<1"]}]), "objectives.0.pass.0"),
        (minimal(totalScore={"pass": "90%"}), "totalScore: unknown key"),
    ],
)  # fmt: skip
def test_invalid_documents_say_where(document: dict[str, Any], expected: str) -> None:
    """An invalid document raises SLODocumentError whose message names the key and the problem."""
    with pytest.raises(SLODocumentError) as caught:
        parse_slo(document)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("document", "expected"),
    [(None, "it is empty"), ([1, 2], "it is a list, not a mapping"), ("slo", "a str")],
)
def test_non_mapping_documents_are_invalid(document: object, expected: str) -> None:
    """An empty file or a YAML list/scalar is not an SLO document."""
    with pytest.raises(SLODocumentError, match=expected):
        parse_slo(document)


def test_objectives_may_be_empty_or_null() -> None:
    """No objectives is a valid document (it fails every evaluation, which scoring decides)."""
    assert parse_slo({"objectives": None, "total_score": {"pass": "90%"}}).objectives == []
    assert parse_slo({"total_score": {"pass": "90%"}}).objectives == []


def test_every_schema_property_is_described() -> None:
    """Every field has a description, so the CRD schema embedding the model documents it."""
    schema = SLO.model_json_schema(by_alias=True)
    missing = []
    for name, definition in [("SLO", schema), *schema["$defs"].items()]:
        for key, field in definition.get("properties", {}).items():
            if not field.get("description"):
                missing.append(f"{name}.{key}")
    assert missing == []
