"""The errors of `slipway.kube`: what the rest of the operator sees of a failed API call.

No module outside `kube/` imports the Kubernetes client (an import-linter contract says so),
so none can catch the client's own exception type: every call in `kube/` turns it into a
`KubeError` carrying the HTTP status and the API server's message.
"""

from __future__ import annotations

import json
from typing import Any


class KubeError(Exception):
    """An API call failed. `status` is the HTTP status (None: no answer at all), `reason` the
    status text (`Not Found`), `message` what the API server said (or `reason`)."""

    def __init__(self, status: int | None, reason: str, message: str = "") -> None:
        super().__init__(f"{status} {reason}: {message}" if message else f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.message = message or reason

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        """409: AlreadyExists on create, or a stale `resourceVersion` on a write."""
        return self.status == 409

    @property
    def forbidden(self) -> bool:
        return self.status == 403

    @property
    def invalid(self) -> bool:
        """The object was refused as it is (400 Bad Request, 422 Unprocessable)."""
        return self.status in (400, 422)


def from_api_exception(error: Any) -> KubeError:
    """A `KubeError` from the client's ApiException (its `status`, `reason` and JSON `body`)."""
    status = getattr(error, "status", None)
    reason = str(getattr(error, "reason", "") or "error")
    message = ""
    try:
        message = str(json.loads(getattr(error, "body", None) or b"").get("message") or "")
    except (TypeError, ValueError, AttributeError):
        message = ""
    return KubeError(int(status) if status else None, reason, message)
