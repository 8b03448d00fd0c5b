"""SLI values from the run's data, and how raw JSON values become SLI values."""

from __future__ import annotations

from typing import Any

import pytest

from slipway.engine.scoring import SLIError
from slipway.providers.sli.data import values_from_data
from slipway.providers.sli.values import MAX_ERROR_LENGTH, as_sli_value, error

RUN_DATA = {
    "number": "+44 20 7946 0958",
    "extract-metadata": {"exif_present": True, "fields": 14},
    "geolookup": {"distance_km": "3.5", "matches": [{"score": 0.9}]},
    "author-search": {"hits": None},
}


def test_values_come_from_earlier_tasks_outputs_by_json_path() -> None:
    """Each SLI is the value its path names in the run's data."""
    values = values_from_data(
        {
            "exif": "$.extract-metadata.exif_present",
            "fields": "$['extract-metadata'].fields",
            "distance": "$.geolookup.distance_km",
            "best": "$.geolookup.matches[0].score",
        },
        RUN_DATA,
    )
    assert values == {"exif": 1.0, "fields": 14.0, "distance": 3.5, "best": 0.9}


def test_missing_or_non_numeric_data_fails_only_that_sli() -> None:
    """A path naming nothing, null or text gives that SLI an error saying so."""
    values = values_from_data(
        {
            "gone": "$.reverse-image.hits",
            "hits": "$.author-search.hits",
            "number": "$.number",
            "fields": "$.extract-metadata.fields",
        },
        RUN_DATA,
    )
    assert values["gone"] == SLIError("run data: $ has no key 'reverse-image'")
    assert values["hits"] == SLIError("run data $.author-search.hits is null")
    assert isinstance(values["number"], SLIError)
    assert "not a number" in values["number"].message
    assert values["fields"] == 14.0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (3, 3.0),
        (0.25, 0.25),
        (True, 1.0),
        (False, 0.0),
        (" 1e3 ", 1000.0),
        ("-2", -2.0),
    ],
)
def test_numbers_booleans_and_numeric_strings_are_values(raw: Any, expected: float) -> None:
    """What can be judged as a number is one."""
    assert as_sli_value(raw, "x") == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "x is null"),
        ("n/a", "x is the string 'n/a', not a number"),
        ("NaN", "x is NaN, not a finite number"),
        (float("inf"), "x is inf, not a finite number"),
        ({"v": 1}, "x is an object, not a number"),
        ([1], "x is a list, not a number"),
    ],
)
def test_everything_else_is_an_error(raw: Any, message: str) -> None:
    """Null, text, non-finite numbers and containers are errors naming where they came from."""
    assert as_sli_value(raw, "x") == SLIError(message)


def test_errors_are_one_bounded_line() -> None:
    """Error texts lose their line breaks and are cut to a bounded length."""
    made = error("first line\nsecond line " + "x" * 1000)
    assert "\n" not in made.message
    assert made.message.startswith("first line second line")
    assert len(made.message) == MAX_ERROR_LENGTH
