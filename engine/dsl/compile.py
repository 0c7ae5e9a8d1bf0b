"""Checked AST → Python functions, generated once per policy and called many times.

The generated source is built only from our own AST: identifiers are mangled from names the
grammar already restricted to ``[A-Za-z_][A-Za-z0-9_]*``, and every literal (number, string,
table) is passed in through the namespace, never spliced into the code as text.  So no user text
is ever handed to ``compile``; what runs is ordinary Python on Decimals, close to hand-written
speed.  When the fast path fails (division by zero, a missing input, a lookup out of range), the
same expression is re-run by the reference evaluator, which raises the located error.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.dsl import ast, builtins
from engine.dsl.reference import Definitions, evaluate_definition_reference, evaluate_reference
from engine.dsl.runtime import ROOTS, Frame, Value
from engine.dsl.types import Type
from engine.errors import EvaluationError
from engine.numbers import DECIMAL_CONTEXT

_FAST_PATH_ERRORS = (ArithmeticError, LookupError, TypeError, ValueError, AttributeError)


def in_engine_context() -> bool:
    """Whether the current decimal context is (a copy of) the engine's, so no switch is needed."""
    current = decimal.getcontext()
    return (
        current.Emax == DECIMAL_CONTEXT.Emax
        and current.prec == DECIMAL_CONTEXT.prec
        and current.traps[decimal.FloatOperation]
        and current.traps[decimal.DivisionByZero]
        # a look-alike with another rounding or without these traps would change results
        and current.rounding == DECIMAL_CONTEXT.rounding
        and current.Emin == DECIMAL_CONTEXT.Emin
        and current.traps[decimal.InvalidOperation]
        and current.traps[decimal.Overflow]
    )


def _occurrences(expr: ast.Expr) -> tuple[list[ast.Expr], dict[ast.Expr, int]]:
    """Sub-expressions in evaluation order (post-order) that run unconditionally, and how often
    every sub-expression occurs.  Branches of `if`, the right side of `and`/`or` and the inside
    of aggregates may not run, so they are counted but never listed as unconditional.
    """
    unconditional: list[ast.Expr] = []
    counts: dict[ast.Expr, int] = {}
    stack: list[tuple[ast.Expr, bool, bool]] = [(expr, True, False)]
    while stack:
        node, certain, expanded = stack.pop()
        if expanded:
            if certain:
                unconditional.append(node)
            continue
        counts[node] = counts.get(node, 0) + 1
        stack.append((node, certain, True))
        match node:
            case ast.Aggregate():
                children: list[tuple[ast.Expr, bool]] = []
            case ast.Conditional(condition=condition, then=then, otherwise=otherwise):
                children = [(condition, certain), (then, False), (otherwise, False)]
            case ast.BoolOp(left=left, right=right):
                children = [(left, certain), (right, False)]
            case _:
                children = [(child, certain) for child in ast.children(node)]
        stack.extend((child, flag, False) for child, flag in reversed(children))
    return unconditional, counts


