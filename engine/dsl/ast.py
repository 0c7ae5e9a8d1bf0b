"""The expression AST: one frozen, slotted dataclass per node kind, each carrying its span.

Spans are excluded from equality so trees compare by structure (the print/parse round trip).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, TypeAlias

from engine.source import Span

BinaryOperator = Literal["+", "-", "*", "/"]
CompareOperator = Literal["==", "!=", "<", "<=", ">", ">="]
BoolOperator = Literal["and", "or"]
AggregateName = Literal["sum", "min", "max", "count"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Const:
    """A literal: decimal number, boolean or string."""

    value: Decimal | bool | str
    span: Span = field(compare=False, repr=False)
    # Python has `True == Decimal(1)`, with equal hashes: comparing the type too keeps `true` and
    # `1` apart wherever trees are compared or used as keys (the compiler's shared sub-expressions)
    kind: type = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", type(self.value))


@dataclass(frozen=True, slots=True, kw_only=True)
class Name:
    """A bare name: an input root (`position`), a definition, or an aggregate's variable."""

    name: str
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribute:
    """`value.name`: a field of a record (input, table row) or a definition of a position."""

    value: Expr
    name: str
    span: Span = field(compare=False, repr=False)
    name_span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Negate:
    operand: Expr
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Not:
    operand: Expr
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Binary:
    op: BinaryOperator
    left: Expr
    right: Expr
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Compare:
    op: CompareOperator
    left: Expr
    right: Expr
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class BoolOp:
    """`and` / `or`, strictly left to right, short-circuiting."""

    op: BoolOperator
    left: Expr
    right: Expr
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Conditional:
    """`if condition then yes else no`; only the chosen branch is evaluated."""

    condition: Expr
    then: Expr
    otherwise: Expr
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """A call to a builtin from the fixed table in :mod:`engine.dsl.builtins`."""

    function: str
    arguments: tuple[Expr, ...]
    span: Span = field(compare=False, repr=False)
    name_span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Aggregate:
    """`sum(element for variable in collection where condition)` over a bounded list."""

    function: AggregateName
    element: Expr
    variable: str
    collection: Expr
    condition: Expr | None
    span: Span = field(compare=False, repr=False)
    name_span: Span = field(compare=False, repr=False)
    variable_span: Span = field(compare=False, repr=False)


Expr: TypeAlias = (
    Const
    | Name
    | Attribute
    | Negate
    | Not
    | Binary
    | Compare
    | BoolOp
    | Conditional
    | Call
    | Aggregate
)


def children(node: Expr) -> tuple[Expr, ...]:
    """Direct sub-expressions, in source order (used by generic walks)."""
    match node:
        case Const() | Name():
            return ()
        case Attribute(value=value):
            return (value,)
        case Negate(operand=operand) | Not(operand=operand):
            return (operand,)
        case Binary(left=left, right=right) | Compare(left=left, right=right):
            return (left, right)
        case BoolOp(left=left, right=right):
            return (left, right)
        case Conditional(condition=condition, then=then, otherwise=otherwise):
            return (condition, then, otherwise)
        case Call(arguments=arguments):
            return arguments
        case Aggregate(element=element, collection=collection, condition=condition):
            return (collection, element) + ((condition,) if condition is not None else ())


def walk(node: Expr) -> Iterator[Expr]:
    """Every node of the tree, `node` first (order otherwise unspecified)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(children(current))
