"""The evaluation window: the span of time the SLI values describe. Pure.

Chosen in this order (the first that applies wins):
1. the task's settings: `start`, `end` (RFC 3339 timestamps such as `2024-05-01T10:00:00Z`, or
   unix seconds) and `timeframe` (a duration such as `10m`), from the task's `properties` in
   the Shipyard or from the run's data under the task's name (`data.evaluate.start`):
   - `start` and `end`: exactly that; `start` and `timeframe`: from `start` for `timeframe`;
     `end` and `timeframe`: the `timeframe` before `end`; `timeframe` alone: the `timeframe`
     before now; `start` alone: from `start` to now; `end` alone: from the run's start to
     `end`; all three at once is an error;
2. the evaluation provider's own `timeframe`: that long, ending now;
3. otherwise: from the run's start (`status.startedAt` of the SequenceRun) to now.
A window must have a positive length.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slipway.api.common import parse_duration


class WindowError(ValueError):
    """The settings do not describe a usable window; the message says why."""


@dataclass(frozen=True)
class Window:
    """A span of time, `start` < `end`, both timezone-aware; `origin` says where it came
    from (for the report)."""

    start: datetime
    end: datetime
    origin: str

    @property
    def seconds(self) -> int:
        """The length in whole seconds, rounded up, at least 1 (PromQL ranges are at least
        one second)."""
        return max(1, math.ceil((self.end - self.start).total_seconds()))


def resolve_window(
    settings: Mapping[str, Any],
    timeframe: str | None,
    run_started_at: datetime | None,
    now: datetime,
) -> Window:
    """The window for an evaluation, by the rules of this module's docstring. `settings` are
    the task's (properties and run data under the task's name); `timeframe` the provider's
    (None: not set); `run_started_at` None when unknown. Raises WindowError."""
    start = _moment(settings.get("start"), "start")
    end = _moment(settings.get("end"), "end")
    raw_length = settings.get("timeframe")
    length = None if raw_length is None else _length(raw_length, "timeframe")
    if start is not None and end is not None and length is not None:
        raise WindowError("set two of start, end and timeframe, not all three")
    if start is not None and end is not None:
        origin = "task"
    elif start is not None:
        origin = "task"
        end = start + length if length is not None else now
    elif end is not None:
        origin = "task"
        start = end - length if length is not None else _run_start(run_started_at)
    elif length is not None:
        origin = "task"
        start, end = now - length, now
    elif timeframe is not None:
        origin = "provider timeframe"
        start, end = now - _length(timeframe, "the provider's timeframe"), now
    else:
        origin = "run"
        start, end = _run_start(run_started_at), now
    if end <= start:
        raise WindowError(
            f"the window from {format_time(start)} to {format_time(end)} is empty: "
            "its end must come after its start"
        )
    return Window(start=start, end=end, origin=origin)


def _run_start(run_started_at: datetime | None) -> datetime:
    if run_started_at is None:
        raise WindowError("the run has no startedAt, and no window is set for the task")
    return _aware(run_started_at)


def _moment(raw: Any, key: str) -> datetime | None:
    if raw is None:
        return None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        try:
            return datetime.fromtimestamp(raw, UTC)
        except (OverflowError, OSError, ValueError):
            raise WindowError(f"{key} {raw!r} is not a usable unix time") from None
    if isinstance(raw, datetime):
        return _aware(raw)
    if isinstance(raw, str):
        try:
            return _aware(datetime.fromisoformat(raw.strip()))
        except ValueError:
            pass
    raise WindowError(
        f"{key} {raw!r} is not a time: write an RFC 3339 timestamp such as "
        "2024-05-01T10:00:00Z, or unix seconds"
    )


def _length(raw: Any, key: str) -> timedelta:
    try:
        length = parse_duration(raw)
    except ValueError as error:
        raise WindowError(f"{key}: {error}") from None
    if length <= timedelta(0):
        raise WindowError(f"{key} must be longer than 0")
    return length


def _aware(moment: datetime) -> datetime:
    """Times without a zone are taken as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, to the millisecond when there are fractions."""
    moment = moment.astimezone(UTC)
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def unix_seconds(moment: datetime) -> str:
    """Unix seconds as PromQL and the query API read them: `1714557600` or, with fractions,
    `1714557600.25` (to the millisecond)."""
    return f"{moment.timestamp():.3f}".rstrip("0").rstrip(".")
