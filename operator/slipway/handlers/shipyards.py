"""A Shipyard's `Ready` condition: what the schema could not check, checked here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from slipway.api.common import ConditionStatus
from slipway.api.shipyard import ShipyardSpec, ShipyardStatus
from slipway.engine.conditions import set_condition
from slipway.engine.decisions import KubeEvent
from slipway.engine.objects import build_event, involved
from slipway.engine.shipyard import Problem, describe, validate_shipyard
from slipway.kube.events import EventPoster


def check(body: Mapping[str, Any], patch: kopf.Patch, events: EventPoster) -> None:
    """Set `Ready` True, or False with the first problem's reason and every problem's
    message; a change of verdict is also posted as a Kubernetes Event."""
    try:
        problems = validate_shipyard(ShipyardSpec.model_validate(body.get("spec") or {}))
    except ValidationError as error:
        problems = [Problem("InvalidSpec", str(error).replace("\n", " "), "spec")]
    status = ShipyardStatus.model_validate(body.get("status") or {})
    ready = ConditionStatus.FALSE if problems else ConditionStatus.TRUE
    reason = problems[0].reason if problems else "Valid"
    message = describe(problems) if problems else "every link and selector names what exists"
    before = next((c for c in status.conditions if c.type == "Ready"), None)
    patch.status["observedGeneration"] = body["metadata"].get("generation")
    patch.status["conditions"] = set_condition(
        status.conditions, "Ready", ready, reason, message, datetime.now(UTC)
    )
    if before is None or before.status != ready or before.message != message:
        meta = body["metadata"]
        event = KubeEvent(
            "Warning" if problems else "Normal", reason if problems else "Ready", message
        )
        about = involved("Shipyard", meta["namespace"], meta["name"], meta["uid"])
        events.post(build_event(about, event, datetime.now(UTC)))
