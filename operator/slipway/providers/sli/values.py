"""Turning what a source returned into an SLI value (a number or an `SLIError`). Pure."""

from __future__ import annotations

import math
from typing import Any

from slipway.engine.scoring import SLIError, SLIValue

MAX_ERROR_LENGTH = 300
"""Error texts are cut to this many characters: they end up in statuses and Events."""


def as_sli_value(raw: Any, where: str) -> SLIValue:
    """A number from a JSON value: numbers as they are, booleans as 1 and 0 (a task that
    reports `exif_present: true` gives an SLI that can be judged with `=1`), strings that
    spell a number (Prometheus sends its samples as strings) as that number. Anything else,
    and NaN or an infinity, is an `SLIError` naming `where` the value came from."""
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            return error(f"{where} is the string {raw[:60]!r}, not a number")
    elif raw is None:
        return error(f"{where} is null")
    else:
        kind = "a list" if isinstance(raw, list) else "an object"
        return error(f"{where} is {kind}, not a number")
    if not math.isfinite(value):
        return error(f"{where} is {raw!s}, not a finite number")
    return value


def error(message: str) -> SLIError:
    """An `SLIError` whose message fits on a line and in a status."""
    line = " ".join(message.split())
    if len(line) > MAX_ERROR_LENGTH:
        line = line[: MAX_ERROR_LENGTH - 1] + "…"
    return SLIError(line)
