"""Concurrency queues: which runs may start now, derived from the runs themselves.

A sequence with `concurrency: {limit, key}` puts each of its runs in a queue: the runs of the
same Shipyard whose key renders the same. At most `limit` runs of a queue are started
(phase `Started` or `Suspended`) at once; the others wait in phase `Queued` and start first
in, first out: by creation time, then name. There is no lock object: the queue is recomputed
from the runs every time, so a run that finishes, is aborted or is deleted frees its slot the
moment the operator sees it, and an operator restarted after a crash computes the same queue
from the same runs.

With several replicas, runs of one queue may belong to different replicas. Each admission is
then also recorded, under compare-and-swap, in one small shared record per queue (a Lease in
the operator's namespace, `handlers/queue.py`) before the run's status says `Started`: two
replicas deciding at once cannot both take the last slot, because the second's write meets a
newer version and it decides again with the first admission in view (`with_admitted`).

Keys are a tiny template, not code: `{{ shipyard }}`, `{{ stage }}`, `{{ sequence }}` and
`{{ data.<path> }}` are replaced by text; nothing else is interpreted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from slipway.api.sequencerun import SequenceRunSpec
from slipway.api.shipyard import ShipyardSpec

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")
#: Longest rendered key kept (a longer one is cut and suffixed with its length).
MAX_KEY = 1024


class KeyTemplateError(ValueError):
    """A key template that cannot be rendered for this run (a missing or non-scalar value)."""


def render_key(template: str, spec: SequenceRunSpec) -> str:
    """The queue key of a run of `spec` (stage, sequence, shipyard, `spec.data`).

    `{{ data.a.b }}` is the value at `a` → `b` of the run's data; strings are used as they
    are, numbers and booleans as JSON writes them. A missing value, or a map or list, raises
    `KeyTemplateError` naming the placeholder: the run is then invalid, since guessing a key could
    put it in the wrong queue."""
    context: dict[str, Any] = {
        "shipyard": spec.shipyard,
        "stage": spec.stage,
        "sequence": spec.sequence,
        "data": spec.data,
    }

    def value(match: re.Match[str]) -> str:
        path = match.group(1)
        current: Any = context
        for part in path.split("."):
            if not isinstance(current, Mapping) or part not in current:
                raise KeyTemplateError(
                    f"concurrency key {template!r}: {{{{ {path} }}}} has no value in this run "
                    "(the key may use shipyard, stage, sequence and data.<path>)"
                )
            current = current[part]
        if isinstance(current, str):
            return current
        if current is None or isinstance(current, bool | int | float):
            return json.dumps(current)
        raise KeyTemplateError(
            f"concurrency key {template!r}: {{{{ {path} }}}} is a {type(current).__name__}, "
            "not a string, number or boolean"
        )

    key = _PLACEHOLDER.sub(value, template)
    return key if len(key) <= MAX_KEY else f"{key[: MAX_KEY - 12]}…({len(key)})"


@dataclass(frozen=True)
class QueueSpec:
    """The queue a run belongs to: its key and its sequence's limit."""

    key: str
    limit: int


def queue_of(spec: SequenceRunSpec, shipyard: ShipyardSpec | None) -> QueueSpec | None:
    """The queue of a run that has not started: None when its sequence (in `shipyard`) does
    not exist or sets no `concurrency`. Raises `KeyTemplateError` for a key it cannot render."""
    if shipyard is None:
        return None
    sequence = shipyard.sequence(spec.stage, spec.sequence)
    if sequence is None or sequence.concurrency is None:
        return None
    return QueueSpec(render_key(sequence.concurrency.key, spec), sequence.concurrency.limit)


@dataclass(frozen=True)
class Member:
    """Another run of the namespace, as the queue sees it.

    `key`: its queue key (the one recorded in its status, else rendered from its spec and
    Shipyard; None: in no queue). `holding`: it is started (or suspended) and holds a slot.
    `finished`: finished or being deleted: it holds nothing and waits for nothing."""

    name: str
    shipyard: str
    created: datetime
    key: str | None
    holding: bool = False
    finished: bool = False


@dataclass(frozen=True)
class Admission:
    """Whether a run may start now. `ahead`: the runs of its queue that are started or
    before it in line (oldest first) when it may not; `error`: its key could not be
    rendered (the run is invalid)."""

    admitted: bool
    ahead: list[str] = field(default_factory=list)
    error: str | None = None


