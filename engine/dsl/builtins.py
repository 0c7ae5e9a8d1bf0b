"""The fixed table of builtins: signatures for the checker, implementations for both evaluators.

There are no user functions.  Each builtin is total on its declared types except where noted
(an empty `min`/`max` aggregate, `clamp` with crossed bounds, a table lookup out of range), and
those raise :class:`BuiltinError`, which the evaluators turn into located errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from engine.dsl.table import Row, Table, TableLookupError
from engine.numbers import ROUNDING_MODES, ZERO, format_decimal, quantize_to_step


class BuiltinError(ValueError):
    """A builtin received values outside its domain."""


@dataclass(frozen=True, slots=True)
class Builtin:
    name: str
    min_arity: int
    max_arity: int | None
    summary: str
    signature: str


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin("min", 2, None, "the smallest of its arguments", "min(a, b, ...) -> number"),
        Builtin("max", 2, None, "the largest of its arguments", "max(a, b, ...) -> number"),
        Builtin("abs", 1, 1, "absolute value", "abs(x) -> number"),
        Builtin("clamp", 3, 3, "x limited to [low, high]", "clamp(x, low, high) -> number"),
        Builtin(
            "round",
            3,
            3,
            "x rounded to a multiple of step with a named mode: "
            + ", ".join(f'"{mode}"' for mode in ROUNDING_MODES),
            'round(x, step, "mode") -> number',
        ),
        Builtin(
            "lookup",
            2,
            None,
            "the first row of a table whose keys match (interval keys: min <= key < max)",
            "lookup(table, key, ...) -> row",
        ),
    )
}

AGGREGATES: dict[str, str] = {
    "sum": "sum of the element over the collection (0 when empty)",
    "min": "smallest element (error when empty)",
    "max": "largest element (error when empty)",
    "count": "number of elements that pass the `where` condition",
}


def clamp(value: Decimal, low: Decimal, high: Decimal) -> Decimal:
    if low > high:
        raise BuiltinError(f"clamp: low {format_decimal(low)} is above high {format_decimal(high)}")
    return low if value < low else high if value > high else value


def round_to_step(value: Decimal, step: Decimal, mode: str) -> Decimal:
    if step <= 0:
        raise BuiltinError(f"round: step must be positive, was {format_decimal(step)}")
    return quantize_to_step(value, step, mode)


def lookup(table: Table, *keys: object) -> Row:
    try:
        return table.lookup(keys)
    except TableLookupError as error:
        raise BuiltinError(str(error)) from None


def aggregate_sum(values: Sequence[Decimal]) -> Decimal:
    return sum(values, ZERO)


def aggregate_min(values: Sequence[Decimal]) -> Decimal:
    if not values:
        raise BuiltinError("min over no elements")
    return min(values)


def aggregate_max(values: Sequence[Decimal]) -> Decimal:
    if not values:
        raise BuiltinError("max over no elements")
    return max(values)
