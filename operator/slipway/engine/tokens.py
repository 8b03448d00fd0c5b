"""Callback tokens: one operator key signs a token per TaskExecution; nothing is stored.

A tool proves a response is about *its* execution by sending, as a bearer token, what its
`.triggered` event carried. The token is an HMAC-SHA256, under the operator's key, of the
namespace, the execution's name and uid, and an expiry: valid for that one execution (a
later execution of the same name has another uid) until it expires, verified without any
API read or write. The same execution always gets the same token (the expiry comes from its
creation time), so a re-sent `.triggered` is the same event.

    v1.<expiry, Unix seconds>.<signature, base64url without padding>
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

VERSION = "v1"
#: How long after its execution was created a token is accepted.
LIFETIME = timedelta(days=7)


def _signature(key: bytes, namespace: str, execution: str, uid: str, expires: int) -> str:
    message = "\n".join((VERSION, namespace, execution, uid, str(expires))).encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_callback_token(
    key: bytes, *, namespace: str, execution: str, uid: str, created: datetime
) -> str:
    """The token of execution `namespace/execution` (uid `uid`, created at `created`)."""
    expires = int((created + LIFETIME).timestamp())
    return f"{VERSION}.{expires}.{_signature(key, namespace, execution, uid, expires)}"


def check_callback_token(
    key: bytes, token: str, *, namespace: str, execution: str, uid: str, now: datetime
) -> str | None:
    """None when `token` is the token of that execution and has not expired; otherwise why
    not (for the 403's message; it never tells what the right token would be)."""
    version, _, rest = token.partition(".")
    expires_text, _, signature = rest.partition(".")
    if version != VERSION or not expires_text.isdigit() or not signature:
        return "the token is not a Slipway callback token"
    expected = _signature(key, namespace, execution, uid, int(expires_text))
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return f"the token is not the callback token of {execution}"
    if now.timestamp() > int(expires_text):
        return f"the callback token of {execution} has expired"
    return None
