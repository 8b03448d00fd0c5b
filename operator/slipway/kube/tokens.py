"""Per-execution callback tokens, kept in a Secret owned by the TaskExecution.

A tool proves a response is about *its* execution by sending the token its `.triggered`
event carried; the token is valid for that one TaskExecution and is deleted with it.
"""

from __future__ import annotations

import base64
import secrets

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from slipway.constants import API_VERSION, LABEL_RUN
from slipway.kube.client import Kube

TOKEN_KEY = "token"


def callback_secret_name(execution: str) -> str:
    """The Secret holding `execution`'s callback token."""
    return f"{execution}-callback"


async def ensure_callback_token(
    kube: Kube, namespace: str, execution: str, execution_uid: str, run: str
) -> str:
    """The execution's token: created once (owned by the execution), read afterwards."""
    name = callback_secret_name(execution)
    token = secrets.token_urlsafe(32)
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(
            name=name,
            labels={LABEL_RUN: run},
            owner_references=[
                client.V1OwnerReference(
                    api_version=API_VERSION,
                    kind="TaskExecution",
                    name=execution,
                    uid=execution_uid,
                    controller=True,
                    block_owner_deletion=True,
                )
            ],
        ),
        type="Opaque",
        string_data={TOKEN_KEY: token},
    )
    try:
        await kube.core.create_namespaced_secret(namespace, body)
    except ApiException as error:
        if error.status != 409:
            raise
        existing = await read_callback_token(kube, namespace, execution)
        if existing is None:
            raise
        return existing
    return token


async def read_callback_token(kube: Kube, namespace: str, execution: str) -> str | None:
    """The execution's token, or None when it has none (yet)."""
    try:
        secret = await kube.core.read_namespaced_secret(callback_secret_name(execution), namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    encoded = (secret.data or {}).get(TOKEN_KEY)
    return base64.b64decode(encoded).decode() if encoded else None
