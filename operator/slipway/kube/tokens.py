"""The operator's callback key, and the Secret that hands a Job's container its token.

Tokens are signed (`engine/tokens.py`): no Secret per execution. The key is read once at
start-up: from the settings, or from one Secret in the operator's namespace that the first
operator to start creates (every replica then reads the same key).
"""

from __future__ import annotations

import logging
import secrets

from slipway.engine.objects import build_callback_secret
from slipway.kube.client import Kube

log = logging.getLogger(__name__)

#: The key in the callback-key Secret, and in a Job's token Secret.
KEY_FIELD = "key"
TOKEN_KEY = "token"


async def signing_key(kube: Kube, namespace: str, secret: str) -> bytes:
    """The key in Secret `namespace/secret`, created now (a random one) if there is none."""
    data = await kube.secret_data(namespace, secret)
    if data is None or not data.get(KEY_FIELD):
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret},
            "type": "Opaque",
            "stringData": {KEY_FIELD: secrets.token_urlsafe(48)},
        }
        if await kube.ensure_secret(namespace, body):
            log.info("created the callback key in Secret %s/%s", namespace, secret)
        data = await kube.secret_data(namespace, secret)
    key = (data or {}).get(KEY_FIELD)
    if not key:
        raise RuntimeError(f"Secret {namespace}/{secret} holds no {KEY_FIELD!r}")
    return key.encode()


async def ensure_job_token(
    kube: Kube, namespace: str, execution: str, execution_uid: str, run: str, token: str
) -> None:
    """The Secret a Job's container reads its callback token from (the Job's own spec is
    readable by anyone who may read Jobs), owned by the execution: created once for its
    first Job; the token is the same for every attempt."""
    body = build_callback_secret(
        execution=execution, execution_uid=execution_uid, run=run, key=TOKEN_KEY, token=token
    )
    await kube.ensure_secret(namespace, body)
