"""Named crash points for crash-safety tests.

`SLIPWAY_FAULT_POINT=<name>` makes the operator exit at once (as SIGKILL would: no clean-up,
no finally blocks) the first time it reaches the point of that name. Unset (always, outside
tests) every `reach` is a no-op. The points:

- `after-execution-created`: a run created its next TaskExecution but has not recorded it;
- `before-delivery`: an execution recorded its trigger but has not sent `.triggered`;
- `after-delivery`: `.triggered` was delivered, the tool's answer not yet recorded.
"""

from __future__ import annotations

import os
import sys

POINTS = frozenset({"after-execution-created", "before-delivery", "after-delivery"})
_armed: str | None = None


def arm(point: str | None) -> None:
    """Arm `point` (None disarms). Unknown names are an error, so a typo cannot pass a test."""
    global _armed
    if point is not None and point not in POINTS:
        raise ValueError(f"unknown fault point {point!r}; known: {sorted(POINTS)}")
    _armed = point


def reach(point: str) -> None:
    """Exit the process hard if `point` is armed."""
    if _armed == point:
        sys.stderr.write(f"slipway: fault point {point} reached; exiting\n")
        sys.stderr.flush()
        os._exit(137)
