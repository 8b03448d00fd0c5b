"""Property-based tests (hypothesis) of the JSON Schema input validation
(`slipway.engine.inputs.check_inputs`, the gateway's 422 and a run finished `Invalid`): for
any `inputs` a Shipyard may declare, data that fits has no problem, each field broken is
named and no other, and any JSON at all gets an answer, never an exception.

Pure and fast: no cluster (about 10 s for the module on a quiet machine).
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from slipway.api.inputs import INPUT_NAME_PATTERN, Inputs
from slipway.engine.inputs import FieldProblem, check_inputs, json_schema

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Patterns a Shipyard might write, each anchored (hypothesis generates strings matching them).
PATTERNS = ["^[0-9]+$", "^[a-z]{2,5}$", r"^\+?[0-9 ]{3,15}$", "^[A-Z][a-z]*$"]
names = st.from_regex(INPUT_NAME_PATTERN.replace("{0,62}", "{0,8}"), fullmatch=True)
bounds = st.integers(min_value=-1000, max_value=1000)


@st.composite
def string_spec(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["plain", "lengths", "pattern", "enum", "date", "email", "file"]))
    if kind == "lengths":
        low = draw(st.integers(min_value=0, max_value=10))
        return {"type": "string", "minLength": low, "maxLength": low + draw(st.integers(0, 10))}
    if kind == "pattern":
        return {"type": "string", "pattern": draw(st.sampled_from(PATTERNS))}
    if kind == "enum":
        return {
            "type": "string",
            "enum": draw(st.lists(st.text(max_size=6), min_size=1, max_size=5)),
        }
    if kind in ("date", "email"):
        return {"type": "string", "format": kind}
    if kind == "file":
        return {"contentMediaType": draw(st.sampled_from(["image/*", "image/jpeg", "*/*"]))}
    return {"type": "string"}


@st.composite
def number_spec(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": draw(st.sampled_from(["number", "integer"]))}
    low, high = sorted((draw(bounds), draw(bounds)))
    if draw(st.booleans()):
        spec["minimum"] = low
    if draw(st.booleans()):
        spec["maximum"] = high
    return spec


specs = st.one_of(string_spec(), number_spec(), st.just({"type": "boolean"}))


@st.composite
def inputs_documents(draw: st.DrawFn) -> dict[str, Any]:
    """An `inputs` document as a Shipyard writes it (camelCase, as the API server keeps it)."""
    properties = draw(st.dictionaries(names, specs, min_size=1, max_size=5))
    required = draw(st.lists(st.sampled_from(sorted(properties)), unique=True))
    return {"properties": properties, "required": required}


def fitting(spec: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that fit `spec`."""
    if "contentMediaType" in spec:
        url = st.builds(
            lambda s, p: f"{s}://tools.example/{p}", st.sampled_from(["http", "https"]), names
        )
        return url | url.map(lambda u: {"url": u, "sha256": "0" * 64})
    if "enum" in spec:
        return st.sampled_from(spec["enum"])
    kind = spec["type"]
    if kind == "boolean":
        return st.booleans()
    if kind in ("number", "integer"):
        low, high = spec.get("minimum"), spec.get("maximum")
        if kind == "integer":
            return st.integers(
                None if low is None else math.ceil(low), None if high is None else math.floor(high)
            )
        return st.floats(low, high, allow_nan=False, allow_infinity=False)
    if "pattern" in spec:
        return st.from_regex(spec["pattern"], fullmatch=True)
    if spec.get("format") == "date":
        return st.dates().map(lambda d: d.isoformat())
    if spec.get("format") == "email":
        return st.builds(lambda a, b: f"{a}@{b}.example", names, names)
    low = spec.get("minLength", 0)
    return st.text(min_size=low, max_size=spec.get("maxLength", low + 10))


def unfitting(spec: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of the wrong JSON type for `spec` (they can never fit it)."""
    if "contentMediaType" in spec or spec.get("type") == "string":
        return st.integers() | st.booleans() | st.lists(st.integers(), max_size=2)
    return st.text(max_size=5) | st.none()


@st.composite
def fitting_data(draw: st.DrawFn, document: dict[str, Any]) -> dict[str, Any]:
    """Data that fits `document`: every required input, some optional ones, and keys the
    inputs do not name (allowed: tools may read more)."""
    data: dict[str, Any] = {}
    for name, spec in document["properties"].items():
        if name in document["required"] or draw(st.booleans()):
            data[name] = draw(fitting(spec))
    extra = draw(st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
    return {**{k: v for k, v in extra.items() if k not in document["properties"]}, **data}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


def validator(inputs: Inputs) -> Draft202012Validator:
    return Draft202012Validator(
        json_schema(inputs), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


# ------------------------------------------------------------------ properties
@SETTINGS
@given(document=inputs_documents())
def test_the_schema_checked_is_valid_json_schema_2020_12(document: dict[str, Any]) -> None:
    """Whatever `inputs` a Shipyard declares, the schema the data is checked against is a
    valid draft 2020-12 schema that requires exactly the required inputs."""
    inputs = Inputs.model_validate(document)
    schema = json_schema(inputs)
    Draft202012Validator.check_schema(schema)
    assert schema["required"] == document["required"]
    assert set(schema["properties"]) == set(document["properties"])


@SETTINGS
@given(data=st.data(), document=inputs_documents())
def test_data_that_fits_has_no_problem(data: st.DataObject, document: dict[str, Any]) -> None:
    """Data with each input's value of its kind and within its rules, optional inputs left
    out and unknown keys added, has no problem."""
    inputs = Inputs.model_validate(document)
    value = data.draw(fitting_data(document))
    assert check_inputs(inputs, value) == []


@SETTINGS
@given(data=st.data(), document=inputs_documents())
def test_each_broken_or_missing_field_is_named_and_no_other(
    data: st.DataObject, document: dict[str, Any]
) -> None:
    """Break some inputs (a value of the wrong kind) and leave out some required ones: the
    problems name exactly those fields, once each, in the order of the inputs; a missing one
    `is required`; every message is a sentence for a person."""
    inputs = Inputs.model_validate(document)
    value = data.draw(fitting_data(document))
    names_given = sorted(value.keys() & document["properties"].keys())
    broken = data.draw(
        st.lists(st.sampled_from(names_given), unique=True) if names_given else st.just([])
    )
    for name in broken:
        value[name] = data.draw(unfitting(document["properties"][name]))
    missing = data.draw(
        st.lists(st.sampled_from(document["required"]), unique=True)
        if document["required"]
        else st.just([])
    )
    for name in missing:
        value.pop(name, None)
    problems = check_inputs(inputs, value)
    fields = [p.field for p in problems]
    assert set(fields) == set(broken) | set(missing)
    assert len(fields) == len(set(fields))
    order = list(inputs.properties)
    assert fields == sorted(fields, key=order.index)
    for problem in problems:
        assert problem.message
        if problem.field in missing:
            assert problem.message == "is required"


@SETTINGS
@given(document=inputs_documents(), value=json_values)
def test_any_json_gets_an_answer_that_agrees_with_the_validator(
    document: dict[str, Any], value: Any
) -> None:
    """Any JSON value at all is checked without an exception; there is no problem exactly
    when a draft 2020-12 validator accepts it; problems are named by input (or "" for the data
    as a whole, which must be an object)."""
    inputs = Inputs.model_validate(document)
    problems = check_inputs(inputs, value)
    assert (problems == []) == validator(inputs).is_valid(value)
    if not isinstance(value, dict):
        assert problems == [FieldProblem("", "the data must be a JSON object")]
    else:
        assert {p.field for p in problems} <= set(document["properties"])
