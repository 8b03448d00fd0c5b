"""The one module that registers every kopf handler of the operator.

Each handler is a few lines that delegate to a `handle_*` module; business rules live in
`slipway.engine`. `configure` is the single place where kopf's settings are chosen.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from slipway.constants import ANNOTATION_PREFIX, FINALIZER


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Every kopf setting the operator changes, each with its reason."""
    # Our own finalizer name, so `kubectl get -o yaml` says whose it is.
    settings.persistence.finalizer = FINALIZER
    # Keep kopf's bookkeeping under our own prefix, not kopf.zalando.org/…, so it never
    # collides with another kopf operator watching the same objects.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    # Ask the API server to end each watch after 5 minutes and give the client a little
    # longer: a silently dropped connection is noticed within minutes, not never.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    # Only warnings and errors from kopf become Kubernetes Events; the operator posts its
    # own Events for every run transition, so kopf's per-handler chatter would be noise.
    settings.posting.level = logging.WARNING
    # Bound every API call so a hung connection cannot stall a handler forever.
    settings.networking.request_timeout = 60
