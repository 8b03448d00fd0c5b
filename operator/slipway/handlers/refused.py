"""What a worker does when the API server refuses to store the status it computed.

A status the API server will not store (too large for one object, or invalid) must not be
retried for ever: the worker would fail, restart, compute the same status and fail again. The
object is finished instead with `fail`/`DataTooLarge` (too large) or `Failed` (invalid) and a
small status that drops the large fields, and the worker stops. Limits in `engine.sizes` keep
this from happening; this is the last line behind them.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from slipway.api.common import Reason
from slipway.engine.conditions import SUCCEEDED
from slipway.kube.client import Kube, Ref
from slipway.kube.errors import KubeError

log = logging.getLogger(__name__)


def refused(error: BaseException) -> bool:
    """Whether `error` is the API server refusing a write for its content (413, 422, or an
    etcd "request is too large"), which no retry can fix."""
    if not isinstance(error, KubeError):
        return False
    return error.status in (413, 422) or "too large" in error.message.lower()


def _why(error: KubeError) -> tuple[Reason, str]:
    text = error.message[:300]
    if error.status == 413 or "too large" in text.lower():
        return Reason.DATA_TOO_LARGE, f"the API server refused to store the status: {text}"
    return Reason.FAILED, f"the API server refused the status: {text}"


async def finish_refused(kube: Kube, ref: Ref, error: KubeError, drop: tuple[str, ...]) -> None:
    """Finish `ref` with `fail` and a small status without the fields in `drop` (set to
    null), and log why. Never raises: the worker stops either way."""
    reason, message = _why(error)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    patch: dict[str, Any] = {
        "phase": "Finished",
        "result": "fail",
        "reason": reason.value,
        "message": message,
        "finishedAt": now,
        "conditions": [
            {
                "type": SUCCEEDED,
                "status": "False",
                "reason": reason.value,
                "message": message,
                "lastTransitionTime": now,
            }
        ],
        **dict.fromkeys(drop),
    }
    log.error("%s/%s/%s: %s", ref.plural, ref.namespace, ref.name, message)
    try:
        await kube.patch_status(ref, patch)
    except KubeError as again:
        log.error("%s/%s: even the small status was refused: %s", ref.plural, ref.name, again)
