"""Who may call the gateway: Kubernetes identities for people and apps, per-execution tokens
for tools.

Triggers and reads carry `Authorization: Bearer <Kubernetes token>`. The API server decides:
a TokenReview says who the token belongs to, a SubjectAccessReview whether that identity may
`create` (trigger) or `get` (read) sequenceruns in the namespace. RBAC is the access model;
there is no user store here. Answers are cached for a short time so a burst of requests
from one client costs one review.

Tool responses carry the callback token their `.triggered` event brought, which is valid
for that one TaskExecution only (`engine/tokens.py`, checked by `gateway/server.py`).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from slipway.constants import GROUP, SEQUENCERUN_PLURAL
from slipway.kube.client import Kube


class AuthError(Exception):
    """The caller is not allowed; `status` is 401 (who are you?) or 403 (not you)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer …` header; AuthError(401) otherwise."""
    if not authorization:
        raise AuthError(401, "send `Authorization: Bearer <token>` (a Kubernetes token)")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "the Authorization header must be `Bearer <token>`")
    return token.strip()


@dataclass(frozen=True)
class _Decision:
    allowed: bool
    username: str
    expires: float
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Caller:
    """Who a bearer token belongs to, as the API server's TokenReview says."""

    username: str
    groups: tuple[str, ...]


class KubernetesAuthorizer:
    """Asks the API server whether a bearer token may `verb` sequenceruns in a namespace."""

    def __init__(self, kube: Kube, cache_seconds: float = 10.0) -> None:
        self._kube = kube
        self._cache: dict[tuple[str, str, str, str, str], _Decision] = {}
        self._cache_seconds = cache_seconds

    async def authorize(self, token: str, verb: str, namespace: str) -> str:
        """The username behind `token` when it may `verb` sequenceruns in `namespace`;
        raises AuthError(401) for an unknown token and AuthError(403) for a refusal."""
        return (await self.caller(token, verb, namespace)).username

    async def caller(
        self,
        token: str,
        verb: str,
        namespace: str,
        resource: str = SEQUENCERUN_PLURAL,
        name: str = "",
    ) -> Caller:
        """Who `token` belongs to, when they may `verb` `resource` (named `name`, if given)
        in `namespace` (a custom verb such as `approve` works the same); AuthError(401) for
        an unknown token, AuthError(403) for a refusal."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        key = (digest, verb, namespace, resource, name)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is None or cached.expires < now:
            cached = await self._review(token, verb, namespace, now, resource, name)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = cached
        if not cached.username:
            raise AuthError(401, "the bearer token was not accepted by the Kubernetes API")
        if not cached.allowed:
            raise AuthError(
                403,
                f"{cached.username} may not {verb} {resource}.{GROUP} in namespace "
                f"{namespace}; grant it with a Role and RoleBinding",
            )
        return Caller(cached.username, cached.groups)

    async def _review(
        self, token: str, verb: str, namespace: str, now: float, resource: str, name: str
    ) -> _Decision:
        who = await self._kube.review_token(token)
        if who is None:
            return _Decision(False, "", now + self._cache_seconds)
        allowed = await self._kube.may(who, verb, namespace, GROUP, resource, name=name or None)
        return _Decision(allowed, who.username, now + self._cache_seconds, tuple(who.groups))
