"""What the web page's routes ask the Kubernetes API, with a short per-token cache: who a
token is (TokenReview) and whether they may `verb` sequenceruns in a namespace
(SubjectAccessReview), so a page polling every few seconds costs one review per namespace and
interval. The calls themselves are `Kube`'s."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from slipway.constants import GROUP, SEQUENCERUN_PLURAL
from slipway.kube.client import Body, Kube
from slipway.kube.client import Identity as Reviewed


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

    def __init__(self, kube: Kube, cache_seconds: float = 10.0) -> None:
        self._kube = kube
        self._cache: dict[tuple[str, ...], _Cached] = {}
        self._seconds = cache_seconds

    def _get(self, key: tuple[str, ...]) -> _Cached | None:
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
        user = await self._kube.review_token(token)
        identity = Identity("")
        if user is not None and user.username:
            identity = Identity(
                username=user.username,
                uid=user.uid or "",
                groups=tuple(user.groups),
                extra={k: list(v) for k, v in user.extra.items()},
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
        reviewed = Reviewed(who.username, who.uid or None, list(who.groups), dict(who.extra))
        answer = await self._kube.may(reviewed, verb, namespace, GROUP, resource)
        self._put(key, answer)
        return answer


async def list_everywhere(kube: Kube, plural: str, namespace: str | None) -> list[Body]:
    """Every object of `plural` in `namespace`, or in every namespace when None."""
    items, _ = await kube.list_with_version(plural, namespace)
    return items