class _Generator:
    def __init__(self, definitions: Definitions) -> None:
        self.definitions = definitions
        self.constants: dict[str, object] = {}
        self.by_identity: dict[tuple[type, object], str] = {}
        self.hoisted: dict[ast.Expr, str] = {}

    def body(self, expr: ast.Expr) -> tuple[list[str], str]:
        """Lines computing repeated sub-expressions once into locals, and the result expression.

        Only sub-expressions that run unconditionally and occur more than once are hoisted, so
        short-circuiting never evaluates anything the expression itself would not.
        """
        unconditional, counts = _occurrences(expr)
        lines: list[str] = []
        self.hoisted = {}
        for node in unconditional:
            if counts[node] < 2 or node in self.hoisted or node is expr:
                continue
            if isinstance(node, ast.Const) or (isinstance(node, ast.Name) and node.name in ROOTS):
                continue
            code = self.expr(node, {})
            name = f"t{len(self.hoisted)}"
            lines.append(f"    {name} = {code}")
            self.hoisted[node] = name
        result = self.expr(expr, {})
        self.hoisted = {}
        return lines, result

    def constant(self, value: object) -> str:
        hashable = isinstance(value, Decimal | str | bool)
        key = (type(value), str(value) if hashable else id(value))
        name = self.by_identity.get(key)
        if name is None:
            name = f"_k{len(self.by_identity)}"
            self.by_identity[key] = name
            self.constants[name] = value
        return name

    def expr(self, node: ast.Expr, bound: Mapping[str, str]) -> str:
        hoisted = self.hoisted.get(node) if self.hoisted else None
        if hoisted is not None:
            return hoisted
        match node:
            case ast.Const(value=value):
                if isinstance(value, bool):
                    return "True" if value else "False"
                return self.constant(value)
            case ast.Name(name=name):
                if name in bound:
                    return bound[name]
                if name in ROOTS:
                    return f"F.{name}"
                if name in self.definitions.statics:
                    return self.constant(self.definitions.statics[name])
                return f"_d_{name}(F)"
            case ast.Attribute(value=owner, name=name):
                owner_code = self.expr(owner, bound)
                if id(node) in self.definitions.resolved:
                    return f"_d_{name}(F.context.frame_for({owner_code}))"
                assert name.isidentifier()  # the grammar's NAME; safe to write as a literal
                return f"{owner_code}[{name!r}]"
            case ast.Negate(operand=operand):
                return f"(-{self.expr(operand, bound)})"
            case ast.Not(operand=operand):
                return f"(not {self.expr(operand, bound)})"
            case (
                ast.Binary(op=op, left=left, right=right)
                | ast.Compare(op=op, left=left, right=right)
            ):
                return f"({self.expr(left, bound)} {op} {self.expr(right, bound)})"
            case ast.BoolOp(op=op, left=left, right=right):
                return f"({self.expr(left, bound)} {op} {self.expr(right, bound)})"
            case ast.Conditional(condition=condition, then=then, otherwise=otherwise):
                return (
                    f"({self.expr(then, bound)} if {self.expr(condition, bound)}"
                    f" else {self.expr(otherwise, bound)})"
                )
            case ast.Call(function=function, arguments=arguments):
                args = [self.expr(argument, bound) for argument in arguments]
                if function in ("min", "max", "abs"):
                    return f"{function}({', '.join(args)})"
                if function == "round":
                    return f"_round({args[0]}, {args[1]}, {args[2]})"
                return f"_{function}({', '.join(args)})"
            case ast.Aggregate(
                function=function,
                element=element,
                variable=variable,
                collection=collection,
                condition=condition,
            ):
                local = f"v_{variable}_{len(bound)}"
                inner = {**bound, variable: local}
                source = self.expr(collection, bound)
                where = f" if {self.expr(condition, inner)}" if condition is not None else ""
                item = self.expr(element, inner)
                if function == "count":  # the element is evaluated, as in the reference
                    return f"_count([{item} for {local} in {source}{where}])"
                return f"_agg_{function}([{item} for {local} in {source}{where}])"


_HELPERS: dict[str, object] = {
    "_clamp": builtins.clamp,
    "_round": builtins.round_to_step,
    "_lookup": builtins.lookup,
    "_agg_sum": builtins.aggregate_sum,
    "_agg_min": builtins.aggregate_min,
    "_agg_max": builtins.aggregate_max,
    "_count": lambda items: Decimal(len(items)),
    "_MISSING": object(),
}


