"""The operator process: kopf's handlers and the event gateway, sharing one API client."""

from __future__ import annotations

import asyncio
import ctypes
import logging
from collections.abc import Callable

import aiohttp
import kopf
from aiohttp import web

from slipway import faults, metrics
from slipway.gateway.auth import KubernetesAuthorizer
from slipway.gateway.errors import GatewayRunner
from slipway.gateway.limits import GatewayLimits, data_limits
from slipway.gateway.server import Gateway, build_app
from slipway.gateway.uploads import UploadStore
from slipway.gateway.web import WebOptions
from slipway.handlers.membership import Membership, MemberThread, Rebalancer, default_identity
from slipway.handlers.runtime import Runtime
from slipway.handlers.wakeups import Wakeups
from slipway.kube.client import Kube, connect, default_namespace
from slipway.kube.leases import LeaseStore
from slipway.kube.tokens import signing_key
from slipway.providers.context import DispatchContext
from slipway.settings import Settings

log = logging.getLogger(__name__)

#: Logged once the operator watches and the gateway listens; tests and probes wait for it.
READY_MESSAGE = "Slipway operator is ready"


async def run_operator(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set or the process is signalled. Any number of replicas at once:
    each holds a member Lease and works only the runs it owns (`handlers/membership.py`).
    kopf runs `standalone`: its peering would pause every replica but one."""
    import slipway.handlers.main  # noqa: F401  (registers the handlers)

    faults.arm(settings.fault_point)
    host, _, port = settings.gateway_address.rpartition(":")
    # /metrics on its own port, on the gateway's interface; None: disabled
    stop_metrics = metrics.serve(settings.metrics_port, host or "0.0.0.0")
    kube = Kube(await connect())
    key = await _callback_key(kube, settings)
    wakeups = Wakeups()
    session = aiohttp.ClientSession()
    dispatch = DispatchContext(
        kube=kube,
        session=session,
        gateway_url=settings.gateway_url,
        key=key,
        prefix=settings.event_type_prefix,
        data_limits=data_limits(settings),
    )
    lease_namespace = settings.lease_namespace or settings.namespace or default_namespace()
    membership = Membership(
        None,
        identity=settings.identity or default_identity(),
        scope=settings.namespace,
        duration=settings.lease_duration,
        renew=settings.lease_renew,
    )
    runtime = Runtime.create(settings, dispatch, wakeups, membership, lease_namespace)
    membership.on_change = Rebalancer(membership, runtime.supervisor)
    member = MemberThread(membership, lambda: LeaseStore.open(lease_namespace))
    member.start()
    limits = GatewayLimits.from_settings(settings)
    gateway = Gateway(
        kube=kube,
        authorizer=KubernetesAuthorizer(
            kube,
            settings.gateway_review_cache_seconds,
            negative_cache_seconds=settings.gateway_review_negative_cache_seconds,
            concurrency=settings.gateway_review_concurrency,
            timeout=settings.gateway_api_timeout,
        ),
        wake=wakeups.wake,
        key=key,
        prefix=settings.event_type_prefix,
        limits=limits,
    )
    page = WebOptions(
        kube=kube,
        gateway_url=settings.gateway_url,
        namespace=settings.namespace,
        event_type_prefix=settings.event_type_prefix,
        uploads=UploadStore(
            settings.upload_dir or settings.cache_dir / "uploads", settings.upload_max_bytes
        ),
        upload_grace_seconds=settings.upload_grace_seconds,
        upload_sweep_seconds=settings.upload_sweep_seconds,
    )
    runner = GatewayRunner(build_app(gateway, page), limits, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host or "0.0.0.0", int(port)).start()  # documented default

    namespaces = [settings.namespace] if settings.namespace else []
    ready = gateway.ready  # kopf sets it once it watches; /readyz reports it

    async def announce() -> None:
        await ready.wait()
        scope = settings.namespace or "all namespaces"
        where = f"; metrics on :{settings.metrics_port}" if settings.metrics_port else ""
        log.info(
            "%s (watching %s; gateway on %s%s; member %s)",
            READY_MESSAGE,
            scope,
            settings.gateway_address,
            where,
            membership.identity,
        )

    announcer = asyncio.create_task(announce(), name="ready announcer")
    trimmer = asyncio.create_task(
        release_freed_memory(settings.memory_trim_seconds), name="memory trim"
    )
    try:
        await kopf.operator(
            # Peering off: kopf's peering keeps one operator active and pauses the others
            # (no per-object locks). Replicas split the runs themselves (membership.py).
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            memo=runtime,
            stop_flag=stop,
            ready_flag=ready,
        )
    finally:
        announcer.cancel()
        trimmer.cancel()
        await asyncio.gather(announcer, trimmer, return_exceptions=True)
        await member.stop()  # after kopf stopped the workers: the Lease goes, peers take over
        await runner.cleanup()
        await session.close()
        await kube.close()
        if stop_metrics is not None:
            stop_metrics()


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None on a system without it."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


async def release_freed_memory(seconds: float) -> None:
    """Every `seconds` (0: never), give the memory Python freed back to the system. A run's
    data (up to SLIPWAY_MAX_RUN_DATA_BYTES, several copies per write and watch event) passes
    through the operator as big short-lived strings; glibc keeps the pages they leave, so
    without this the resident memory stays at the peak of a burst of large runs
    (docs/performance.md). Runs in a thread: the event loop is not held."""
    trim = _malloc_trim() if seconds > 0 else None
    if trim is None:
        return
    while True:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(trim, 0)


async def _callback_key(kube: Kube, settings: Settings) -> bytes:
    """The key that signs callback tokens: the setting, else the operator's Secret."""
    if settings.callback_key:
        return settings.callback_key.encode()
    namespace = settings.namespace or default_namespace()
    return await signing_key(kube, namespace, settings.callback_key_secret)
