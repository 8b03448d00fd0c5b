"""The concurrency queue's I/O: the namespace's runs as queue members, one decision at a time
per namespace in this process, and each queue's shared record of admitted runs.

A run of a sequence with `concurrency` is admitted from a fresh LIST of the namespace's runs
(not kopf's cache, which may not show a slot taken a moment ago), under a lock held until its
status records the admission, so two runs of this process never take the last slot together.

Runs of one queue may belong to different replicas (`handlers/membership.py`), and a lock in
one process does not hold another. So each queue also has a record shared by all replicas: a
Lease in the operator's namespace (`slipway-queue-<hash of namespace, Shipyard, key>`, label
`slipway.dev/queue-of`) whose annotation lists the runs admitted and not known finished. An
admission reads the record, then LISTs the runs, decides with the recorded runs holding their
slots (`engine.queue.with_admitted`), and adds the run to the record with the version it read
(compare-and-swap) before the run's status says `Started`. A replica whose write meets a newer
version decides again (the worker's conflict path); so of two replicas deciding at once from
the same runs, only one takes the last slot. A finishing run takes itself off the record
(the Lease is deleted when no run is left); runs deleted meanwhile are dropped at the next
admission.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from slipway.api.sequencerun import SequenceRunSpec
from slipway.api.shipyard import ShipyardSpec
from slipway.constants import GROUP, SEQUENCERUN_PLURAL
from slipway.engine.queue import Member, member_of
from slipway.handlers.indexes import ShipyardIndex
from slipway.kube.client import Kube
from slipway.kube.errors import KubeError
from slipway.kube.leases import LeaseStore, micro_time

log = logging.getLogger(__name__)

LABEL_QUEUE_OF = f"{GROUP}/queue-of"
ANNOTATION_QUEUE = f"{GROUP}/queue"
ANNOTATION_ADMITTED = f"{GROUP}/admitted"

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


def record_name(namespace: str, shipyard: str, key: str) -> str:
    """The name of the Lease that records queue `key`'s admissions (any length of key)."""
    digest = hashlib.sha256(f"{namespace}\x00{shipyard}\x00{key}".encode()).hexdigest()
    return f"slipway-queue-{digest[:40]}"


@dataclass(frozen=True)
class Record:
    """A queue's admitted runs as read, and the version they were read at (None: no record
    exists yet)."""

    name: str
    namespace: str
    shipyard: str
    key: str
    admitted: tuple[str, ...] = ()
    version: str | None = None


class QueueRecords:
    """The shared records of the queues (see the module's docstring)."""

    def __init__(self, store: LeaseStore, scope: str, identity: str) -> None:
        self.store = store
        self.scope = scope
        self.identity = identity

    async def read(self, namespace: str, shipyard: str, key: str) -> Record:
        name = record_name(namespace, shipyard, key)
        body = await self.store.get(name)
        if body is None:
            return Record(name, namespace, shipyard, key)
        meta = body.get("metadata") or {}
        return Record(
            name,
            namespace,
            shipyard,
            key,
            admitted=_names((meta.get("annotations") or {}).get(ANNOTATION_ADMITTED)),
            version=meta.get("resourceVersion"),
        )

    async def admit(self, record: Record, run: str, keep: list[str]) -> None:
        """Add `run` to the record, keeping `keep` of its runs (the others finished or are
        gone), if it is still the version read: KubeError 409 (conflict) when another
        replica wrote it meanwhile, or created it first."""
        admitted = sorted({*keep, run})
        now = micro_time(datetime.now(UTC))
        annotations = {ANNOTATION_ADMITTED: json.dumps(admitted, separators=(",", ":"))}
        if record.version is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": record.name,
                    "labels": {LABEL_QUEUE_OF: self.scope},
                    "annotations": {
                        ANNOTATION_QUEUE: f"{record.namespace}/{record.shipyard}/{record.key}"[
                            :1000
                        ],
                        **annotations,
                    },
                },
                "spec": {"holderIdentity": self.identity, "acquireTime": now, "renewTime": now},
            }
            if await self.store.create(body) is None:
                raise KubeError(409, "Conflict", f"queue record {record.name} was created")
            return
        patch = {
            "metadata": {"resourceVersion": record.version, "annotations": annotations},
            "spec": {"holderIdentity": self.identity, "renewTime": now},
        }
        if await self.store.patch(record.name, patch) is None:
            raise KubeError(409, "Conflict", f"queue record {record.name} was deleted")

    async def release(self, namespace: str, shipyard: str, key: str, run: str) -> None:
        """Take a finished `run` off its queue's record; delete the record when no run is
        left. Conflicts are retried a few times; a run left on it is dropped at the next
        admission anyway (it is finished), so giving up costs nothing."""
        for _ in range(5):
            record = await self.read(namespace, shipyard, key)
            if record.version is None or run not in record.admitted:
                return
            left = sorted(set(record.admitted) - {run})
            try:
                if left:
                    patch = {
                        "metadata": {
                            "resourceVersion": record.version,
                            "annotations": {
                                ANNOTATION_ADMITTED: json.dumps(left, separators=(",", ":"))
                            },
                        }
                    }
                    await self.store.patch(record.name, patch)
                else:
                    await self.store.delete(record.name, version=record.version)
                return
            except KubeError as error:
                if not error.conflict:
                    raise


def _names(text: Any) -> tuple[str, ...]:
    try:
        found = json.loads(text) if isinstance(text, str) else []
    except ValueError:
        return ()
    return tuple(n for n in found if isinstance(n, str)) if isinstance(found, list) else ()
