"""parse_duration: Go/Keptn durations to timedelta, and the CRD pattern agreeing with it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from slipway.api.common import DURATION_PATTERN, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("10m", timedelta(minutes=10)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2h45m10s", timedelta(hours=2, minutes=45, seconds=10)),
        ("1.5h", timedelta(minutes=90)),
        (".5s", timedelta(milliseconds=500)),
        ("250ms", timedelta(milliseconds=250)),
        ("10us", timedelta(microseconds=10)),
        ("10µs", timedelta(microseconds=10)),
        ("1500ns", timedelta(microseconds=2)),
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        ("1m1m", timedelta(minutes=2)),
    ],
)
def test_parse_duration_accepts_go_durations(text: str, expected: timedelta) -> None:
    """Every Go duration form Keptn accepted parses to the same length of time."""
    assert parse_duration(text) == expected
    assert re.fullmatch(DURATION_PATTERN, text)


@pytest.mark.parametrize(
    "text",
    ["", "10", "1d", "-5m", "+5m", "m", "1 h", "1h 30m", "1.2.3s", "10M", "ten minutes", "10m\n"],
)
def test_parse_duration_rejects_what_the_crd_rejects(text: str) -> None:
    """Bare numbers, days, signs, blanks and unknown units fail, as the CRD pattern fails them."""
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)
    assert not re.fullmatch(DURATION_PATTERN, text)


def test_parse_duration_error_shows_examples() -> None:
    """The error names the offending text and shows how to write a duration."""
    with pytest.raises(ValueError, match=r"'5 minutes'.*30s, 10m or 1h30m"):
        parse_duration("5 minutes")
