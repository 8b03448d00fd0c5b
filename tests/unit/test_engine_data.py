"""The engine's small rules: deep merge of data, `.triggered` data, worst-of results,
conditions and status merge patches."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slipway.api.common import Condition, ConditionStatus, Result
from slipway.api.sequencerun import SequenceRunStatus
from slipway.api.shipyard import Task
from slipway.engine.conditions import set_condition
from slipway.engine.data import deep_merge, merge_outputs, triggered_data
from slipway.engine.patches import status_patch
from slipway.engine.results import as_result, worst

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

MERGES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ("empty overlay keeps base", {"a": 1}, {}, {"a": 1}),
    ("empty base takes overlay", {}, {"a": 1}, {"a": 1}),
    ("new keys are added", {"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
    ("a scalar is replaced", {"a": 1}, {"a": 2}, {"a": 2}),
    (
        "maps merge",
        {"m": {"x": 1, "y": 2}},
        {"m": {"y": 3, "z": 4}},
        {"m": {"x": 1, "y": 3, "z": 4}},
    ),
    (
        "maps merge at any depth",
        {"a": {"b": {"c": 1, "d": 1}}},
        {"a": {"b": {"d": 2}}},
        {"a": {"b": {"c": 1, "d": 2}}},
    ),
    ("lists are replaced, not appended", {"l": [1, 2]}, {"l": [3]}, {"l": [3]}),
    ("a map replaces a scalar", {"a": 1}, {"a": {"b": 1}}, {"a": {"b": 1}}),
    ("a scalar replaces a map", {"a": {"b": 1}}, {"a": "x"}, {"a": "x"}),
    ("a list replaces a map", {"a": {"b": 1}}, {"a": [1]}, {"a": [1]}),
    ("null wins like any value", {"a": 1}, {"a": None}, {"a": None}),
    ("an empty map merges into a map", {"a": {"b": 1}}, {"a": {}}, {"a": {"b": 1}}),
]


@pytest.mark.parametrize(
    ("base", "overlay", "expected"), [c[1:] for c in MERGES], ids=[c[0] for c in MERGES]
)
def test_deep_merge(
    base: dict[str, Any], overlay: dict[str, Any], expected: dict[str, Any]
) -> None:
    """deep_merge: maps merge recursively, anything else the overlay's value wins."""
    assert deep_merge(base, overlay) == expected


def test_deep_merge_never_mutates_its_inputs() -> None:
    """Neither input changes, even when nested maps are merged."""
    base = {"m": {"x": [1]}, "k": 1}
    overlay = {"m": {"y": {"z": 1}}}
    before = copy.deepcopy((base, overlay))
    deep_merge(base, overlay)
    assert (base, overlay) == before


def test_deep_merge_result_shares_nothing_with_inputs() -> None:
    """Changing the result (at any depth) leaves both inputs as they were."""
    base = {"m": {"x": [1]}, "only": {"a": 1}}
    overlay = {"m": {"y": [2]}, "new": {"b": 1}}
    merged = deep_merge(base, overlay)
    merged["m"]["x"].append(9)
    merged["m"]["y"].append(9)
    merged["only"]["a"] = 2
    merged["new"]["b"] = 2
    assert base == {"m": {"x": [1]}, "only": {"a": 1}}
    assert overlay == {"m": {"y": [2]}, "new": {"b": 1}}


def test_merge_outputs_in_order_later_wins_and_none_is_empty() -> None:
    """merge_outputs merges left to right; None and {} contribute nothing."""
    assert merge_outputs([{"a": 1, "m": {"x": 1}}, None, {"a": 2, "m": {"y": 1}}, {}]) == {
        "a": 2,
        "m": {"x": 1, "y": 1},
    }
    assert merge_outputs([]) == {}


TRIGGERED: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    (
        "properties under the task name",
        {"number": "1"},
        {"country": "GB"},
        {"number": "1", "check": {"country": "GB"}},
    ),
    (
        "properties merge over the task's key in the run data",
        {"check": {"country": "US", "seen": True}},
        {"country": "GB"},
        {"check": {"country": "GB", "seen": True}},
    ),
    (
        "no properties leave the data as it is",
        {"check": "earlier output"},
        {},
        {"check": "earlier output"},
    ),
    ("no properties and no key add nothing", {"a": 1}, {}, {"a": 1}),
    ("properties replace a non-map under the key", {"check": 5}, {"x": 1}, {"check": {"x": 1}}),
]


@pytest.mark.parametrize(
    ("data", "properties", "expected"), [c[1:] for c in TRIGGERED], ids=[c[0] for c in TRIGGERED]
)
def test_triggered_data(
    data: dict[str, Any], properties: dict[str, Any], expected: dict[str, Any]
) -> None:
    """triggered_data: the run's data plus data.<task> = the task's properties (deep-merged)."""
    task = Task(name="check", properties=properties)
    before = copy.deepcopy(data)
    assert triggered_data(data, task) == expected
    assert data == before


