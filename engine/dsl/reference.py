"""The reference evaluator: a small tree walker, the executable specification of the language.

It is slow on purpose-free grounds (plain recursion, no tricks) and serves three jobs: the oracle
the compiled form is tested against, the locator of run-time errors (the compiled code re-runs
here to name the failing sub-expression and its values), and the tracer that records what each
definition read.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from engine.dsl import ast, builtins
from engine.dsl.printer import print_expression
from engine.dsl.runtime import ROOTS, Frame, Value, show_value
from engine.dsl.table import Table
from engine.errors import EvaluationError
from engine.numbers import DECIMAL_CONTEXT

# (definition name, frame, value, inputs read as (text, value)) for the trace
Tracer = Callable[[str, Frame, Value, list[tuple[str, Value]]], None]


class Definitions:
    """The checked definitions a program evaluates against (AST plus attribute resolutions)."""

    __slots__ = ("expressions", "resolved", "statics")

    def __init__(
        self,
        expressions: Mapping[str, ast.Expr],
        resolved: frozenset[int],
        statics: Mapping[str, Value] | None = None,
    ) -> None:
        self.expressions = expressions
        self.resolved = resolved
        # `tables` always names something: an empty record when the caller has no tables.
        self.statics: Mapping[str, Value] = {"tables": {}, **(statics or {})}


def _describe(node: ast.Expr) -> str:
    text = print_expression(node)
    return text if len(text) <= 60 else text[:57] + "..."


class _Walker:
    def __init__(self, definitions: Definitions, tracer: Tracer | None) -> None:
        self.definitions = definitions
        self.tracer = tracer
        self.reads: list[list[tuple[str, Value]]] = []

    def fail(
        self, message: str, node: ast.Expr, code: str = "E500", **values: Value
    ) -> EvaluationError:
        shown = [(name, show_value(value)) for name, value in values.items()]
        return EvaluationError(message, span=node.span, code=code, values=shown)

    def read(self, node: ast.Expr, value: Value) -> Value:
        if self.reads and not isinstance(value, Mapping | list | Table):
            self.reads[-1].append((_describe(node), value))
        return value

    def definition(self, name: str, frame: Frame) -> Value:
        cached = frame.cache.get(name, _MISSING)
        if cached is not _MISSING:
            return cached
        self.reads.append([])
        try:
            value = self.eval(self.definitions.expressions[name], frame, {})
        finally:
            reads = self.reads.pop()
        frame.cache[name] = value
        if self.tracer is not None:
            self.tracer(name, frame, value, reads)
        return value

    def eval(self, node: ast.Expr, frame: Frame, bound: dict[str, Value]) -> Value:
        match node:
            case ast.Const(value=value):
                return value
            case ast.Name(name=name):
                if name in bound:
                    return bound[name]
                if name in ROOTS:
                    value = frame.root(name)
                    if value is None:
                        raise self.fail(f"no {name} in scope", node, "E503")
                    return value
                if name in self.definitions.statics:
                    return self.definitions.statics[name]
                return self.read(node, self.definition(name, frame))
            case ast.Attribute(value=owner_node, name=name):
                owner = self.eval(owner_node, frame, bound)
                if id(node) in self.definitions.resolved:
                    return self.read(node, self.definition(name, frame.context.frame_for(owner)))
                if not isinstance(owner, Mapping):
                    raise self.fail(f"missing input '{_describe(node)}'", node, "E503")
                try:
                    value = owner[name]  # records may compute a field on first read
                except KeyError:
                    raise self.fail(f"missing input '{_describe(node)}'", node, "E503") from None
                return self.read(node, value)
            case ast.Negate(operand=operand):
                return self.arith(node, lambda: -self.eval(operand, frame, bound))
            case ast.Not(operand=operand):
                return not self.eval(operand, frame, bound)
            case ast.Binary(op=op, left=left, right=right):
                a = self.eval(left, frame, bound)
                b = self.eval(right, frame, bound)
                if op == "/" and b == 0:  # 0 / 0 signals InvalidOperation, not DivisionByZero
                    raise self.fail("division by zero", node, "E501", left=a, right=b)
                return self.arith(node, lambda: _ARITH[op](a, b), left=a, right=b)
            case ast.Compare(op=op, left=left, right=right):
                a = self.eval(left, frame, bound)
                b = self.eval(right, frame, bound)
                return _COMPARE[op](a, b)
            case ast.BoolOp(op=op, left=left, right=right):
                a = self.eval(left, frame, bound)
                if op == "and":
                    return a and self.eval(right, frame, bound)
                return a or self.eval(right, frame, bound)
            case ast.Conditional(condition=condition, then=then, otherwise=otherwise):
                if self.eval(condition, frame, bound):
                    return self.eval(then, frame, bound)
                return self.eval(otherwise, frame, bound)
            case ast.Call(function=function, arguments=arguments):
                values = [self.eval(argument, frame, bound) for argument in arguments]
                return self.call(node, function, values)
            case ast.Aggregate():
                return self.aggregate(node, frame, bound)

    def arith(self, node: ast.Expr, thunk: Callable[[], Decimal], **values: Value) -> Decimal:
        try:
            return thunk()
        except decimal.DivisionByZero:
            raise self.fail("division by zero", node, "E501", **values) from None
        except decimal.Overflow:
            raise self.fail("number too large", node, "E502", **values) from None
        except decimal.InvalidOperation:
            raise self.fail("invalid arithmetic", node, "E500", **values) from None

    def call(self, node: ast.Call, function: str, values: list[Any]) -> Value:
        try:
            if function == "min":
                return min(values)
            if function == "max":
                return max(values)
            if function == "abs":
                return abs(values[0])
            if function == "clamp":
                return builtins.clamp(values[0], values[1], values[2])
            if function == "round":
                return builtins.round_to_step(values[0], values[1], values[2])
            if function == "lookup":
                return builtins.lookup(values[0], *values[1:])
        except builtins.BuiltinError as error:
            code = "E504" if function == "lookup" else "E500"
            raise self.fail(str(error), node, code) from None
        except ArithmeticError:
            raise self.fail(f"'{function}' failed on these values", node) from None
        raise self.fail(f"unknown function '{function}'", node)

    def aggregate(self, node: ast.Aggregate, frame: Frame, bound: dict[str, Value]) -> Value:
        collection = self.eval(node.collection, frame, bound)
        inner = dict(bound)
        elements: list[Value] = []
        for item in collection:
            inner[node.variable] = item
            if node.condition is not None and not self.eval(node.condition, frame, inner):
                continue
            elements.append(self.eval(node.element, frame, inner))
        if node.function == "count":
            return Decimal(len(elements))
        try:
            if node.function == "sum":
                return self.arith(node, lambda: builtins.aggregate_sum(elements))
            if node.function == "min":
                return builtins.aggregate_min(elements)
            return builtins.aggregate_max(elements)
        except builtins.BuiltinError as error:
            raise self.fail(str(error), node) from None


_MISSING = object()

_ARITH: dict[str, Callable[[Decimal, Decimal], Decimal]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
}

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: bool(a == b),
    "!=": lambda a, b: bool(a != b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


def evaluate_reference(
    expr: ast.Expr,
    frame: Frame,
    definitions: Definitions | None = None,
    *,
    tracer: Tracer | None = None,
) -> Value:
    """Evaluate `expr` by walking the tree, in the engine's decimal context."""
    walker = _Walker(definitions or Definitions({}, frozenset()), tracer)
    with decimal.localcontext(DECIMAL_CONTEXT):
        return walker.eval(expr, frame, {})


def evaluate_definition_reference(
    name: str, frame: Frame, definitions: Definitions, *, tracer: Tracer | None = None
) -> Value:
    """Evaluate (and memoize in `frame`) one definition by walking its tree."""
    walker = _Walker(definitions, tracer)
    with decimal.localcontext(DECIMAL_CONTEXT):
        return walker.definition(name, frame)
