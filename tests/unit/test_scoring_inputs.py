"""The JSON inputs of an evaluation: SLI values and history, and a report fed back as history."""

from __future__ import annotations

import json
from typing import Any

import pytest

from slipway.api.slo import parse_slo
from slipway.engine.report import render_json
from slipway.engine.scoring import (
    EarlierEvaluation,
    InvalidInputError,
    SLIError,
    evaluate,
    parse_history,
    parse_values,
)


def test_parse_values_accepts_numbers_null_and_errors() -> None:
    """Values map names to numbers (ints become floats), null, or {"error": ...}."""
    parsed = parse_values({"a": 1, "b": 2.5, "c": None, "d": {"error": "timeout"}, "e": -3})
    assert parsed == {"a": 1.0, "b": 2.5, "c": None, "d": SLIError("timeout"), "e": -3.0}
    assert isinstance(parsed["a"], float)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([1, 2], "SLI values must be a JSON object"),
        (None, "SLI values must be a JSON object"),
        ({"a": "12"}, 'a: "12" is not a number, null or {"error": "..."}'),
        ({"a": True}, "a: true is not a number"),
        ({"a": [1]}, "a: [1] is not a number"),
        ({"a": {"err": "x"}}, 'a: {"err": "x"} is not a number'),
        ({"a": {"error": 5}}, 'a: {"error": 5} is not a number'),
    ],
)
def test_parse_values_rejects_other_shapes(document: object, expected: str) -> None:
    """Anything else is invalid input, with the SLI named and the value shown as JSON."""
    with pytest.raises(InvalidInputError) as caught:
        parse_values(document)
    assert expected in str(caught.value)


def test_parse_values_lists_every_problem() -> None:
    """All invalid values are reported at once, one per line."""
    with pytest.raises(InvalidInputError) as caught:
        parse_values({"a": "x", "ok": 1, "b": False})
    assert str(caught.value).splitlines() == [
        "invalid SLI values:",
        '  a: "x" is not a number, null or {"error": "..."}',
        '  b: false is not a number, null or {"error": "..."}',
    ]


def test_parse_history_documented_shape() -> None:
    """Entries are {result, values, invalidated?, id?}, newest first, kept in order."""
    history = parse_history(
        [
            {"result": "pass", "values": {"x": 1, "y": None}},
            {"result": "warning", "values": {"x": {"error": "e"}}, "invalidated": True, "id": "r1"},
            {"result": "fail"},
        ]
    )
    assert history == [
        EarlierEvaluation(result="pass", values={"x": 1.0, "y": None}),
        EarlierEvaluation(result="warning", values={"x": SLIError("e")}, invalidated=True, id="r1"),
        EarlierEvaluation(result="fail", values={}),
    ]


def test_parse_history_takes_values_from_a_report() -> None:
    """An entry without `values` takes them from `objectives[].sli/value` (a report's shape)."""
    (entry,) = parse_history(
        [
            {
                "result": "pass",
                "score": 100,
                "objectives": [
                    {"sli": "x", "value": 3, "status": "pass"},
                    {"sli": "y", "value": None},
                    {"sli": "x", "value": 99},
                ],
            }
        ]
    )
    assert entry == EarlierEvaluation(result="pass", values={"x": 3.0, "y": None})


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"result": "pass"}, "a history must be a JSON list"),
        ([5], "[0]: an evaluation must be a JSON object"),
        ([{}], "[0].result: null is not one of pass, warning, fail"),
        ([{"result": "failed"}], '[0].result: "failed" is not one of pass, warning, fail'),
        ([{"result": ["pass"]}], '[0].result: ["pass"] is not one of'),
        ([{"result": "pass", "invalidated": "yes"}], '[0].invalidated: "yes" is not true or false'),
        ([{"result": "pass", "id": 3}], "[0].id: 3 is not a string"),
        ([{"result": "pass", "values": [1]}], "[0].values: must be an object"),
        ([{"result": "pass", "values": {"x": "1"}}], '[0].values.x: "1" is not a number'),
        ([{"result": "pass", "objectives": {}}], "[0].objectives: must be a list"),
        ([{"result": "pass", "objectives": [{"value": 1}]}], "[0].objectives[0]: must be an"),
        ([{"result": "pass"}, {"result": "pass", "objectives": [{"sli": "x", "value": "1"}]}],
         '[1].objectives[0].value: "1" is not a number'),
    ],
)  # fmt: skip
def test_parse_history_rejects_other_shapes(document: object, expected: str) -> None:
    """A malformed history is invalid input naming the entry and key."""
    with pytest.raises(InvalidInputError) as caught:
        parse_history(document)
    assert expected in str(caught.value)


def test_a_report_fed_back_is_history() -> None:
    """The JSON of one report, as an entry of the next history, supplies the compared values."""
    document: dict[str, Any] = {
        "comparison": {"compare_with": "single_result"},
        "objectives": [{"sli": "latency", "pass": [{"criteria": ["<=+10%"]}]}],
        "total_score": {"pass": "90%"},
    }
    slo = parse_slo(document)
    first = evaluate(slo, {"latency": 200})
    history = parse_history([json.loads(render_json(first))])
    second = evaluate(slo, {"latency": 230}, history)
    assert (second.objectives[0].compared_value, second.result) == (200.0, "fail")
    third = evaluate(slo, {"latency": 215}, history)
    assert third.result == "pass"
