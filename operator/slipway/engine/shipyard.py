"""Check a Shipyard for what its CRD schema cannot express.

The API server already rejects bad names, duplicate names, malformed `triggeredOn` events
and selectors (CEL and schema rules in the CRD). What needs the whole document is checked
here: a link naming a stage or sequence that does not exist, a selector naming a task that is
not in the triggering sequence, and links that would start runs forever. The operator turns
the problems into the Shipyard's `Ready` condition; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from slipway.api.shipyard import Sequence, ShipyardSpec, Stage

#: Problem reasons (CamelCase, as condition reasons are).
UNKNOWN_STAGE = "UnknownStage"
UNKNOWN_SEQUENCE = "UnknownSequence"
UNKNOWN_TASK = "UnknownTask"
DUPLICATE_NAME = "DuplicateName"
ENDLESS_LINK = "EndlessLink"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a Shipyard: a CamelCase `reason`, a `message` saying what to fix,
    and the `path` of the offending field (`spec.stages[1].sequences[0].triggeredOn[0]`)."""

    reason: str
    message: str
    path: str


def validate_shipyard(spec: ShipyardSpec) -> list[Problem]:
    """Every problem of `spec` the CRD schema cannot catch, in document order; empty when the
    Shipyard is consistent. Duplicate names are checked again (the schema catches them, but an
    object stored before the CRD had the rule would slip through)."""
    problems = list(_duplicates(spec))
    for path, stage, sequence in _sequences(spec):
        for t, trigger in enumerate(sequence.triggered_on):
            problems += _check_trigger(spec, f"{path}.triggeredOn[{t}]", trigger.event, stage)
            if trigger.selector is not None:
                problems += _check_selector(
                    spec,
                    f"{path}.triggeredOn[{t}].selector.match",
                    trigger.event,
                    list(trigger.selector.match),
                )
    problems += _endless_links(spec)
    return problems


def describe(problems: list[Problem]) -> str:
    """One message for a condition or an Event: every problem, separated by `; `."""
    return "; ".join(p.message for p in problems)


def _sequences(spec: ShipyardSpec) -> Iterator[tuple[str, Stage, Sequence]]:
    for s, stage in enumerate(spec.stages):
        for q, sequence in enumerate(stage.sequences):
            yield f"spec.stages[{s}].sequences[{q}]", stage, sequence


def _split(event: str) -> tuple[str, str]:
    """`<stage>.<sequence>.finished` → (stage, sequence); the schema guarantees the shape."""
    stage, sequence, _ = event.split(".", 2)
    return stage, sequence


def _check_trigger(spec: ShipyardSpec, path: str, event: str, here: Stage) -> list[Problem]:
    stage_name, sequence_name = _split(event)
    stage = spec.stage(stage_name)
    if stage is None:
        known = ", ".join(s.name for s in spec.stages)
        return [
            Problem(
                UNKNOWN_STAGE,
                f"{path}: triggeredOn event {event!r} names stage {stage_name!r}, which this "
                f"Shipyard does not define (stages: {known})",
                path,
            )
        ]
    if spec.sequence(stage_name, sequence_name) is None:
        known = ", ".join(s.name for s in stage.sequences)
        return [
            Problem(
                UNKNOWN_SEQUENCE,
                f"{path}: triggeredOn event {event!r} names sequence {sequence_name!r}, which "
                f"stage {stage_name!r} does not define (sequences: {known})",
                path,
            )
        ]
    return []


def _check_selector(spec: ShipyardSpec, path: str, event: str, keys: list[str]) -> list[Problem]:
    source = spec.sequence(*_split(event))
    if source is None:
        return []  # already reported by _check_trigger
    tasks = [t.name for t in source.tasks]
    problems = []
    for key in keys:
        task = key.removesuffix(".result")
        if key != "result" and task not in tasks:
            problems.append(
                Problem(
                    UNKNOWN_TASK,
                    f"{path}: selector key {key!r} names task {task!r}, which is not in "
                    f"sequence {event.rsplit('.', 1)[0]!r} (tasks: {', '.join(tasks)})",
                    path,
                )
            )
    return problems


def _duplicates(spec: ShipyardSpec) -> Iterator[Problem]:
    def repeated(names: list[str]) -> list[str]:
        return sorted({n for n in names if names.count(n) > 1})

    for name in repeated([s.name for s in spec.stages]):
        yield Problem(
            DUPLICATE_NAME, f"spec.stages: stage {name!r} is defined twice", "spec.stages"
        )
    for s, stage in enumerate(spec.stages):
        path = f"spec.stages[{s}].sequences"
        for name in repeated([q.name for q in stage.sequences]):
            yield Problem(
                DUPLICATE_NAME,
                f"{path}: sequence {name!r} is defined twice in stage {stage.name!r}",
                path,
            )
    for path, _, sequence in _sequences(spec):
        for name in repeated([t.name for t in sequence.tasks]):
            yield Problem(
                DUPLICATE_NAME,
                f"{path}.tasks: task {name!r} appears twice in sequence {sequence.name!r}",
                f"{path}.tasks",
            )


def _endless_links(spec: ShipyardSpec) -> list[Problem]:
    """Cycles of links without a selector: each run that passes starts the next one, forever.
    A selector on at least one link of the cycle (e.g. `{match: {mytask.result: fail}}`, a
    retry loop as in Keptn) can end it, so such cycles are allowed."""
    edges: dict[str, list[str]] = {}
    for _, stage, sequence in _sequences(spec):
        target = f"{stage.name}.{sequence.name}"
        for trigger in sequence.triggered_on:
            if trigger.selector is None:
                edges.setdefault(trigger.event.rsplit(".", 1)[0], []).append(target)
    problems = []
    reported: set[frozenset[str]] = set()
    for _, stage, sequence in _sequences(spec):  # document order: stable messages
        cycle = _cycle_from(f"{stage.name}.{sequence.name}", edges)
        if cycle and frozenset(cycle) not in reported:
            reported.add(frozenset(cycle))
            loop = " -> ".join([*cycle, cycle[0]])
            problems.append(
                Problem(
                    ENDLESS_LINK,
                    f"sequences {loop} trigger each other without a selector: every run that "
                    "passes starts the next one forever; add a selector to one of these "
                    "triggeredOn links",
                    "spec.stages",
                )
            )
    return problems


def _cycle_from(start: str, edges: dict[str, list[str]]) -> list[str]:
    """The nodes of a cycle through `start` (in order, from `start`), or []."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in edges.get(node, []):
            if nxt == start:
                return path
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return []
