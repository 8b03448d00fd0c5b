"""The process's one asynchronous Kubernetes client and every call the operator makes with it.

This package is the only one that imports the Kubernetes client (an import-linter contract
in `pyproject.toml` enforces it, the CLI included). Everything else calls `Kube`'s methods,
passes and receives plain dicts, and sees failures as `slipway.kube.errors.KubeError`.

kubernetes_asyncio is used (not the synchronous `kubernetes` package) because every call
the operator, the gateway and the CLI make runs on an event loop: a blocking client would
stall every handler while it waits for the API server. One `ApiClient` (one connection pool)
is made at start-up and shared.

Write patterns, each idempotent or safe to retry:
- `ensure_created`: create, and treat 409 AlreadyExists as done (deterministic names make
  a retry or a restart find its earlier work instead of creating a twin);
- `patch_status`: a JSON merge patch of the status subresource;
- `update_status`: read, compute, and patch with the read `resourceVersion` as a
  precondition, retried on 409 Conflict — for fields that several writers change (the
  operator and the gateway both record provider responses), so no write is lost.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import urllib.request
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from slipway import metrics
from slipway.constants import GROUP, VERSION
from slipway.kube.errors import KubeError, from_api_exception

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
Body = dict[str, Any]
Bodies = list[Body]

#: Called just before a write; refuses it by raising (see `Kube.ensure_created`).
Fence = Callable[[], None]

#: Attempts of `update_status` before it gives up on an object that keeps changing.
UPDATE_ATTEMPTS = 8


@dataclass(frozen=True)
class Ref:
    """A namespaced custom object of our API group."""

    plural: str
    namespace: str
    name: str


@dataclass(frozen=True)
class Identity:
    """Who a bearer token belongs to, as a TokenReview says."""

    username: str
    uid: str | None
    groups: list[str]
    extra: dict[str, list[str]]


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Turn the client's ApiException into a KubeError."""
    try:
        yield
    except ApiException as error:
        raise from_api_exception(error) from None


