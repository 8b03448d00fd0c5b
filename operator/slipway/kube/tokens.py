"""Per-execution callback tokens, kept in a Secret owned by the TaskExecution.

A tool proves a response is about *its* execution by sending the token its `.triggered`
event carried; the token is valid for that one TaskExecution and is deleted with it.
"""

from __future__ import annotations

import secrets

from slipway.engine.objects import build_callback_secret, callback_secret_name
from slipway.kube.client import Kube

TOKEN_KEY = "token"


async def ensure_callback_token(
    kube: Kube, namespace: str, execution: str, execution_uid: str, run: str
) -> str:
    """The execution's token: created once (owned by the execution), read afterwards."""
    token = secrets.token_urlsafe(32)
    body = build_callback_secret(
        execution=execution, execution_uid=execution_uid, run=run, key=TOKEN_KEY, token=token
    )
    if await kube.ensure_secret(namespace, body):
        return token
    existing = await read_callback_token(kube, namespace, execution)
    if existing is None:
        raise RuntimeError(f"Secret {callback_secret_name(execution)} exists but has no token")
    return existing


async def read_callback_token(kube: Kube, namespace: str, execution: str) -> str | None:
    """The execution's token, or None when it has none (yet)."""
    data = await kube.secret_data(namespace, callback_secret_name(execution))
    return (data or {}).get(TOKEN_KEY) or None
