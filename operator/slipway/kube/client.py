"""The process's one asynchronous Kubernetes client and the few write patterns it needs.

kubernetes_asyncio is used (not the synchronous `kubernetes` package) because every call
the operator and the gateway make runs on kopf's event loop: a blocking client would stall
every handler while it waits for the API server. One `ApiClient` (one connection pool) is
made at start-up and shared.

Write patterns, each idempotent or safe to retry:
- `ensure_created`: create, and treat 409 AlreadyExists as done (deterministic names make
  a retry or a restart find its earlier work instead of creating a twin);
- `patch_status`: a JSON merge patch of the status subresource;
- `update_status`: read, compute, and patch with the read `resourceVersion` as a
  precondition, retried on 409 Conflict — for fields that several writers change (the
  operator and the gateway both record provider responses), so no write is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from slipway.constants import GROUP, VERSION

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
Body = dict[str, Any]


@dataclass(frozen=True)
class Ref:
    """A namespaced custom object of our API group."""

    plural: str
    namespace: str
    name: str


async def connect(kubeconfig: str | None = None) -> client.ApiClient:
    """An ApiClient for the in-cluster service account when running in a pod, otherwise
    for `kubeconfig` (default: $KUBECONFIG or ~/.kube/config, as kubectl does)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]  # untyped upstream
        return client.ApiClient()
    except config.ConfigException:
        return await config.new_client_from_config(config_file=kubeconfig)


class Kube:
    """Typed helpers over one ApiClient. Every method raises ApiException on errors it
    does not handle itself; callers decide whether to retry."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)

    async def close(self) -> None:
        await self.api.close()

    # ------------------------------------------------------------ custom objects
    async def get(self, ref: Ref) -> Body | None:
        """The object, or None when it does not exist."""
        try:
            body: Body = await self.custom.get_namespaced_custom_object(
                GROUP, VERSION, ref.namespace, ref.plural, ref.name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return body

    async def list(self, plural: str, namespace: str, label_selector: str = "") -> list[Body]:
        result = await self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, label_selector=label_selector
        )
        items: list[Body] = result.get("items", [])
        return items

    async def ensure_created(self, plural: str, namespace: str, body: Body) -> bool:
        """Create `body`; True when created now, False when it already existed."""
        try:
            await self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, body
            )
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    async def patch_status(self, ref: Ref, status: Body) -> Body:
        """A JSON merge patch of the status subresource."""
        body: Body = await self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            ref.namespace,
            ref.plural,
            ref.name,
            {"status": status},
            _content_type=MERGE_PATCH,  # type: ignore[call-arg]  # stubs omit **kwargs
        )
        return body

    async def update_status(
        self,
        ref: Ref,
        change: Callable[[Body], Body | None],
        attempts: int = 8,
        known: Body | None = None,
    ) -> Body | None:
        """Let `change` compute a status patch from the object (None: nothing to do) and
        apply it only if the object did not change meanwhile; on a conflict, read again and
        recompute. `known`, a recent copy of the object (e.g. kopf's view from its watch),
        saves the first read: if it is stale the patch conflicts and the loop reads. Returns
        the patched object, or None when `change` declined or the object is gone."""
        for _ in range(attempts):
            current = known if known is not None else await self.get(ref)
            known = None
            if current is None:
                return None
            patch = change(current)
            if patch is None:
                return None
            version = current["metadata"]["resourceVersion"]
            try:
                body: Body = await self.custom.patch_namespaced_custom_object_status(
                    GROUP,
                    VERSION,
                    ref.namespace,
                    ref.plural,
                    ref.name,
                    {"metadata": {"resourceVersion": version}, "status": patch},
                    _content_type=MERGE_PATCH,  # type: ignore[call-arg]  # stubs omit **kwargs
                )
            except ApiException as error:
                if error.status == 409:
                    continue
                raise
            return body
        raise RuntimeError(f"{ref.plural}/{ref.name}: status kept changing; gave up")


def snapshot(live: Any) -> Body:
    """A plain-dict copy of kopf's live view of an object (the view changes as events
    arrive; a decision must be computed from one consistent copy)."""
    return {
        "metadata": dict(live["metadata"]),
        "spec": dict(live.get("spec") or {}),
        "status": dict(live.get("status") or {}),
    }


def newest(*bodies: Body | None) -> Body | None:
    """The most recent of several copies of one object, by `metadata.resourceVersion`.

    Kubernetes calls resource versions opaque; every API server backed by etcd issues them
    as increasing integers (etcd revisions), which is what this relies on. A version that is
    not an integer makes the first copy win, the safe choice for a caller that passes its
    watch's copy first and its own last write second only when it is known newer.
    """
    present = [b for b in bodies if b is not None]
    if not present:
        return None
    try:
        return max(present, key=lambda b: int(b["metadata"]["resourceVersion"]))
    except (KeyError, TypeError, ValueError):
        return present[0]
