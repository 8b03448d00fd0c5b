"""Turn a pydantic model's JSON schema into a Kubernetes *structural* OpenAPI v3 schema.

Pydantic writes JSON Schema 2020-12: `$ref`s into `$defs`, `anyOf [X, null]` for optional
fields, `title`s, `default`s, `additionalProperties: true` for free-form maps. The API server
wants every node inlined and typed, no `anyOf` of types, `x-kubernetes-*` extensions for
free-form data, and only the keywords of its `JSONSchemaProps`. This module converts one to
the other and fails loudly on anything it does not know how to convert, so a model change
can never produce a CRD the API server would reject or misread.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from slipway.api.common import EXPLAINED_PATTERN

#: Keywords copied unchanged into the structural schema.
_COPIED = (
    "type",
    "format",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minimum",
    "maximum",
    "required",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
)
#: Keywords handled below or dropped on purpose.
_HANDLED = frozenset(
    {"$ref", "anyOf", "allOf", "properties", "items", "additionalProperties", "const"}
    | {EXPLAINED_PATTERN}
    | {"title", "default", "description", "examples", "$defs"}
)


class SchemaError(ValueError):
    """The model uses a construct that has no structural-schema equivalent."""


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of `model` as the API server sees it (camelCase)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    return _convert(raw, defs, path=model.__name__, seen=())


def _resolve(
    node: dict[str, Any], defs: dict[str, Any], seen: tuple[str, ...]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Inline `$ref`, single-element `allOf` and `anyOf [X, null]`; the outer node's own
    keywords (its description above all) win over the referenced model's."""
    while True:
        if "$ref" in node:
            name = node["$ref"].removeprefix("#/$defs/")
            if name in seen:
                raise SchemaError(f"recursive model {name} cannot be inlined")
            outer = {k: v for k, v in node.items() if k != "$ref"}
            node = {**defs[name], **outer}
            seen = (*seen, name)
        elif "allOf" in node and len(node["allOf"]) == 1:
            outer = {k: v for k, v in node.items() if k != "allOf"}
            node = {**node["allOf"][0], **outer}
        elif "anyOf" in node:
            # Optional[X] is anyOf [X, null]: null is simply absent on the wire (the API
            # server prunes nulls of non-nullable fields), so X is the field's schema.
            options = [o for o in node["anyOf"] if o != {"type": "null"}]
            if len(options) != 1:
                raise SchemaError(f"union of {json.dumps(options)} has no structural form")
            outer = {k: v for k, v in node.items() if k != "anyOf"}
            node = {**options[0], **outer}
            if "description" in outer:
                node["description"] = outer["description"]
        else:
            return node, seen


def _convert(
    node: dict[str, Any], defs: dict[str, Any], path: str, seen: tuple[str, ...]
) -> dict[str, Any]:
    node, seen = _resolve(node, defs, seen)
    unknown = set(node) - set(_COPIED) - _HANDLED
    if unknown:
        raise SchemaError(f"{path}: unsupported JSON schema keywords {sorted(unknown)}")
    out: dict[str, Any] = {}
    description = node.get("description")
    if description:
        out["description"] = _describe(description, node.get("default"))
    for key in _COPIED:
        if key in node:
            out[key] = node[key]
    if EXPLAINED_PATTERN in node:
        _explain_pattern(out, **node[EXPLAINED_PATTERN])
    if "const" in node:
        out["enum"] = [node["const"]]
    if "enum" in out and "type" not in out:
        out["type"] = _enum_type(out["enum"], path)
    if "properties" in node:
        out["type"] = "object"
        out["properties"] = {
            name: _convert(sub, defs, f"{path}.{name}", seen)
            for name, sub in node["properties"].items()
        }
    if "items" in node:
        out["items"] = _convert(node["items"], defs, f"{path}[]", seen)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and extra:
        out["additionalProperties"] = _convert(extra, defs, f"{path}{{}}", seen)
    elif extra is True or extra == {}:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "properties" in out and "additionalProperties" in out:
        raise SchemaError(f"{path}: both properties and additionalProperties")
    if out.get("type") == "object" and "properties" in out:
        # Free-form objects keep unknown keys; typed ones are pruned to their properties.
        out.pop("x-kubernetes-preserve-unknown-fields", None)
    if "type" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        if node == {} or set(node) <= {"description", "title", "default"}:
            out["x-kubernetes-preserve-unknown-fields"] = True
        else:
            raise SchemaError(f"{path}: no type")
    return _ordered(out)


def _explain_pattern(out: dict[str, Any], what: str, how: str) -> None:
    """Check `pattern` with a CEL rule that quotes the offending value and says how to fix it
    (the OpenAPI pattern's error only prints the regex)."""
    pattern = out.pop("pattern")
    if "'" in pattern:
        raise SchemaError(f"pattern {pattern!r} cannot be written into a CEL string")
    escaped = pattern.replace("\\", "\\\\")  # a CEL string literal escapes backslashes
    rule = {
        "rule": f"self.matches('{escaped}')",
        "message": f"must be {what}: {how}",
        "messageExpression": f'"\'" + self + "\' is not {what}: {how}"',
    }
    out["x-kubernetes-validations"] = [*out.get("x-kubernetes-validations", []), rule]


def _enum_type(values: list[Any], path: str) -> str:
    kinds = {type(v) for v in values}
    if kinds == {str}:
        return "string"
    if kinds <= {int}:
        return "integer"
    raise SchemaError(f"{path}: enum of mixed or unsupported types {values}")


def _describe(description: str, default: Any) -> str:
    """The description, one paragraph per blank line, with a scalar default appended (the CRD
    states no `default`: the operator applies defaults, the stored object stays as written)."""
    text = " ".join(description.split())
    if "default" in text.lower():
        return text  # the description already says it
    if isinstance(default, bool):
        return f"{text} Default: {str(default).lower()}."
    if isinstance(default, (int, float, str)) and default != "":
        return f"{text} Default: {default}."
    return text


_ORDER = ("description", "type", "format", "enum")


def _ordered(out: dict[str, Any]) -> dict[str, Any]:
    """Keys in a stable, readable order: description and type first."""
    first = {k: out[k] for k in _ORDER if k in out}
    return {**first, **{k: v for k, v in out.items() if k not in first}}
