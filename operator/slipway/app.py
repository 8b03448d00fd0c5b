"""The operator process: kopf's handlers (and, from the engine issue on, the event gateway)."""

from __future__ import annotations

import asyncio

import kopf

from slipway.settings import Settings


async def run_operator(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set or the process is signalled. One replica at a time
    (`standalone`: no peering objects needed; the Deployment uses `strategy: Recreate`)."""
    import slipway.handlers.main  # noqa: F401  (registers the handlers)

    namespaces = [settings.namespace] if settings.namespace else []
    await kopf.operator(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        memo=kopf.Memo(settings=settings),
        stop_flag=stop,
    )
