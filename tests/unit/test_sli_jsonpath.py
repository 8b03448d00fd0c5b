"""The JSONPath subset SLI sources use: parsing, lookup, and the messages when nothing is found."""

from __future__ import annotations

from typing import Any

import pytest

from slipway.providers.sli.jsonpath import JsonPathError, find, parse_path, render_path

DOCUMENT: dict[str, Any] = {
    "latency": {"p95": 412.5, "p50": 120},
    "extract-metadata": {"exif_present": True},
    "items": [{"v": 1}, {"v": 2}, {"v": 3}],
    "key.with.dots": 7,
    "it's": 8,
    "a b": {"c": None},
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", DOCUMENT),
        ("$.latency.p95", 412.5),
        ("$.latency['p50']", 120),
        ('$["latency"]["p50"]', 120),
        ("$.extract-metadata.exif_present", True),
        ("$['extract-metadata'].exif_present", True),
        ("$.items[0].v", 1),
        ("$.items[ 2 ].v", 3),
        ("$.items[-1].v", 3),
        ("$['key.with.dots']", 7),
        ("$['it\\'s']", 8),
        ("$['a b'].c", None),
    ],
)
def test_find_reads_each_supported_step(path: str, expected: Any) -> None:
    """Dotted names (with dashes), quoted keys, and indexes (negative from the end) work."""
    assert find(DOCUMENT, path) == expected


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("$.latency.p99", "$.latency has no key 'p99'"),
        ("$.items[3]", "$.items has 3 element(s): no [3]"),
        ("$.items[-4]", "$.items has 3 element(s): no [-4]"),
        ("$.latency[0]", "$.latency is an object, not a list: no [0]"),
        ("$.latency.p95.x", "$.latency.p95 is a number, not an object: no key 'x'"),
        ("$['a b'].c.d", "$['a b'].c is null, not an object: no key 'd'"),
    ],
)
def test_find_says_how_far_a_missing_path_got(path: str, message: str) -> None:
    """A path that names nothing fails with the part that exists and what was missing."""
    with pytest.raises(JsonPathError) as caught:
        find(DOCUMENT, path)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "path",
    ["latency.p95", "$.", "$..p95", "$.items[*]", "$.items[0:2]", "$[?(@.v>1)]", "$['open", "$x"],
)
def test_paths_outside_the_subset_are_rejected(path: str) -> None:
    """Wildcards, slices, recursive descent, filters and broken quoting are refused clearly."""
    with pytest.raises(JsonPathError, match="JSONPath"):
        parse_path(path)


def test_render_path_gives_a_normal_form_that_parses_back() -> None:
    """Rendering the parsed steps gives a path naming the same value."""
    steps = parse_path("$['a b'].items[-1]['it\\'s'].x-y")
    assert render_path(steps) == "$['a b'].items[-1]['it\\'s'].x-y"
    assert parse_path(render_path(steps)) == steps
