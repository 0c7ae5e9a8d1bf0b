"""The type lattice of the expression language, checked when a policy loads.

There is no null: an input that may be absent is still typed, and its absence is a run-time
error naming the field.  `ANY` only appears after an error, to stop one mistake cascading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class NumberType:
    def __str__(self) -> str:
        return "number"


@dataclass(frozen=True, slots=True)
class BoolType:
    def __str__(self) -> str:
        return "boolean"


@dataclass(frozen=True, slots=True)
class StringType:
    """A string; `values` lists the allowed values when the input is an enumeration."""

    values: frozenset[str] | None = None

    def __str__(self) -> str:
        if self.values:
            return "string (one of " + ", ".join(f'"{v}"' for v in sorted(self.values)) + ")"
        return "string"


@dataclass(frozen=True, slots=True)
class RecordType:
    """A record with typed fields.

    `with_definitions` marks the position record: a field that is not an input is looked up
    among the policy's definitions, evaluated for that position (`p.maintenance_margin`).
    """

    name: str
    fields: Mapping[str, Type] = field(compare=False)
    with_definitions: bool = False
    descriptions: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class ListType:
    element: RecordType

    def __str__(self) -> str:
        return f"list of {self.element}"


@dataclass(frozen=True, slots=True)
class TableKey:
    """A lookup key: `interval` keys match `min_<name> <= key < max_<name>`; `exact` keys match `==`."""

    name: str
    kind: str  # "interval" | "exact"
    type: Type


@dataclass(frozen=True, slots=True)
class TableType:
    name: str
    keys: tuple[TableKey, ...]
    row: RecordType

    def __str__(self) -> str:
        return f"table {self.name}"


@dataclass(frozen=True, slots=True)
class AnyType:
    def __str__(self) -> str:
        return "unknown"


Type: TypeAlias = NumberType | BoolType | StringType | RecordType | ListType | TableType | AnyType

NUMBER = NumberType()
BOOL = BoolType()
STRING = StringType()
ANY = AnyType()


def is_number(t: Type) -> bool:
    return isinstance(t, NumberType | AnyType)


def is_bool(t: Type) -> bool:
    return isinstance(t, BoolType | AnyType)


def comparable(left: Type, right: Type) -> bool:
    """Whether `==`/`!=` may compare the two types (same scalar kind)."""
    if isinstance(left, AnyType) or isinstance(right, AnyType):
        return True
    if isinstance(left, StringType) and isinstance(right, StringType):
        return True
    return type(left) is type(right) and isinstance(left, NumberType | BoolType)


def same_value_type(left: Type, right: Type) -> Type | None:
    """The common type of two branches of `if`, or None when they differ."""
    if isinstance(left, AnyType):
        return right
    if isinstance(right, AnyType):
        return left
    if isinstance(left, StringType) and isinstance(right, StringType):
        if left.values is not None and right.values is not None:
            return StringType(left.values | right.values)
        return STRING
    if left == right:
        return left
    return None