async def connect(kubeconfig: str | None = None) -> client.ApiClient:
    """An ApiClient for the in-cluster service account when running in a pod, otherwise
    for `kubeconfig` (default: $KUBECONFIG or ~/.kube/config, as kubectl does)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]  # untyped upstream
        api = client.ApiClient()
    except config.ConfigException:
        api = await config.new_client_from_config(config_file=kubeconfig)
    _no_proxy_lookups(api)
    return metrics.instrument_kube(api)


def _no_proxy_lookups(api: client.ApiClient) -> None:
    """The client's session trusts the environment (`trust_env`): before every request
    aiohttp then looks up proxies and reads ~/.netrc in a worker thread — a thread hop and
    file reads per API call, an eighth of the operator's CPU in a profile. With no proxy
    variable set there is nothing to find, so the session stops looking; with one set,
    nothing changes. (`getproxies` is what aiohttp itself asks.)"""
    if urllib.request.getproxies():
        return
    session = getattr(getattr(api, "rest_client", None), "pool_manager", None)
    if session is not None and hasattr(session, "_trust_env"):
        session._trust_env = False  # aiohttp has no public setter; read per request


async def open_kube(kubeconfig: str | None = None) -> Kube:
    """A `Kube` over a new client (see `connect`); the caller closes it."""
    return Kube(await connect(kubeconfig))


def default_namespace(kubeconfig: str | None = None) -> str:
    """The namespace kubectl would use: the current kubeconfig context's, in a pod the pod's,
    else `default`. Raises KubeError when there is neither a kubeconfig nor a pod."""
    try:
        _, context = config.list_kube_config_contexts(config_file=kubeconfig)
        return str((context or {}).get("context", {}).get("namespace") or "default")
    except (config.ConfigException, OSError) as error:
        try:
            with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as file:
                return file.read().strip() or "default"
        except OSError:
            raise KubeError(None, "no cluster", str(error)) from None


class Kube:
    """Typed helpers over one ApiClient. Every method raises KubeError on errors it does not
    handle itself (as documented per method); callers decide whether to retry."""

    def __init__(self, api: client.ApiClient, remember: int = 4096) -> None:
        self._api = api
        self._written: OrderedDict[Ref, Body] = OrderedDict()
        self._remember = remember
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)
        self._batch = client.BatchV1Api(api)
        self._authn = client.AuthenticationV1Api(api)
        self._authz = client.AuthorizationV1Api(api)

    async def close(self) -> None:
        await self._api.close()

    @property
    def api(self) -> client.ApiClient:
        """The ApiClient under this object (for the few calls of other API groups that share
        its connection pool, e.g. `kube.leases`)."""
        return self._api

    def bearer_token(self) -> str | None:
        """The bearer token this client authenticates with (a kubeconfig user's `token`, or
        the pod's service account); None when it uses client certificates or nothing."""
        keys = self._api.configuration.api_key or {}
        found = keys.get("BearerToken") or keys.get("authorization") or ""  # "Bearer <token>"
        scheme, _, token = str(found).partition(" ")
        return (token.strip() or None) if scheme.lower() == "bearer" else None

    # ------------------------------------------------------------ this process's writes
    def written(self, ref: Ref) -> Body | None:
        """The object as this process last created it or wrote its status (None: not
        recently). A worker
        compares it with its watch's copy (`newest`): the write is known before the watch
        brings it back."""
        return self._written.get(ref)

    def _wrote(self, ref: Ref, body: Body) -> Body:
        self._written[ref] = body
        self._written.move_to_end(ref)
        while len(self._written) > self._remember:
            self._written.popitem(last=False)
        return body

    def forget(self, ref: Ref) -> None:
        """Drop what `written` keeps of `ref` (its worker finished)."""
        self._written.pop(ref, None)

    # ------------------------------------------------------------ custom objects
    async def get(self, ref: Ref) -> Body | None:
        """The object, or None when it does not exist."""
        try:
            with _translated():
                body: Body = await self._custom.get_namespaced_custom_object(
                    GROUP, VERSION, ref.namespace, ref.plural, ref.name
                )
        except KubeError as error:
            if error.not_found:
                return None
            raise
        return body

    async def list(self, plural: str, namespace: str, label_selector: str = "") -> list[Body]:
        with _translated():
            result = await self._custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, label_selector=label_selector
            )
        items: list[Body] = result.get("items", [])
        return items

    async def list_all(
        self, plural: str, namespace: str | None, label_selector: str = ""
    ) -> Bodies:
        """Every object of `plural` in `namespace`, or in every namespace when None."""
        if namespace is not None:
            return await self.list(plural, namespace, label_selector)
        with _translated():
            result = await self._custom.list_cluster_custom_object(
                GROUP, VERSION, plural, label_selector=label_selector
            )
        items: Bodies = result.get("items", [])
        return items

    async def delete(self, ref: Ref, uid: str) -> bool:
        """Delete the object only if it is still the one seen (`uid` precondition), leaving
        what it owns to the garbage collector (background propagation: one request, and the
        object is gone at once). True when deleted now; False when it was already gone or
        replaced by a namesake."""
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=uid), propagation_policy="Background"
        )
        try:
            with _translated():
                await self._custom.delete_namespaced_custom_object(
                    GROUP, VERSION, ref.namespace, ref.plural, ref.name, body=options
                )
        except KubeError as error:
            if error.not_found or error.conflict:
                return False
            raise
        return True

    async def ensure_created(
        self, plural: str, namespace: str, body: Body, fence: Fence | None = None
    ) -> Body | None:
        """Create `body`; the object as created now, or None when it already existed.
        `fence`, when given, is called just before the request and may refuse by raising
        (a replica that no longer owns the object's run: `handlers/membership.py`)."""
        if fence is not None:
            fence()
        try:
            with _translated():
                created: Body = await self._custom.create_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, body
                )
        except KubeError as error:
            if error.conflict:
                return None
            raise
        return self._wrote(Ref(plural, namespace, created["metadata"]["name"]), created)

    async def patch(self, ref: Ref, patch: Body) -> Body:
        """A JSON merge patch of the object itself (metadata, spec)."""
        with _translated():
            body: Body = await self._custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                ref.namespace,
                ref.plural,
                ref.name,
                patch,
                _content_type=MERGE_PATCH,  # type: ignore[call-arg]  # stubs omit **kwargs
            )
        return body

    async def patch_status(
        self, ref: Ref, status: Body, version: str | None = None, fence: Fence | None = None
    ) -> Body:
        """A JSON merge patch of the status subresource; with `version`, applied only if the
        object still has that `resourceVersion` (else KubeError 409). `fence` as for
        `ensure_created`."""
        patch: Body = {"status": status}
        if version is not None:
            patch["metadata"] = {"resourceVersion": version}
        if fence is not None:
            fence()
        with _translated():
            body: Body = await self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                ref.namespace,
                ref.plural,
                ref.name,
                patch,
                _content_type=MERGE_PATCH,  # type: ignore[call-arg]  # stubs omit **kwargs
            )
        return self._wrote(ref, body)

    async def update_status(
        self,
        ref: Ref,
        change: Callable[[Body], Body | None],
        attempts: int = UPDATE_ATTEMPTS,
        known: Body | None = None,
        fence: Fence | None = None,
    ) -> Body | None:
        """Let `change` compute a status patch from the object (None: nothing to do) and
        apply it only if the object did not change meanwhile; on a conflict, read again and
        recompute. `known`, a recent copy of the object (e.g. kopf's view from its watch;
        default: this process's last write of it, if any), saves the first read: if it is
        stale the patch conflicts and the loop reads. `fence`, when given, is called before
        each attempt's write and may refuse by raising (as for `ensure_created`). Returns
        the patched object, or None when `change` declined or the object is gone. Raises
        KubeError (409) when the object kept changing for `attempts` tries."""
        known = known if known is not None else self.written(ref)
        for _ in range(attempts):
            current = known if known is not None else await self.get(ref)
            known = None
            if current is None:
                return None
            patch = change(current)
            if patch is None:
                return None
            version = current["metadata"]["resourceVersion"]
            if fence is not None:
                fence()
            try:
                with _translated():
                    body: Body = await self._custom.patch_namespaced_custom_object_status(
                        GROUP,
                        VERSION,
                        ref.namespace,
                        ref.plural,
                        ref.name,
                        {"metadata": {"resourceVersion": version}, "status": patch},
                        _content_type=MERGE_PATCH,  # type: ignore[call-arg]  # stubs omit **kwargs
                    )
            except KubeError as error:
                if error.conflict:
                    continue
                if error.not_found:
                    return None
                raise
            return self._wrote(ref, body)
        raise KubeError(409, "Conflict", f"{ref.plural}/{ref.name}: status kept changing")

    async def list_with_version(
        self,
        plural: str,
        namespace: str | None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> tuple[Bodies, str]:
        """The objects of `plural` in `namespace` (every namespace when None) matching the
        selectors, and the list's resourceVersion to watch from (the web page's routes)."""
        selectors: dict[str, Any] = {}
        if label_selector:
            selectors["label_selector"] = label_selector
        if field_selector:
            selectors["field_selector"] = field_selector
        with _translated():
            if namespace:
                result = await self._custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, **selectors
                )
            else:
                result = await self._custom.list_cluster_custom_object(
                    GROUP, VERSION, plural, **selectors
                )
        items: Bodies = result.get("items", [])
        return items, str(result.get("metadata", {}).get("resourceVersion", ""))

    async def watch_changes(
        self,
        plural: str,
        namespace: str,
        resource_version: str,
        seconds: int,
        label_selector: str = "",
        field_selector: str = "",
    ) -> AsyncGenerator[tuple[str, Body], None]:
        """(event type, object) of every change of the matching objects after
        `resource_version`, for at most `seconds`. Ends early, without raising, when the API
        server or the connection ends the watch: callers list again and start over."""
        stream = watch.Watch()
        try:
            async for event in stream.stream(
                self._custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                label_selector=label_selector or None,
                field_selector=field_selector or None,
                resource_version=resource_version,
                timeout_seconds=max(1, seconds),
            ):
                obj = event.get("object")
                if isinstance(obj, dict) and event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    yield str(event["type"]), obj
        except ApiException as error:
            log.info("watch of %s in %s ended early: %s", plural, namespace, error.reason)
        except (TimeoutError, OSError) as error:
            log.info("watch of %s in %s ended early: %s", plural, namespace, error)
        finally:
            stream.stop()
            await stream.close()

    # ------------------------------------------------------------ Secrets
    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """Each key of Secret `name`, decoded (UTF-8, invalid bytes replaced); None when it
        does not exist."""
        try:
            with _translated():
                secret = await self._core.read_namespaced_secret(name, namespace)
        except KubeError as error:
            if error.not_found:
                return None
            raise
        return {
            key: base64.b64decode(value).decode("utf-8", "replace")
            for key, value in (secret.data or {}).items()
        }

    async def secret_headers(self, namespace: str, name: str) -> dict[str, str]:
        """Each key of Secret `name` as an HTTP header (a TaskProvider's or an SLI source's
        `headersFrom`), its value without surrounding whitespace (a Secret made from a file
        often ends with a newline). KubeError (404) when the Secret does not exist."""
        data = await self.secret_data(namespace, name)
        if data is None:
            raise KubeError(404, "Not Found", f"Secret {name} not found in {namespace}")
        return {key: value.strip() for key, value in data.items()}

    async def ensure_secret(self, namespace: str, body: Body) -> bool:
        """Create Secret `body`; True when created now, False when it already existed."""
        try:
            with _translated():
                await self._core.create_namespaced_secret(namespace, body)  # type: ignore[arg-type]  # a dict is sent as it is
        except KubeError as error:
            if error.conflict:
                return False
            raise
        return True

    # ------------------------------------------------------------ Jobs and Pods
    async def create_job(self, namespace: str, body: Body) -> None:
        """Create Job `body` (KubeError 409 when one of that name exists)."""
        with _translated():
            await self._batch.create_namespaced_job(namespace, body)  # type: ignore[arg-type]  # a dict is sent as it is

    async def read_job(self, namespace: str, name: str) -> Body | None:
        """Job `name` as a dict (camelCase, as the API serves it), None when missing."""
        try:
            with _translated():
                found = await self._batch.read_namespaced_job(name, namespace)
        except KubeError as error:
            if error.not_found:
                return None
            raise
        job: Body = self._api.sanitize_for_serialization(found)
        return job

    async def list_pods(self, namespace: str, label_selector: str) -> Bodies:
        with _translated():
            listed = await self._core.list_namespaced_pod(namespace, label_selector=label_selector)
        pods: Bodies = self._api.sanitize_for_serialization(listed).get("items", [])
        return pods

    async def delete_job(self, namespace: str, name: str, propagation: str) -> bool:
        """Delete Job `name` (404 is fine). True when a deletion was requested now."""
        try:
            with _translated():
                await self._batch.delete_namespaced_job(
                    name, namespace, propagation_policy=propagation
                )
        except KubeError as error:
            if error.not_found:
                return False
            raise
        return True

    # ------------------------------------------------------------ Events
    async def post_event(self, body: Mapping[str, Any]) -> bool:
        """Create Event `body` (built by `engine.objects.build_event`). A refusal is logged,
        not raised: the state it tells of is in a status already. True when posted."""
        namespace = body["metadata"]["namespace"]
        try:
            with _translated():
                await self._core.create_namespaced_event(namespace, dict(body))  # type: ignore[arg-type]  # a dict is sent as it is
        except KubeError as error:
            log.warning("cannot post an Event in %s: %s", namespace, error)
            return False
        return True

    # ------------------------------------------------------------ reviews
    async def review_token(self, token: str) -> Identity | None:
        """Who `token` belongs to (a TokenReview); None when the API server rejects it."""
        with _translated():
            review = await self._authn.create_token_review(
                client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
            )
        status = review.status
        if not status or not status.authenticated or not status.user:
            return None
        user = status.user
        return Identity(
            username=str(user.username),
            uid=user.uid,
            groups=list(user.groups or []),
            extra=dict(user.extra or {}),
        )

    async def may(
        self,
        who: Identity,
        verb: str,
        namespace: str,
        group: str,
        resource: str,
        name: str | None = None,
    ) -> bool:
        """Whether `who` may `verb` `resource` (the one called `name`, if given) of `group`
        in `namespace` (a SubjectAccessReview; a custom verb such as `approve` works too)."""
        with _translated():
            access = await self._authz.create_subject_access_review(
                client.V1SubjectAccessReview(
                    spec=client.V1SubjectAccessReviewSpec(
                        user=who.username,
                        uid=who.uid,
                        groups=who.groups,
                        extra=who.extra,
                        resource_attributes=client.V1ResourceAttributes(
                            namespace=namespace,
                            verb=verb,
                            group=group,
                            resource=resource,
                            name=name,
                        ),
                    )
                )
            )
        return bool(access.status and access.status.allowed)


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