WORST: list[tuple[str, list[Any], Result]] = [
    ("no results pass", [], Result.PASS),
    ("all pass", [Result.PASS, Result.PASS], Result.PASS),
    ("a warning beats pass", [Result.PASS, Result.WARNING], Result.WARNING),
    ("fail beats warning", [Result.WARNING, Result.FAIL, Result.PASS], Result.FAIL),
    ("a missing result counts as fail", [Result.PASS, None], Result.FAIL),
    ("an unknown result counts as fail", [Result.PASS, "great"], Result.FAIL),
    ("plain strings are results", ["warning", "pass"], Result.WARNING),
]


@pytest.mark.parametrize(("results", "expected"), [c[1:] for c in WORST], ids=[c[0] for c in WORST])
def test_worst(results: list[Any], expected: Result) -> None:
    """worst: fail > warning > pass; None and unknown count as fail; empty is pass."""
    assert worst(results) == expected


def test_worst_reads_a_generator() -> None:
    """worst accepts any iterable, e.g. a generator expression."""
    assert worst(r for r in [Result.PASS, Result.WARNING]) == Result.WARNING


def test_as_result_unknown_is_fail() -> None:
    """as_result maps None, unknown strings and other types to fail."""
    assert [as_result(v) for v in (None, "x", 3, "pass", Result.WARNING)] == [
        Result.FAIL,
        Result.FAIL,
        Result.FAIL,
        Result.PASS,
        Result.WARNING,
    ]


def cond(type_: str, status: str, reason: str, at: datetime) -> Condition:
    return Condition(
        type=type_,
        status=ConditionStatus(status),
        reason=reason,
        message="m",
        last_transition_time=at,
    )


CONDITIONS: list[tuple[str, list[Condition], str, datetime]] = [
    ("a new condition starts now", [], "Unknown", T0 + timedelta(1)),
    (
        "same status keeps the transition time",
        [cond("Succeeded", "Unknown", "Pending", T0)],
        "Unknown",
        T0,
    ),
    (
        "a new status is a transition",
        [cond("Succeeded", "Unknown", "Running", T0)],
        "True",
        T0 + timedelta(1),
    ),
]


@pytest.mark.parametrize(
    ("existing", "status", "since"), [c[1:] for c in CONDITIONS], ids=[c[0] for c in CONDITIONS]
)
def test_set_condition(existing: list[Condition], status: str, since: datetime) -> None:
    """set_condition sets status/reason/message and moves lastTransitionTime only on a change
    of status."""
    now = T0 + timedelta(1)
    [result] = set_condition(existing, "Succeeded", ConditionStatus(status), "Why", "what", now)
    assert result == {
        "type": "Succeeded",
        "status": status,
        "reason": "Why",
        "message": "what",
        "lastTransitionTime": since.isoformat().replace("+00:00", "Z"),
    }


def test_set_condition_keeps_other_types_in_place() -> None:
    """Conditions of other types stay as they are, in order; a new type is appended."""
    ready = cond("Ready", "True", "Ok", T0)
    succeeded = cond("Succeeded", "Unknown", "Running", T0)
    changed = set_condition(
        [ready, succeeded], "Succeeded", ConditionStatus.TRUE, "Done", "", T0 + timedelta(1)
    )
    assert [c["type"] for c in changed] == ["Ready", "Succeeded"]
    assert changed[0] == ready.to_wire()
    added = set_condition([ready], "Succeeded", ConditionStatus.TRUE, "Done", "", T0)
    assert [c["type"] for c in added] == ["Ready", "Succeeded"]


def test_set_condition_does_not_mutate_its_input() -> None:
    """The given conditions are not changed."""
    existing = [cond("Succeeded", "Unknown", "Running", T0)]
    before = copy.deepcopy(existing)
    set_condition(existing, "Succeeded", ConditionStatus.FALSE, "Failed", "x", T0 + timedelta(1))
    assert existing == before


def test_status_patch_carries_changed_fields_and_deletes_unset_ones() -> None:
    """status_patch: changed top-level fields whole, unset ones as null, unchanged ones left out."""
    old = SequenceRunStatus(result=Result.PASS, message="a", current_task="x", data={"a": {"b": 1}})
    new = SequenceRunStatus(result=Result.PASS, message="b", data={"a": {"b": 1, "c": 2}})
    assert status_patch(old, new) == {
        "message": "b",
        "currentTask": None,
        "data": {"a": {"b": 1, "c": 2}},
    }
    assert status_patch(new, new) == {}
