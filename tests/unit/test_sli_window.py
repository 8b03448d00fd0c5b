"""The evaluation window and the placeholders Prometheus queries get from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slipway.providers.sli.prometheus import placeholders, substitute
from slipway.providers.sli.window import (
    Window,
    WindowError,
    format_time,
    resolve_window,
    unix_seconds,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
RUN_START = datetime(2024, 5, 1, 11, 50, 0, tzinfo=UTC)


def _at(minutes: float) -> datetime:
    """`minutes` after 12:00 (negative: before)."""
    return NOW + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("settings", "timeframe", "start", "end", "origin"),
    [
        ({}, None, RUN_START, NOW, "run"),
        ({}, "5m", _at(-5), NOW, "provider timeframe"),
        ({"timeframe": "10m"}, "5m", _at(-10), NOW, "task"),
        (
            {"start": "2024-05-01T11:00:00Z", "end": "2024-05-01T11:30:00+00:00"},
            "5m",
            _at(-60),
            _at(-30),
            "task",
        ),
        ({"start": "2024-05-01T11:00:00Z", "timeframe": "15m"}, None, _at(-60), _at(-45), "task"),
        ({"end": "2024-05-01T11:55:00Z", "timeframe": "1m"}, None, _at(-6), _at(-5), "task"),
        ({"start": "2024-05-01T11:40:00Z"}, None, _at(-20), NOW, "task"),
        ({"end": "2024-05-01T11:55:00Z"}, None, RUN_START, _at(-5), "task"),
        ({"start": NOW.timestamp() - 120, "end": NOW.timestamp()}, None, _at(-2), NOW, "task"),
        ({"start": "2024-05-01T11:40:00"}, None, _at(-20), NOW, "task"),
    ],
)
def test_window_is_chosen_by_the_documented_order(
    settings: dict[str, Any], timeframe: str | None, start: datetime, end: datetime, origin: str
) -> None:
    """Task settings win over the provider's timeframe, which wins over the run's start."""
    window = resolve_window(settings, timeframe, RUN_START, NOW)
    assert (window.start, window.end, window.origin) == (start, end, origin)


@pytest.mark.parametrize(
    ("settings", "run_start", "message"),
    [
        (
            {"start": "2024-05-01T11:00:00Z", "end": "2024-05-01T12:00:00Z", "timeframe": "1m"},
            RUN_START,
            "not all three",
        ),
        ({"start": "yesterday"}, RUN_START, "'yesterday' is not a time"),
        ({"timeframe": "five minutes"}, RUN_START, "invalid duration"),
        ({"timeframe": "0"}, RUN_START, "longer than 0"),
        ({"start": "2024-05-01T12:30:00Z"}, RUN_START, "end must come after its start"),
        ({}, None, "the run has no startedAt"),
        ({"end": "2024-05-01T11:00:00Z"}, None, "the run has no startedAt"),
    ],
)
def test_unusable_windows_are_errors_that_say_why(
    settings: dict[str, Any], run_start: datetime | None, message: str
) -> None:
    """Contradicting, unparsable or empty windows raise WindowError with the reason."""
    with pytest.raises(WindowError, match=message):
        resolve_window(settings, None, run_start, NOW)


def test_window_seconds_round_up_and_are_at_least_one() -> None:
    """PromQL ranges are whole seconds, at least one."""
    assert Window(NOW, NOW + timedelta(seconds=299.2), "run").seconds == 300
    assert Window(NOW, NOW + timedelta(milliseconds=10), "run").seconds == 1


def test_times_are_written_as_rfc3339_and_unix_seconds() -> None:
    """Reports show RFC 3339 in UTC; queries get unix seconds, with fractions when there are."""
    assert format_time(NOW) == "2024-05-01T12:00:00Z"
    assert format_time(NOW + timedelta(milliseconds=250)) == "2024-05-01T12:00:00.250Z"
    assert unix_seconds(NOW) == "1714564800"
    assert unix_seconds(NOW + timedelta(milliseconds=250)) == "1714564800.25"


IDENTITY = {"STAGE": "dev", "RUN": "run-1"}


def test_placeholders_cover_window_filter_and_identity() -> None:
    """$DURATION/$DURATION_SECONDS are `<n>s`, $START/$END unix seconds, filter keys appear as
    written and in capitals with quotes escaped, and a filter key may replace an identity one."""
    window = Window(_at(-5), NOW, "task")
    values = placeholders(
        window, {"handler": 'say "hi"', "stage": "prod", "DURATION": "1h"}, IDENTITY
    )
    assert values["DURATION"] == values["DURATION_SECONDS"] == "300s"
    assert values["START"] == "1714564500"
    assert values["END"] == "1714564800"
    assert values["handler"] == values["HANDLER"] == 'say \\"hi\\"'
    assert values["STAGE"] == "prod"
    assert values["RUN"] == "run-1"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("rate(x[$DURATION])", "rate(x[300s])"),
        ("rate(x[$DURATION_SECONDS])", "rate(x[300s])"),
        ('x{h="$handler",s="$STAGE"} @ $END', 'x{h="api",s="dev"} @ 1714564800'),
        ("$DURATIONS + $UNKNOWN + $handler_x", "$DURATIONS + $UNKNOWN + $handler_x"),
        ("$$DURATION", "$300s"),
    ],
)
def test_substitute_replaces_whole_names_only(query: str, expected: str) -> None:
    """A placeholder is replaced only as a whole name; unknown `$names` are left as they are."""
    values = placeholders(Window(_at(-5), NOW, "task"), {"handler": "api"}, IDENTITY)
    assert substitute(query, values) == expected
