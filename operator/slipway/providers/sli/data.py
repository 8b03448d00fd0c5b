"""SLI values from the run's data: numbers that earlier tasks of the run produced. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slipway.engine.scoring import SLIValue
from slipway.providers.sli.jsonpath import JsonPathError, find
from slipway.providers.sli.values import as_sli_value, error


def values_from_data(paths: Mapping[str, str], data: Mapping[str, Any]) -> dict[str, SLIValue]:
    """SLI name -> the value its JSONPath names in `data` (the run's data when the task was
    reached: `spec.data` merged with the outputs of the tasks before it), or an `SLIError`
    saying that the path names nothing or not a number."""
    values: dict[str, SLIValue] = {}
    for name, path in paths.items():
        try:
            raw = find(data, path)
        except JsonPathError as problem:
            values[name] = error(f"run data: {problem}")
            continue
        values[name] = as_sli_value(raw, f"run data {path}")
    return values
