"""A sequence's `inputs`: the model's rules, and the check of a run's data against it (the
same for the gateway's 422 and a run finished `Invalid`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from slipway.api.common import Phase, Reason, Result
from slipway.api.inputs import Inputs
from slipway.api.sequencerun import SequenceRunSpec, SequenceRunStatus
from slipway.api.shipyard import ShipyardSpec
from slipway.engine.inputs import FieldProblem, check_inputs, problems_message
from slipway.engine.runs import RunView, decide_run

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def seed() -> ShipyardSpec:
    text = (ROOT / "manifests" / "examples" / "shipyard-osint.yaml").read_text()
    return ShipyardSpec.model_validate(yaml.safe_load(text)["spec"])


def phone_inputs() -> Inputs:
    sequence = seed().sequence("dev", "sequence-one")
    assert sequence is not None
    assert sequence.inputs is not None
    return sequence.inputs


def test_the_seed_sequences_have_titles_descriptions_and_inputs() -> None:
    spec = seed()
    for name in ("sequence-one", "sequence-two"):
        sequence = spec.sequence("dev", name)
        assert sequence is not None
        assert sequence.title
        assert sequence.description
        assert sequence.inputs is not None
        assert sequence.inputs.required
    photo = spec.sequence("dev", "sequence-two")
    assert photo is not None
    assert photo.inputs is not None
    assert list(photo.inputs.files()) == ["image"]


def test_fitting_data_has_no_problem() -> None:
    assert check_inputs(phone_inputs(), {"number": "+44 20 7946 0958"}) == []
    assert check_inputs(None, {"anything": 1}) == []


def test_each_failing_field_is_named_in_plain_words() -> None:
    inputs = Inputs.model_validate(
        {
            "required": ["number", "count"],
            "properties": {
                "number": {"type": "string", "pattern": "^[0-9]+$", "examples": ["123"]},
                "count": {"type": "integer", "minimum": 1, "maximum": 5},
                "colour": {"type": "string", "enum": ["red", "blue"]},
                "mail": {"type": "string", "format": "email"},
                "photo": {"type": "string", "contentMediaType": "image/*"},
            },
        }
    )
    problems = check_inputs(
        inputs, {"number": "12a", "colour": "green", "mail": "nope", "photo": 3}
    )
    assert problems == [
        FieldProblem("number", "is not in the expected form (for example 123)"),
        FieldProblem("count", "is required"),
        FieldProblem("colour", "must be one of: red, blue"),
        FieldProblem("mail", "is not a valid email"),
        FieldProblem("photo", "must be a file upload or an http(s) URL of one"),
    ]
    assert check_inputs(inputs, {"number": "1", "count": 9})[0] == FieldProblem(
        "count", "must be at most 5"
    )
    assert check_inputs(inputs, {"number": "1", "count": "two"})[0] == FieldProblem(
        "count", "must be a whole number"
    )
    message = problems_message(check_inputs(inputs, {"number": "x"}))
    assert message.startswith("the data does not fit the sequence's inputs: ")
    assert "number: is not in the expected form" in message
    assert "count: is required" in message


def test_a_file_input_takes_a_url_or_the_gateways_upload_record() -> None:
    inputs = Inputs.model_validate(
        {"required": ["photo"], "properties": {"photo": {"contentMediaType": "image/*"}}}
    )
    assert check_inputs(inputs, {"photo": "https://example.org/a.jpg"}) == []
    record = {"url": "http://gw/v1/x", "token": "t", "sha256": "0" * 64}
    assert check_inputs(inputs, {"photo": record}) == []
    assert check_inputs(inputs, {"photo": {"upload": "0" * 64}}) != []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"required": ["x"], "properties": {}}, "required names inputs"),
        ({"properties": {"a b": {}}}, "input names"),
        ({"properties": {"x": {"pattern": "("}}}, "not a regular expression"),
        ({"properties": {"x": {"type": "number", "contentMediaType": "image/*"}}}, "type string"),
        ({"properties": {"x": {"minimum": 5, "maximum": 1}}}, "minimum is larger"),
        ({"properties": {"x": {"type": "object"}}}, "string"),
        ({"properties": {"x": {"contentMediaType": "image"}}}, "pattern"),
        ({"properties": {"x": {"oneOf": []}}}, "Extra inputs"),
    ],
)
def test_bad_inputs_are_refused_with_a_reason(body: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        Inputs.model_validate(body)


def _run(data: dict[str, Any]) -> RunView:
    return RunView(
        namespace="ns",
        name="r",
        uid="u",
        created=NOW,
        labels={},
        annotations={},
        spec=SequenceRunSpec(shipyard="osint", stage="dev", sequence="sequence-one", data=data),
        status=SequenceRunStatus(),
    )


def test_a_run_whose_data_does_not_fit_finishes_invalid_with_the_gateways_message() -> None:
    decision = decide_run(_run({"number": "not a number!"}), seed(), {}, NOW)
    assert decision.status is not None
    status = decision.status
    assert status["phase"] == Phase.FINISHED
    assert status["result"] == Result.FAIL
    assert status["reason"] == Reason.INVALID
    expected = problems_message(check_inputs(phone_inputs(), {"number": "not a number!"}))
    assert status["message"] == expected
    assert "number:" in expected


def test_a_run_whose_data_fits_starts() -> None:
    decision = decide_run(_run({"number": "+44 20 7946 0958"}), seed(), {}, NOW)
    assert decision.status is not None
    assert decision.status["phase"] == Phase.STARTED
