"""Bounds on the JSON Slipway reads from strangers: nesting depth, keys, string length.

Python's `json` parser recurses once per nesting level, so a body of a hundred thousand `[`
raises RecursionError deep inside it (and a moderately deep one would do so later, in the
data merge or the Kubernetes client). `check_depth` therefore looks at the raw bytes before
anything is parsed: it strips the strings and follows the brackets in C-speed loops, without
recursion. `check_document` walks a parsed document with an explicit stack (its depth is
already bounded) and counts keys and measures strings. Each limit broken raises
`JsonLimitError` (413 for size-like limits, naming the limit and its setting).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Final

from slipway.events.errors import EventError

#: A JSON string: a quote, any characters but quote and backslash or an escape pair, a quote.
_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_STEP: Final = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in _STEP)


class JsonLimitError(EventError):
    """413: the JSON is nested too deeply, has too many keys, or too long a string."""

    status = 413
    error = "json_limit_exceeded"


@dataclass(frozen=True)
class JsonLimits:
    """The bounds; each field is documented with its setting (docs/events.md)."""

    max_depth: int = 32
    max_keys: int = 10_000
    max_string: int = 131_072

    def check(self, raw: bytes, document: Any | None = None) -> None:
        """`check_depth` of `raw`, then `check_document` of `document` if given."""
        check_depth(raw, self.max_depth)
        if document is not None:
            check_document(document, self)


def check_depth(raw: bytes, max_depth: int) -> None:
    """Raise `JsonLimitError` when the arrays and objects of `raw` (JSON text, possibly
    invalid) nest deeper than `max_depth`. Never parses, never recurses: safe on any input."""
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if not brackets:
        return
    deepest = max(accumulate(map(_STEP.__getitem__, brackets)))
    if deepest > max_depth:
        raise JsonLimitError(
            f"the JSON nests {deepest} levels deep; the limit is {max_depth} "
            "(SLIPWAY_GATEWAY_MAX_JSON_DEPTH)"
        )


def check_document(document: Any, limits: JsonLimits) -> None:
    """Raise `JsonLimitError` when `document` has more than `max_keys` object keys in all or a
    string (key or value) longer than `max_string` characters. Iterative: no recursion."""
    keys = 0
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            keys += len(value)
            if keys > limits.max_keys:
                raise JsonLimitError(
                    f"the JSON has more than {limits.max_keys} keys (SLIPWAY_GATEWAY_MAX_JSON_KEYS)"
                )
            for key, item in value.items():
                _check_string(key, limits.max_string)
                stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            _check_string(value, limits.max_string)


def _check_string(value: object, max_string: int) -> None:
    if isinstance(value, str) and len(value) > max_string:
        raise JsonLimitError(
            f"a JSON string is {len(value)} characters long; the limit is {max_string} "
            "(SLIPWAY_GATEWAY_MAX_JSON_STRING)"
        )
