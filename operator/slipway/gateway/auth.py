"""Who may call the gateway: Kubernetes identities for people and apps, per-execution tokens
for tools.

Triggers and reads carry `Authorization: Bearer <Kubernetes token>`. The API server decides:
a TokenReview says who the token belongs to, a SubjectAccessReview whether that identity may
`create` (trigger) or `get` (read) sequenceruns in the namespace. RBAC is the access model;
there is no user store here. Answers are cached for a short time so a burst of requests
from one client costs one review; refusals are cached longer (a negative cache), concurrent
requests with the same token share one review, and at most `concurrency` reviews are in
flight: a flood of bad tokens cannot become a flood of TokenReviews. A review that cannot
start or finish within `timeout` seconds raises `UnavailableError` (503 with Retry-After).

Tool responses carry the callback token their `.triggered` event brought, which is valid
for that one TaskExecution only (`engine/tokens.py`, checked by `gateway/server.py`).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass

from slipway.constants import GROUP, SEQUENCERUN_PLURAL
from slipway.gateway.limits import UnavailableError, api_call
from slipway.kube.client import Kube

#: Most cached decisions; past it the expired ones, then the oldest half, are dropped.
MAX_CACHED = 10_000


class AuthError(Exception):
    """The caller is not allowed; `status` is 401 (who are you?) or 403 (not you)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer …` header; AuthError(401) otherwise (also for a
    token that is not printable ASCII: no Kubernetes or callback token is, and the header may
    carry bytes that are not even UTF-8)."""
    if not authorization:
        raise AuthError(401, "send `Authorization: Bearer <token>` (a Kubernetes token)")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "the Authorization header must be `Bearer <token>`")
    token = token.strip()
    if not (token.isascii() and token.isprintable()):  # tokens are printable ASCII
        raise AuthError(401, "the bearer token must be printable ASCII characters")
    return token


#: A cached decision's key: token digest, verb, namespace, resource, name.
_Key = tuple[str, str, str, str, str]


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

    def __init__(
        self,
        kube: Kube,
        cache_seconds: float = 10.0,
        *,
        negative_cache_seconds: float = 30.0,
        concurrency: int = 8,
        timeout: float = 5.0,
    ) -> None:
        self._kube = kube
        self._cache: dict[_Key, _Decision] = {}
        self._cache_seconds = cache_seconds
        self._negative_seconds = negative_cache_seconds
        self._slots = asyncio.Semaphore(concurrency)
        self._timeout = timeout
        self._pending: dict[_Key, asyncio.Future[_Decision]] = {}

    async def authorize(self, token: str, verb: str, namespace: str) -> str:
        """The username behind `token` when it may `verb` sequenceruns in `namespace`;
        raises AuthError(401) for an unknown token and AuthError(403) for a refusal."""
        return (await self.caller(token, verb, namespace)).username

    async def identify(self, token: str) -> Caller:
        """Who `token` belongs to (a TokenReview only, cached like the rest);
        AuthError(401) for an unknown token."""
        return await self.caller(token, "", "")

    async def caller(
        self,
        token: str,
        verb: str,
        namespace: str,
        resource: str = SEQUENCERUN_PLURAL,
        name: str = "",
    ) -> Caller:
        """Who `token` belongs to, when they may `verb` `resource` (named `name`, if given)
        in `namespace` (a custom verb such as `approve` works the same; an empty `verb` asks
        nothing but who); AuthError(401) for an unknown token, AuthError(403) for a refusal."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        key = (digest, verb, namespace, resource, name)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is None or cached.expires < now:
            cached = await self._shared_review(key, token, verb, namespace, resource, name)
        if not cached.username:
            raise AuthError(401, "the bearer token was not accepted by the Kubernetes API")
        if not cached.allowed:
            raise AuthError(
                403,
                f"{cached.username} may not {verb} {resource}.{GROUP} in namespace "
                f"{namespace}; grant it with a Role and RoleBinding",
            )
        return Caller(cached.username, cached.groups)

    async def _shared_review(
        self, key: _Key, token: str, verb: str, namespace: str, resource: str, name: str
    ) -> _Decision:
        """One review per key at a time: concurrent callers wait for the same answer."""
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[_Decision] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            decision = await self._bounded_review(token, verb, namespace, resource, name)
        except BaseException as error:
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved here: waiters re-raise it themselves
            raise
        else:
            future.set_result(decision)
            self._remember(key, decision)
            return decision
        finally:
            del self._pending[key]

    async def _bounded_review(
        self, token: str, verb: str, namespace: str, resource: str, name: str
    ) -> _Decision:
        try:
            await asyncio.wait_for(self._slots.acquire(), self._timeout)
        except TimeoutError:
            raise UnavailableError(
                "too many token reviews are waiting for the Kubernetes API server "
                "(SLIPWAY_GATEWAY_REVIEW_CONCURRENCY)",
                "busy",
            ) from None
        try:
            return await self._review(token, verb, namespace, resource, name)
        finally:
            self._slots.release()

    def _remember(self, key: _Key, decision: _Decision) -> None:
        if len(self._cache) >= MAX_CACHED:
            now = time.monotonic()
            for old in [k for k, d in self._cache.items() if d.expires < now]:
                del self._cache[old]
            if len(self._cache) >= MAX_CACHED:  # still full: drop the oldest half
                for old in list(self._cache)[: MAX_CACHED // 2]:
                    del self._cache[old]
        self._cache[key] = decision

    async def _review(
        self, token: str, verb: str, namespace: str, resource: str, name: str
    ) -> _Decision:
        who = await api_call(self._kube.review_token(token), self._timeout)
        if who is None:
            return _Decision(False, "", time.monotonic() + self._negative_seconds)
        if not verb:  # who, nothing more
            return _Decision(
                True, who.username, time.monotonic() + self._cache_seconds, tuple(who.groups)
            )
        allowed = await api_call(
            self._kube.may(who, verb, namespace, GROUP, resource, name=name or None),
            self._timeout,
        )
        seconds = self._cache_seconds if allowed else self._negative_seconds
        return _Decision(allowed, who.username, time.monotonic() + seconds, tuple(who.groups))