@dataclass(frozen=True, slots=True)
class CompiledExpression:
    """A compiled expression: call it with a :class:`Frame`.

    `fast` is the generated function and expects the engine's decimal context to be active
    (batch callers enter it once); calling the object enters the context itself and turns any
    failure into a located :class:`EvaluationError`.
    """

    name: str
    expr: ast.Expr
    type: Type
    fast: Callable[[Frame], Value] = field(repr=False)
    definitions: Definitions = field(repr=False)
    is_definition: bool = False

    def __call__(self, frame: Frame) -> Value:
        if in_engine_context():  # callers that batch evaluations enter the context once
            try:
                return self.fast(frame)
            except _FAST_PATH_ERRORS:
                return self.locate_failure(frame)
        with decimal.localcontext(DECIMAL_CONTEXT):
            try:
                return self.fast(frame)
            except _FAST_PATH_ERRORS:
                pass
        return self.locate_failure(frame)

    def run(self, frame: Frame) -> Value:
        """Like calling it, for callers that have entered the engine's decimal context (checked
        once per evaluation rather than once per expression, which would cost as much as a
        small expression)."""
        try:
            return self.fast(frame)
        except _FAST_PATH_ERRORS:
            return self.locate_failure(frame)

    def locate_failure(self, frame: Frame) -> Value:
        """Re-run in the reference evaluator, which raises a located error."""
        frame.cache.clear()
        if self.is_definition:
            value = evaluate_definition_reference(self.name, frame, self.definitions)
        else:
            value = evaluate_reference(self.expr, frame, self.definitions)
        raise EvaluationError(  # pragma: no cover - the two evaluators agree by property test
            f"compiled and reference evaluation disagree on '{self.name}' (value {value})",
            span=self.expr.span,
        )


@dataclass(frozen=True, slots=True)
class Program:
    """Compiled definitions and named expressions of one policy, ready to evaluate."""

    definitions: Mapping[str, CompiledExpression]
    expressions: Mapping[str, CompiledExpression]
    source: str = field(repr=False)


def compile_program(
    definitions: Mapping[str, tuple[ast.Expr, Type]],
    expressions: Mapping[str, tuple[ast.Expr, Type]],
    resolved: frozenset[int],
    *,
    filename: str = "<policy>",
    statics: Mapping[str, Value] | None = None,
) -> Program:
    """Compile checked definitions and expressions into one generated module.

    `resolved` is the union of :attr:`Checked.definition_attributes` of every expression;
    `statics` are root names whose values are fixed by the policy (`tables`).
    """
    tables = Definitions({name: expr for name, (expr, _) in definitions.items()}, resolved, statics)
    generator = _Generator(tables)
    lines: list[str] = []
    for name, (expr, _) in definitions.items():
        hoisted, body = generator.body(expr)
        lines += [
            f"def _d_{name}(F):",
            "    cache = F.cache",
            f"    value = cache.get({name!r}, _MISSING)",
            "    if value is not _MISSING:",
            "        return value",
            *hoisted,
            f"    value = cache[{name!r}] = {body}",
            "    return value",
            "",
        ]
    expression_names: dict[str, str] = {}
    for index, (name, (expr, _)) in enumerate(expressions.items()):
        function = f"_e{index}"
        expression_names[name] = function
        hoisted, body = generator.body(expr)
        lines += [f"def {function}(F):", *hoisted, f"    return {body}", ""]
    source = "\n".join(lines)
    namespace: dict[str, Any] = {"__builtins__": {"min": min, "max": max, "abs": abs}}
    namespace.update(_HELPERS)
    namespace.update(generator.constants)
    exec(
        compile(source, filename, "exec"), namespace
    )  # source generated from our checked AST only; see module docstring
    compiled_definitions = {
        name: CompiledExpression(name, expr, typ, namespace[f"_d_{name}"], tables, True)
        for name, (expr, typ) in definitions.items()
    }
    compiled_expressions = {
        name: CompiledExpression(name, expr, typ, namespace[expression_names[name]], tables)
        for name, (expr, typ) in expressions.items()
    }
    return Program(compiled_definitions, compiled_expressions, source)


def compile_expression(
    expr: ast.Expr, type_: Type, *, resolved: frozenset[int] = frozenset(), name: str = "expression"
) -> CompiledExpression:
    """Compile a single expression that uses no definitions."""
    return compile_program({}, {name: (expr, type_)}, resolved).expressions[name]
