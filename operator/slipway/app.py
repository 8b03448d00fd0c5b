"""The operator process: kopf's handlers (and, from the engine issue on, the event gateway)."""

from __future__ import annotations

import asyncio
import logging

import kopf

from slipway.settings import Settings

log = logging.getLogger(__name__)

#: Logged once the operator has started watching; tests and probes wait for it.
READY_MESSAGE = "Slipway operator is ready"


async def run_operator(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set or the process is signalled. One replica at a time
    (`standalone`: no peering objects needed; the Deployment uses `strategy: Recreate`)."""
    import slipway.handlers.main  # noqa: F401  (registers the handlers)

    namespaces = [settings.namespace] if settings.namespace else []
    ready = asyncio.Event()

    async def announce() -> None:
        await ready.wait()
        scope = settings.namespace or "all namespaces"
        log.info("%s (watching %s)", READY_MESSAGE, scope)

    announcer = asyncio.create_task(announce(), name="ready announcer")
    try:
        await kopf.operator(
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            memo=kopf.Memo(settings=settings),
            stop_flag=stop,
            ready_flag=ready,
        )
    finally:
        announcer.cancel()
        await asyncio.gather(announcer, return_exceptions=True)
