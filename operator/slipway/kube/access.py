"""What the web page's routes ask the Kubernetes API: who a token is, what it may do, the
objects it may see, and a stream of changes to them.

- `Access`: TokenReview (who) and SubjectAccessReview (may they `verb` sequenceruns in a
  namespace), each answer cached for a short time per token, so a page polling every few
  seconds costs one review per namespace and interval.
- `watch_changes`: the objects a list+watch sees change, re-listing after the watch ends or
  expires (410 Gone), for a bounded time.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from slipway.constants import GROUP, SEQUENCERUN_PLURAL, VERSION
from slipway.kube.client import Body, Kube

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    """Who a token belongs to, as the API server says (an empty username: nobody)."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        return bool(self.username)


@dataclass
class _Cached:
    value: Any
    expires: float


class Access:
    """TokenReview and SubjectAccessReview with a short per-token cache."""

    def __init__(self, api: client.ApiClient, cache_seconds: float = 10.0) -> None:
        self._authn = client.AuthenticationV1Api(api)
        self._authz = client.AuthorizationV1Api(api)
        self._cache: dict[tuple[str, ...], _Cached] = {}
        self._seconds = cache_seconds

    def _get(self, key: tuple[str, ...]) -> Any:
        hit = self._cache.get(key)
        if hit is None or hit.expires < time.monotonic():
            return None
        return hit

    def _put(self, key: tuple[str, ...], value: Any) -> None:
        if len(self._cache) > 20_000:
            self._cache.clear()
        self._cache[key] = _Cached(value, time.monotonic() + self._seconds)

    async def identify(self, token: str) -> Identity:
        """Who `token` is; `Identity("")` when the API server does not accept it."""
        key = ("who", hashlib.sha256(token.encode()).hexdigest())
        hit = self._get(key)
        if hit is not None:
            cached: Identity = hit.value
            return cached
        review = await self._authn.create_token_review(
            client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
        )
        status = review.status
        identity = Identity("")
        if status and status.authenticated and status.user and status.user.username:
            user = status.user
            identity = Identity(
                username=str(user.username),
                uid=str(user.uid or ""),
                groups=tuple(user.groups or ()),
                extra={k: list(v) for k, v in (user.extra or {}).items()},
            )
        self._put(key, identity)
        return identity

    async def allowed(
        self, who: Identity, verb: str, namespace: str, resource: str = SEQUENCERUN_PLURAL
    ) -> bool:
        """May `who` `verb` `resource` (of Slipway's group) in `namespace`?"""
        key = ("may", who.username, who.uid, verb, resource, namespace)
        hit = self._get(key)
        if hit is not None:
            return bool(hit.value)
        review = await self._authz.create_subject_access_review(
            client.V1SubjectAccessReview(
                spec=client.V1SubjectAccessReviewSpec(
                    user=who.username,
                    uid=who.uid or None,
                    groups=list(who.groups),
                    extra=who.extra or None,
                    resource_attributes=client.V1ResourceAttributes(
                        namespace=namespace, verb=verb, group=GROUP, resource=resource
                    ),
                )
            )
        )
        answer = bool(review.status and review.status.allowed)
        self._put(key, answer)
        return answer


async def list_everywhere(kube: Kube, plural: str, namespace: str | None) -> list[Body]:
    """Every object of `plural` in `namespace`, or in every namespace when None."""
    if namespace:
        return await kube.list(plural, namespace)
    answer = await kube.custom.list_cluster_custom_object(GROUP, VERSION, plural)
    items: list[Body] = answer.get("items", [])
    return items


async def watch_changes(
    kube: Kube,
    plural: str,
    namespace: str,
    *,
    field_selector: str = "",
    label_selector: str = "",
    resource_version: str,
    seconds: float,
) -> AsyncIterator[tuple[str, Body]]:
    """(event type, object) for each change after `resource_version`, for at most `seconds`.
    A watch that ends early or expires (410 Gone) ends the iteration: callers re-read and
    start again."""
    stream = watch.Watch()
    try:
        async for event in stream.stream(
            kube.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            field_selector=field_selector or None,
            label_selector=label_selector or None,
            resource_version=resource_version,
            timeout_seconds=max(1, int(seconds)),
            allow_watch_bookmarks=False,
        ):
            obj = event.get("object")
            if isinstance(obj, dict) and event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                yield str(event["type"]), obj
    except ApiException as error:
        log.info("watch of %s in %s ended: %s", plural, namespace, error.reason)
    except (TimeoutError, OSError) as error:
        log.info("watch of %s in %s ended: %s", plural, namespace, error)
    finally:
        stream.stop()
        await stream.close()


async def list_with_version(
    kube: Kube, plural: str, namespace: str, label_selector: str = "", field_selector: str = ""
) -> tuple[list[Body], str]:
    """The objects and the list's resourceVersion (to watch from)."""
    selectors: dict[str, Any] = {"label_selector": label_selector, "field_selector": field_selector}
    answer = await kube.custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, **{k: v for k, v in selectors.items() if v}
    )
    items: list[Body] = answer.get("items", [])
    return items, str(answer.get("metadata", {}).get("resourceVersion", ""))
