"""The run's data: deep merge of outputs, and the data a task's `.triggered` event carries.

Maps merge key by key, recursively; for anything else (lists, strings, numbers, null) the
later value wins. Nothing here changes its arguments, and results share no mutable value with
them, so a caller may change a result freely.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from slipway.api.shipyard import Task


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overlay` merged over it: where both hold a map under a key the maps merge
    recursively; otherwise the overlay's value wins (a list replaces a list, null replaces a
    value). Neither input is mutated; the result is a fresh deep copy."""
    merged: dict[str, Any] = {key: copy.deepcopy(value) for key, value in base.items()}
    for key, value in overlay.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def merge_outputs(outputs: list[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Several outputs deep-merged in the given order (later wins); None counts as `{}`."""
    merged: dict[str, Any] = {}
    for output in outputs:
        if output:
            merged = deep_merge(merged, output)
    return merged


def triggered_data(run_data: Mapping[str, Any], task: Task) -> dict[str, Any]:
    """The data of `task`'s `.triggered` event before Slipway's own keys are added: the run's
    data plus `data.<task>` = the task's properties, deep-merged over whatever the run's data
    already holds under that key. A task without properties leaves that key as it is (as the
    events package's `build_task_triggered` does)."""
    return task_data(run_data, task.name, task.properties)


def task_data(
    run_data: Mapping[str, Any], task: str, properties: Mapping[str, Any] | None
) -> dict[str, Any]:
    """`triggered_data` by the task's name and properties (a new dict, `run_data` unchanged)."""
    if not properties:
        return copy.deepcopy(dict(run_data))
    return deep_merge(run_data, {task: properties})
