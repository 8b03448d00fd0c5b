"""Does a run's data fit its sequence's `inputs`? One answer for the gateway (422) and the
operator (a run finished `Invalid`), so both say the same thing.

The check is JSON Schema draft 2020-12 (the `jsonschema` library) with its format checker,
on the schema the `inputs` write, with one change: a file input (`contentMediaType`) accepts
an http(s) URL or the object the gateway puts there for an upload (`{url, ...}`). Each
problem names its field and says what is wrong in plain words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from slipway.api.inputs import Input, Inputs

#: What a file input holds in the run's data: a URL, or the gateway's record of an upload.
FILE_VALUE: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": "^https?://"},
        {
            "type": "object",
            "required": ["url"],
            "properties": {"url": {"type": "string", "pattern": "^https?://"}},
        },
    ]
}

_TYPE_WORDS = {
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "yes or no (true or false)",
}


@dataclass(frozen=True)
class FieldProblem:
    """One input that does not fit: its name (`""` for the data as a whole) and why."""

    field: str
    message: str


def json_schema(inputs: Inputs) -> dict[str, Any]:
    """The JSON Schema the data is checked against."""
    properties: dict[str, Any] = {}
    for name, spec in inputs.properties.items():
        if spec.is_file:
            properties[name] = FILE_VALUE
            continue
        schema = spec.model_dump(
            mode="json", by_alias=True, exclude_none=True, exclude={"title", "description"}
        )
        schema.pop("examples", None)
        schema.pop("default", None)
        properties[name] = schema
    return {"type": "object", "properties": properties, "required": list(inputs.required)}


def check_inputs(inputs: Inputs | None, data: Any) -> list[FieldProblem]:
    """Every way `data` does not fit `inputs`, one per field (first problem of each), in the
    order of the inputs; [] when it fits or there are no inputs."""
    if inputs is None:
        return []
    if not isinstance(data, dict):
        return [FieldProblem("", "the data must be a JSON object")]
    validator = Draft202012Validator(
        json_schema(inputs), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    found = {name: "is required" for name in inputs.required if name not in data}
    for error in sorted(validator.iter_errors(data), key=lambda e: list(e.path)):
        if error.validator == "required" and not error.path:
            continue  # named above, one entry per missing input
        field, message = _explain(error, inputs)
        found.setdefault(field, message)
    order = list(inputs.properties)
    return [
        FieldProblem(f, m) for f, m in sorted(found.items(), key=lambda fm: _position(order, fm[0]))
    ]


def problems_message(problems: list[FieldProblem]) -> str:
    """One line for a person, naming each field: `number: is required; image: …`."""
    parts = [f"{p.field}: {p.message}" if p.field else p.message for p in problems]
    return "the data does not fit the sequence's inputs: " + "; ".join(parts)


def _position(order: list[str], field: str) -> int:
    return order.index(field) if field in order else len(order)


def _explain(error: ValidationError, inputs: Inputs) -> tuple[str, str]:
    """The field an error is about and a plain sentence about it."""
    if not error.path:
        if error.validator == "type":
            return "", "the data must be a JSON object"
        return "", error.message
    field = str(error.path[0])
    spec = inputs.properties.get(field)
    if spec is None:
        return field, error.message
    return field, _sentence(error, spec)


def _sentence(error: ValidationError, spec: Input) -> str:
    kind = error.validator
    value = error.validator_value
    example = f" (for example {spec.examples[0]})" if spec.examples else ""
    if spec.is_file:
        return "must be a file upload or an http(s) URL of one"
    if kind == "type":
        return f"must be {_TYPE_WORDS.get(str(value), str(value))}"
    if kind == "enum" and isinstance(value, list):
        return "must be one of: " + ", ".join(str(v) for v in value)
    if kind == "pattern":
        return f"is not in the expected form{example}"
    if kind == "format":
        return f"is not a valid {value}{example}"
    if kind == "minimum":
        return f"must be at least {value:g}"
    if kind == "maximum":
        return f"must be at most {value:g}"
    if kind == "minLength":
        return "must not be empty" if value == 1 else f"must have at least {value} characters"
    if kind == "maxLength":
        return f"must have at most {value} characters"
    return str(error.message)
