"""SLO criteria: parse `<=+10%`-style strings, resolve their thresholds, test values.

The grammar is `slipway.api.slo.CRITERION_PATTERN` (the one the SLO model validates with):
an operator `<`, `<=`, `=`, `>=`, `>`, then a number that is absolute when bare, or relative to
the aggregate A of earlier results when signed and/or followed by `%`:

    `+x%` or `x%` -> A·(100+x)/100     `-x%` -> A·(100-x)/100     `+x` -> A+x     `-x` -> A-x

Comparisons treat two numbers within a relative 1e-9 of each other as equal, so binary
floating-point noise (`A·1.1` for A = 100 is 110.00000000000001) cannot decide a verdict; Keptn v1
compared exactly. This is the only deliberate difference from Keptn v1 here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from slipway.api.slo import CRITERION_PATTERN

Operator = Literal["<", "<=", "=", ">=", ">"]
Relation = Literal["absolute", "+%", "-%", "+", "-"]

_CRITERION = re.compile(CRITERION_PATTERN)
_RELATIVE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Criterion:
    """One parsed criterion: `operator`, `amount` and how `amount` relates to the aggregate."""

    text: str
    """The criterion as written in the SLO."""
    operator: Operator
    amount: float
    relation: Relation
    """`absolute`: the threshold is `amount`; otherwise relative to the aggregate A."""

    @property
    def relative(self) -> bool:
        """Whether the threshold depends on earlier results."""
        return self.relation != "absolute"

    def threshold(self, aggregate: float | None) -> float | None:
        """The threshold to compare with. None for a relative criterion without an aggregate
        (no earlier value): such a criterion is met whatever the value."""
        if self.relation == "absolute":
            return self.amount
        if aggregate is None:
            return None
        if self.relation == "+%":
            return aggregate * (100.0 + self.amount) / 100.0
        if self.relation == "-%":
            return aggregate * (100.0 - self.amount) / 100.0
        if self.relation == "+":
            return aggregate + self.amount
        return aggregate - self.amount

    def holds(self, value: float, threshold: float | None) -> bool:
        """Whether `value <operator> threshold`; a missing threshold (relative criterion, no
        earlier value) holds."""
        return True if threshold is None else compare(value, self.operator, threshold)


def parse_criterion(text: str) -> Criterion:
    """Parse one criterion string. Raises ValueError for text outside the grammar (the SLO
    model rejects such documents first, so this only happens for unvalidated input)."""
    match = _CRITERION.match(text)
    if match is None:
        raise ValueError(f"invalid criterion {text!r}")
    operator_text, sign, number, percent = match.groups()
    operator: Operator = _OPERATORS["".join(operator_text.split())]
    amount = float(number)
    relation: Relation
    if percent:
        relation = "-%" if sign == "-" else "+%"
    elif sign:
        relation = "-" if sign == "-" else "+"
    else:
        relation = "absolute"
    return Criterion(text=text, operator=operator, amount=amount, relation=relation)


_OPERATORS: dict[str, Operator] = {"<": "<", "<=": "<=", "=": "=", ">=": ">=", ">": ">"}


def compare(left: float, operator: Operator, right: float) -> bool:
    """`left <operator> right`, with numbers within a relative 1e-9 counting as equal."""
    equal = math.isclose(left, right, rel_tol=_RELATIVE_TOLERANCE)
    if operator == "=":
        return equal
    if operator == "<":
        return left < right and not equal
    if operator == "<=":
        return left < right or equal
    if operator == ">=":
        return left > right or equal
    return left > right and not equal
