"""Slipway's member Leases (coordination.k8s.io/v1): one per operator replica.

Each replica creates a Lease of its own, renews it on a period, lists its peers' Leases by
label, and deletes its own when it stops cleanly. A concurrency queue's record of admitted
runs is a Lease too (`handlers/queue.py`), written under compare-and-swap: a merge patch
carrying the `resourceVersion` it was read at. Bodies are plain dicts (as the rest of
`kube/` uses); the Lease's spec is built here because it is the only Lease code there is.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kubernetes_asyncio import client

from slipway.kube.client import _translated, connect
from slipway.kube.errors import KubeError

Body = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"


def micro_time(at: datetime) -> str:
    """A Lease's MicroTime: RFC 3339 with microseconds, in UTC."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any) -> datetime | None:
    """A Lease time as the client returns it (a datetime, or a string), None when unset."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class LeaseStore:
    """The Lease calls of the membership, in one namespace, over a client of their own: a
    renewal must not wait in the connection pool behind the workers' requests (a busy
    replica would otherwise miss its own renewals and drop out)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self._api = api
        self._leases = client.CoordinationV1Api(api)
        self.namespace = namespace

    @classmethod
    async def open(cls, namespace: str) -> LeaseStore:
        """A store over a new client (see `kube.client.connect`); the caller closes it."""
        return cls(await connect(), namespace)

    async def close(self) -> None:
        await self._api.close()

    def _plain(self, lease: Any) -> Body:
        body: Body = self._api.sanitize_for_serialization(lease)
        return body

    async def create(self, body: Mapping[str, Any]) -> Body | None:
        """Create the Lease; None when one of that name exists already."""
        try:
            with _translated():
                made = await self._leases.create_namespaced_lease(self.namespace, dict(body))  # type: ignore[arg-type]  # a dict is sent as it is
        except KubeError as error:
            if error.conflict:
                return None
            raise
        return self._plain(made)

    async def patch(self, name: str, patch: Mapping[str, Any]) -> Body | None:
        """A JSON merge patch of Lease `name`; None when it does not exist."""
        try:
            with _translated():
                patched = await self._leases.patch_namespaced_lease(
                    name,
                    self.namespace,
                    dict(patch),
                    _content_type=MERGE_PATCH,  # type: ignore[call-arg]  # stubs omit **kwargs
                )
        except KubeError as error:
            if error.not_found:
                return None
            raise
        return self._plain(patched)

    async def get(self, name: str) -> Body | None:
        """Lease `name`; None when it does not exist."""
        try:
            with _translated():
                found = await self._leases.read_namespaced_lease(name, self.namespace)
        except KubeError as error:
            if error.not_found:
                return None
            raise
        return self._plain(found)

    async def list(self, label_selector: str) -> list[Body]:
        """The Leases with these labels."""
        with _translated():
            listed = await self._leases.list_namespaced_lease(
                self.namespace, label_selector=label_selector
            )
        items: list[Body] = self._plain(listed).get("items", [])
        return items

    async def delete(self, name: str, version: str | None = None) -> None:
        """Delete Lease `name` (gone already is fine); with `version`, only that version of
        it (KubeError 409 when it changed meanwhile)."""
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(resource_version=version) if version else None
        )
        try:
            with _translated():
                await self._leases.delete_namespaced_lease(name, self.namespace, body=options)
        except KubeError as error:
            if not error.not_found:
                raise
