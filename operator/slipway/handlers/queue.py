"""The concurrency queue's I/O: the namespace's runs as queue members, and one decision at a
time per namespace.

A run of a sequence with `concurrency` is admitted from a fresh LIST of the namespace's runs
(not kopf's cache, which may not show a slot taken a moment ago), under a lock held until its
status records the admission, so two runs of this process never take the last slot together.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from slipway.api.sequencerun import SequenceRunSpec
from slipway.api.shipyard import ShipyardSpec
from slipway.constants import SEQUENCERUN_PLURAL
from slipway.engine.queue import Member, member_of
from slipway.handlers.indexes import ShipyardIndex
from slipway.kube.client import Kube

_LOCKS: dict[str, asyncio.Lock] = {}


def lock(namespace: str) -> asyncio.Lock:
    """The lock of queue decisions in `namespace` (one per process and namespace)."""
    found = _LOCKS.get(namespace)
    if found is None:
        found = _LOCKS[namespace] = asyncio.Lock()
    return found


async def members(kube: Kube, namespace: str, shipyards: ShipyardIndex) -> list[Member]:
    """Every run of the namespace as the queue sees it, read from the API now."""
    found = []
    for body in await kube.list(SEQUENCERUN_PLURAL, namespace):
        meta = body["metadata"]
        try:
            spec = SequenceRunSpec.model_validate(body.get("spec") or {})
        except ValidationError:
            continue
        status = body.get("status") or {}
        queue = status.get("queue") or {}
        entries = list(shipyards.get((namespace, spec.shipyard), []))
        shipyard = _parsed(entries[0]) if entries else None
        found.append(
            member_of(
                meta["name"],
                datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00")),
                spec,
                status.get("phase"),
                queue.get("key"),
                bool(meta.get("deletionTimestamp")),
                shipyard,
            )
        )
    return found


def _parsed(entry: Any) -> ShipyardSpec | None:
    if isinstance(entry, ShipyardSpec):
        return entry
    try:
        return ShipyardSpec.model_validate(entry)
    except ValidationError:
        return None


def frees_queue(event_type: str, body: Any) -> bool:
    """Whether a watch event of a run may let a queued run of its namespace start (or move
    up): a run in a queue that finished, is being deleted, or is gone."""
    status = body.get("status") or {}
    if not status.get("queue"):
        return False
    return (
        event_type == "DELETED"
        or status.get("phase") == "Finished"
        or bool(body.get("metadata", {}).get("deletionTimestamp"))
    )
