"""The JSONPath subset SLI sources use to find a number in a JSON document.

Supported: the root `$`; member access by name, dotted (`$.latency.p95`, names may contain
`-`, as task names do: `$.extract-metadata.exif`) or bracketed with single or double quotes
(`$['key.with.dots']`, `$["a b"]`, with `\\'`/`\\"`/`\\\\` escapes); array elements by index
(`$.items[0]`, `$.items[-1]` counts from the end). Each path names exactly one value: no
wildcards, slices, recursive descent or filters, because an SLI is one number. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

Step = str | int
"""A member name (str) or an array index (int)."""

_NAME = re.compile(r"[^.\[\]\s'\"]+")
_INDEX = re.compile(r"\[\s*(-?[0-9]+)\s*\]")


class JsonPathError(ValueError):
    """A path outside the supported subset, or one that names nothing in the document."""


def parse_path(text: str) -> tuple[Step, ...]:
    """The steps of `text`; raises JsonPathError saying where it stops making sense."""
    if not text.startswith("$"):
        raise JsonPathError(f"JSONPath {text!r} must start with '$'")
    steps: list[Step] = []
    at = 1
    while at < len(text):
        if text.startswith(".", at):
            name = _NAME.match(text, at + 1)
            if name is None:
                raise JsonPathError(_unsupported(text, at))
            steps.append(name.group())
            at = name.end()
        elif (index := _INDEX.match(text, at)) is not None:
            steps.append(int(index.group(1)))
            at = index.end()
        elif text.startswith(("['", '["'), at):
            key, at = _quoted(text, at + 1)
            if not text.startswith("]", at):
                raise JsonPathError(_unsupported(text, at))
            steps.append(key)
            at += 1
        else:
            raise JsonPathError(_unsupported(text, at))
    return tuple(steps)


def _quoted(text: str, at: int) -> tuple[str, int]:
    """The quoted key starting at `text[at]` (a quote) and the position after its end quote."""
    quote = text[at]
    key: list[str] = []
    at += 1
    while at < len(text):
        char = text[at]
        if char == "\\" and at + 1 < len(text):
            key.append(text[at + 1])
            at += 2
        elif char == quote:
            return "".join(key), at + 1
        else:
            key.append(char)
            at += 1
    raise JsonPathError(f"JSONPath {text!r}: unterminated quoted key")


def _unsupported(text: str, at: int) -> str:
    return f"JSONPath {text!r}: cannot read {text[at:]!r} (supported: .name, ['name'], [index])"


def render_path(steps: Sequence[Step]) -> str:
    """The path back as text, in a normal form (`$.a[0]['b c']`), for messages."""
    parts = ["$"]
    for step in steps:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif _NAME.fullmatch(step):
            parts.append(f".{step}")
        else:
            escaped = step.replace("\\", "\\\\").replace("'", "\\'")
            parts.append(f"['{escaped}']")
    return "".join(parts)


def find(document: Any, path: str) -> Any:
    """The value `path` names in `document` (parsed JSON). Raises JsonPathError when the path
    is invalid or names nothing, saying how far it got."""
    steps = parse_path(path)
    current = document
    for position, step in enumerate(steps):
        where = render_path(steps[:position])
        if isinstance(step, int):
            if not isinstance(current, list):
                raise JsonPathError(f"{where} is {_kind(current)}, not a list: no [{step}]")
            if not -len(current) <= step < len(current):
                raise JsonPathError(f"{where} has {len(current)} element(s): no [{step}]")
            current = current[step]
        elif isinstance(current, Mapping):
            if step not in current:
                raise JsonPathError(f"{where} has no key {step!r}")
            current = current[step]
        else:
            raise JsonPathError(f"{where} is {_kind(current)}, not an object: no key {step!r}")
    return current


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
