"""The pydantic → structural schema conversion and the CRDs built from it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, Field

from slipway.api.common import Result
from slipway.api.crds import build_crd
from slipway.api.resources import RESOURCES, SEQUENCE_RUN, SHIPYARD
from slipway.api.schema import SchemaError, structural_schema

FORBIDDEN = {"$ref", "$defs", "anyOf", "allOf", "oneOf", "title", "default", "examples"}


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from nodes(sub, f"{path}.{name}")
    if "items" in schema:
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")


def crd_schema(resource: Any) -> dict[str, Any]:
    schema: dict[str, Any] = build_crd(resource)["spec"]["versions"][0]["schema"]
    return schema["openAPIV3Schema"]


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.kind)
def test_crd_schema_is_structural(resource: Any) -> None:
    """No $ref, unions, titles or defaults; every node has a type or keeps unknown fields."""
    for path, node in nodes(crd_schema(resource)):
        assert not FORBIDDEN & set(node), path
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert not ("properties" in node and "additionalProperties" in node), path


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.kind)
def test_every_spec_and_status_field_is_described(resource: Any) -> None:
    """Every property below spec and status carries a description for `kubectl explain`."""
    schema = crd_schema(resource)
    for part in ("spec", "status"):
        for path, node in nodes(schema["properties"][part], part):
            assert node.get("description") or path.endswith(("[]", "}")), path


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.kind)
def test_crd_names_and_subresources(resource: Any) -> None:
    """Each CRD is namespaced in slipway.dev/v1alpha1, in category slipway, with /status."""
    crd = build_crd(resource)
    assert crd["metadata"]["name"] == f"{resource.plural}.slipway.dev"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["categories"] == ["slipway"]
    assert crd["spec"]["names"]["shortNames"]
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}


def test_sequence_run_columns() -> None:
    """`kubectl get sequenceruns` shows shipyard, stage, sequence, phase, result, task, the
    score of the last evaluation (empty without one), and age."""
    (version,) = build_crd(SEQUENCE_RUN)["spec"]["versions"]
    default = [c["name"] for c in version["additionalPrinterColumns"] if "priority" not in c]
    assert default == ["Shipyard", "Stage", "Sequence", "Phase", "Result", "Task", "Score", "Age"]


def test_shipyard_ready_columns_read_the_ready_condition() -> None:
    """The READY and MESSAGE columns of shipyards come from the Ready condition."""
    (version,) = build_crd(SHIPYARD)["spec"]["versions"]
    paths = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert paths["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert paths["Message"] == '.status.conditions[?(@.type=="Ready")].message'


class _Inner(BaseModel):
    """An inner model."""

    model_config = {"use_attribute_docstrings": True}

    value: int = 3
    """A number."""


class _Outer(BaseModel):
    """An outer model."""

    model_config = {"use_attribute_docstrings": True}

    inner: _Inner | None = None
    """The field's own description wins over the model's."""

    results: dict[str, Result] = Field(default_factory=dict)
    """A map of results."""

    anything: dict[str, Any] = Field(default_factory=dict)
    """Free-form."""


def test_conversion_inlines_optional_models_and_maps() -> None:
    """Optional models are inlined with the field's description; maps and free-form data map
    to additionalProperties and x-kubernetes-preserve-unknown-fields; defaults are stated in
    the description only."""
    schema = structural_schema(_Outer)
    assert schema["properties"]["inner"] == {
        "description": "The field's own description wins over the model's.",
        "type": "object",
        "properties": {
            "value": {"description": "A number. Default: 3.", "type": "integer"},
        },
    }
    assert schema["properties"]["results"]["additionalProperties"]["enum"] == [
        "pass",
        "warning",
        "fail",
    ]
    assert schema["properties"]["anything"] == {
        "description": "Free-form.",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }


class _Union(BaseModel):
    value: int | str


def test_conversion_refuses_unions() -> None:
    """A union of two types has no structural form: generation fails instead of guessing."""
    with pytest.raises(SchemaError, match="union"):
        structural_schema(_Union)


class _Exclusive(BaseModel):
    value: int = Field(gt=0)


def test_conversion_refuses_unknown_keywords() -> None:
    """Keywords the API server does not know (exclusiveMinimum as a number) fail generation."""
    with pytest.raises(SchemaError, match="exclusiveMinimum"):
        structural_schema(_Exclusive)


def test_names_and_durations_are_checked_by_cel_with_a_readable_message() -> None:
    """Name and duration patterns become CEL rules whose message quotes the value and says
    how to write it, instead of an OpenAPI pattern that only prints the regex."""
    task = crd_schema(SHIPYARD)["properties"]["spec"]["properties"]["stages"]["items"]
    task = task["properties"]["sequences"]["items"]["properties"]["tasks"]["items"]
    name, timeout = task["properties"]["name"], task["properties"]["timeout"]
    assert "pattern" not in name
    assert name["x-kubernetes-validations"][0]["rule"] == (
        "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')"
    )
    assert timeout["x-kubernetes-validations"][0]["messageExpression"].startswith(
        '"\'" + self + "\' is not a duration: write a number and a unit'
    )


def test_explained_pattern_escapes_backslashes_for_cel() -> None:
    """A regex with a backslash is written into the CEL string with the backslash escaped."""
    provider = crd_schema(RESOURCES[1])["properties"]["spec"]["properties"]["cloudEvent"]
    (rule,) = provider["properties"]["url"]["x-kubernetes-validations"]
    assert rule["rule"] == "self.matches('^https?://[^\\\\s]+$')"


def test_lists_of_named_entries_are_keyed_by_name() -> None:
    """Stages, sequences and tasks are list maps keyed by name: duplicates are rejected."""
    stages = crd_schema(SHIPYARD)["properties"]["spec"]["properties"]["stages"]
    sequences = stages["items"]["properties"]["sequences"]
    tasks = sequences["items"]["properties"]["tasks"]
    for node in (stages, sequences, tasks):
        assert node["x-kubernetes-list-type"] == "map"
        assert node["x-kubernetes-list-map-keys"] == ["name"]
