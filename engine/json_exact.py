"""JSON read exactly: every number a Decimal from its text, with the engine's limits.

One reader for everything that takes JSON from outside (batch lines, HTTP bodies, books): numbers
go through :func:`engine.numbers.parse_decimal` (at most 60 digits, exponents within ±100), `NaN`
and `Infinity` are refused, and so is a key repeated within one object.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from engine.numbers import NumberSyntaxError, parse_decimal


class DuplicateKeyError(ValueError):
    """A key appears twice in one JSON object (`key` names it)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class NonNumberError(NumberSyntaxError):
    """`NaN`, `Infinity` or `-Infinity`: valid in Python's JSON, never a decimal amount."""

    def __init__(self, name: str) -> None:
        super().__init__(f"'{name}' is not a decimal number")
        self.name = name


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKeyError(key)
        result[key] = value
    return result


def _constant(name: str) -> Any:
    raise NonNumberError(name)


_DECODER = json.JSONDecoder(  # built once: json.loads with hooks would build one per call
    parse_float=parse_decimal,
    parse_int=parse_decimal,
    parse_constant=_constant,
    object_pairs_hook=_object,
)
_UNLIMITED = json.JSONDecoder(
    parse_float=Decimal, parse_int=Decimal, parse_constant=_constant, object_pairs_hook=_object
)


def loads_exact(text: str, *, limits: bool = True) -> Any:
    """Parse JSON text; raises json.JSONDecodeError, NumberSyntaxError or DuplicateKeyError.

    `limits=False` takes any number JSON's grammar admits, for a reader that checks the limits
    itself to say which field is out of range (the book reader does).
    """
    if text.startswith("\ufeff"):  # as json.loads reports it
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return (_DECODER if limits else _UNLIMITED).decode(text)