def admit(
    name: str,
    shipyard: str,
    created: datetime,
    queue: QueueSpec,
    members: Iterable[Member],
) -> Admission:
    """Whether run `name` (created at `created`) may start in `queue` now.

    It may when the runs of its queue holding a slot, plus the runs waiting before it (by
    creation time, then name), are fewer than its limit. Runs that are finished or being
    deleted count for nothing. A holder is counted wherever it stands in line (a run started
    before the limit was lowered keeps its slot until it ends)."""
    mine = (created, name)
    same = [
        m
        for m in members
        if m.name != name and m.shipyard == shipyard and m.key == queue.key and not m.finished
    ]
    holders = sorted((m for m in same if m.holding), key=lambda m: (m.created, m.name))
    before = sorted(
        (m for m in same if not m.holding and (m.created, m.name) < mine),
        key=lambda m: (m.created, m.name),
    )
    if len(holders) + len(before) < queue.limit:
        return Admission(True)
    return Admission(False, ahead=[m.name for m in holders] + [m.name for m in before])


def queue_message(queue: QueueSpec, admission: Admission) -> str:
    """Why a run waits, for `status.message` and `kubectl get`: the key, the limit and the
    runs ahead of it."""
    shown = admission.ahead[:5]
    more = len(admission.ahead) - len(shown)
    ahead = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
    return (
        f"queued behind {ahead} (concurrency limit {queue.limit} for key {queue.key!r}); "
        "starts when a slot frees"
    )


def queue_lengths(members: Iterable[Member]) -> dict[tuple[str, str], tuple[int, int]]:
    """(shipyard, key) → (started, queued) counts of the runs in queues, for metrics."""
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    for m in members:
        if m.key is None or m.finished:
            continue
        started, queued = counts.get((m.shipyard, m.key), (0, 0))
        counts[(m.shipyard, m.key)] = (started + m.holding, queued + (not m.holding))
    return counts


def member_of(
    name: str,
    created: datetime,
    spec: SequenceRunSpec,
    phase: str | None,
    recorded_key: str | None,
    deleting: bool,
    shipyard: ShipyardSpec | None,
) -> Member:
    """How the queue sees a run: its recorded key (a run that reached its queue records it),
    else for a run not yet started the key its spec renders (so a run created earlier but not
    yet seen by its worker still stands before later ones); a run whose key cannot be
    rendered is in no queue (it is about to finish `Invalid`)."""
    finished = phase == "Finished" or deleting
    key = recorded_key
    if key is None and phase in (None, "Pending", "Queued") and not finished:
        try:
            queue = queue_of(spec, shipyard)
        except KeyTemplateError:
            queue = None
        key = queue.key if queue is not None else None
    holding = phase in ("Started", "Suspended") and recorded_key is not None
    return Member(name, spec.shipyard, created, key, holding=holding, finished=finished)


def needs_queue(phase: str | None, spec: SequenceRunSpec, shipyard: ShipyardSpec | None) -> bool:
    """Whether deciding this run needs the queue: it has not started and its sequence sets
    `concurrency` (a key that cannot be rendered too: the decision says so)."""
    if phase not in (None, "Pending", "Queued") or spec.abort:
        return False
    try:
        return queue_of(spec, shipyard) is not None
    except KeyTemplateError:
        return True


def with_admitted(
    members: Iterable[Member], admitted: Iterable[str], key: str, me: str
) -> list[Member]:
    """The queue's members as seen with the admissions recorded for queue `key` (its
    shared record: `handlers/queue.py`), so that replicas deciding at once agree.

    A run recorded as admitted holds a slot until it finishes, whatever its status says yet
    (its admission may not have reached its status). When `me` is recorded itself, it was
    admitted already (by this or another replica, before a crash or a hand-over): the other
    runs of its queue are left out, so the decision admits it again rather than queue it."""
    recorded = set(admitted)
    if me in recorded:
        return [m for m in members if m.key != key]
    return [
        replace(m, key=key, holding=True) if m.name in recorded and not m.finished else m
        for m in members
    ]


def still_admitted(admitted: Iterable[str], members: Iterable[Member]) -> list[str]:
    """The recorded admissions still holding a slot: runs that exist and have not finished.
    `members` must be listed after the record was read (a recorded run existed before it
    was recorded, so one missing from a later list was deleted)."""
    live = {m.name for m in members if not m.finished}
    return sorted(name for name in set(admitted) if name in live)


def admits(phase_before: str | None, patch: Mapping[str, Any] | None) -> bool:
    """Whether a run decision's status patch takes a run that had not started into a slot
    (phase `Started`, or `Suspended` before its first task)."""
    if phase_before not in (None, "Pending", "Queued") or not patch:
        return False
    return patch.get("phase") in ("Started", "Suspended")
