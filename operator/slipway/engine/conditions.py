"""Kubernetes-style conditions: one entry per type, `lastTransitionTime` kept while the status
does not change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slipway.api.common import Condition, ConditionStatus

#: The condition every SequenceRun and TaskExecution carries.
SUCCEEDED = "Succeeded"


def set_condition(
    conditions: Sequence[Condition],
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """`conditions` (wire form) with the condition `type` set to status/reason/message.

    Its `lastTransitionTime` becomes `now` when the condition is new or its status changes,
    and is kept otherwise (a changed reason or message alone is no transition). Other
    conditions are kept as they are, in their order; a new type is appended.
    """
    result: list[dict[str, Any]] = []
    found = False
    for condition in conditions:
        if condition.type != type:
            result.append(condition.to_wire())
            continue
        found = True
        since = condition.last_transition_time
        if condition.status != status or since is None:
            since = now
        result.append(_condition(type, status, reason, message, since, condition))
    if not found:
        result.append(_condition(type, status, reason, message, now, None))
    return result


def _condition(
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    since: datetime,
    previous: Condition | None,
) -> dict[str, Any]:
    return Condition(
        type=type,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=previous.observed_generation if previous else None,
    ).to_wire()


def conditions_with(
    conditions: Sequence[Condition],
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
) -> list[Condition]:
    """`set_condition`, as models (for building a new status model)."""
    return [
        Condition.model_validate(c)
        for c in set_condition(conditions, type, status, reason, message, now)
    ]
