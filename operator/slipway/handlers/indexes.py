"""What kopf's indexes hold, typed: the workers read them instead of listing the API.

kopf keeps an index from its watch of each kind (rebuilt from the initial listing after a
restart, before any handler runs). Entries are kept small: everything finished is stored,
so an index holds only what a worker of something still running needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf
from pydantic import ValidationError

from slipway.api.shipyard import ShipyardSpec
from slipway.api.taskprovider import TaskProviderSpec

Body = dict[str, Any]
Key = tuple[str, str]


@dataclass(frozen=True)
class ExecutionEntry:
    """One TaskExecution in the index of its run: its name, `resourceVersion` and phase,
    and its status while it runs. A finished execution's status is not kept (that would
    hold every finished execution in memory forever): the run's worker takes it from the
    execution's last write in this process (`handlers/fresh.py`), else reads it once."""

    name: str
    version: int
    finished: bool
    status: Body | None


class ExecutionsByRun:
    """The TaskExecutions of each run, as their watch last said (`ExecutionEntry`), kept by
    the execution handler — not a kopf index. kopf holds every handler of every object back
    until every object of an indexed kind was indexed, and each object indexed wakes every
    held handler to check: a start with N stored executions then costs N² checks (minutes
    for a few thousand). TaskExecutions are the kind that grows with every task, so they
    are kept here; a worker that finds no entry (its execution not seen yet, just after a
    start) reads the execution from the API."""

    def __init__(self) -> None:
        self._runs: dict[Key, dict[str, ExecutionEntry]] = {}

    def note(self, namespace: str, run: str, entry: ExecutionEntry) -> None:
        self._runs.setdefault((namespace, run), {})[entry.name] = entry

    def forget(self, namespace: str, run: str, name: str) -> None:
        entries = self._runs.get((namespace, run))
        if entries is not None:
            entries.pop(name, None)
            if not entries:
                del self._runs[(namespace, run)]

    def get(self, key: Key, default: list[ExecutionEntry] | None = None) -> list[ExecutionEntry]:
        entries = self._runs.get(key)
        return list(entries.values()) if entries else (default or [])


ShipyardIndex = kopf.Index[Key, "ShipyardSpec | dict[str, Any]"]
ProviderIndex = kopf.Index[Key, "tuple[str, TaskProviderSpec | dict[str, Any]]"]
ExecutionIndex = ExecutionsByRun
JobIndex = kopf.Index[Key, dict[str, Any]]
PodIndex = kopf.Index[Key, dict[str, Any]]


def running(status: Mapping[str, Any] | None) -> bool:
    """Whether a run or execution with this status is still under way."""
    return (status or {}).get("phase") != "Finished"


def version_of(body: Mapping[str, Any]) -> int:
    """`metadata.resourceVersion` as an integer (etcd revisions; 0 when not one)."""
    try:
        return int((body.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def execution_entry(name: str, body: Mapping[str, Any]) -> ExecutionEntry:
    """The index entry of a TaskExecution."""
    status = dict(body.get("status") or {})
    done = not running(status)
    return ExecutionEntry(name, version_of(body), done, None if done else status)


def finished_with_jobs(status: Mapping[str, Any] | None) -> bool:
    """Whether a TaskExecution with this status finished and had a job provider (whose Job
    may still run): the only finished executions the Job clean-up looks at."""
    if running(status):
        return False
    providers = (status or {}).get("providers") or []
    return any(p.get("kind") == "job" or p.get("job") for p in providers)


def parsed_shipyard(spec: Mapping[str, Any]) -> ShipyardSpec | dict[str, Any]:
    """A Shipyard's spec, validated once when it changes (not on every decision); a spec that
    does not validate is kept as it is, and fails where it is used."""
    try:
        return ShipyardSpec.model_validate(dict(spec))
    except ValidationError:
        return dict(spec)


def parsed_provider(spec: Mapping[str, Any]) -> TaskProviderSpec | dict[str, Any]:
    """A TaskProvider's spec, validated once when it changes (as `parsed_shipyard`)."""
    try:
        return TaskProviderSpec.model_validate(dict(spec))
    except ValidationError:
        return dict(spec)
