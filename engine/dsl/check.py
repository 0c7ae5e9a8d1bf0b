"""Static checks: names and fields exist, arity, types.  Runs once, when a policy loads.

Every problem is collected (never raised one at a time); a sub-expression with an error gets the
type `unknown` so that one mistake is reported once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from engine.dsl import ast
from engine.dsl.builtins import AGGREGATES, BUILTINS
from engine.dsl.types import (
    ANY,
    BOOL,
    NUMBER,
    AnyType,
    ListType,
    RecordType,
    StringType,
    TableType,
    Type,
    comparable,
    is_bool,
    is_number,
    same_value_type,
)
from engine.numbers import ROUNDING_MODES
from engine.source import Diagnostic, Span


@dataclass(frozen=True, slots=True)
class Scope:
    """What names mean while checking: input roots and the policy's definitions (with types)."""

    roots: Mapping[str, Type]
    definitions: Mapping[str, Type] = field(default_factory=dict)


def did_you_mean(
    name: str, candidates: Iterable[str], *, quote: str = "'", cutoff: float = 0.6
) -> str | None:
    """A hint naming the closest candidates; `quote='"'` for string values users paste back."""
    matches = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=cutoff)
    if not matches:
        return None
    return "did you mean " + " or ".join(f"{quote}{m}{quote}" for m in matches) + "?"


class _Checker:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.diagnostics: list[Diagnostic] = []
        self.bound: dict[str, Type] = {}
        self.definition_attributes: set[int] = set()
        self.references: list[tuple[str, Span]] = []

    def error(self, code: str, message: str, span: Span, hint: str | None = None) -> Type:
        self.diagnostics.append(Diagnostic(code, message, span, hint))
        return ANY

    def names_in_scope(self) -> set[str]:
        return set(self.bound) | set(self.scope.roots) | set(self.scope.definitions)

    def check(self, node: ast.Expr) -> Type:
        match node:
            case ast.Const(value=value):
                if isinstance(value, bool):
                    return BOOL
                if isinstance(value, str):
                    return StringType()
                return NUMBER
            case ast.Name(name=name, span=span):
                return self.name(name, span)
            case ast.Attribute(value=value, name=name, name_span=name_span):
                return self.attribute(self.check(value), name, name_span, node)
            case ast.Negate(operand=operand, span=span):
                found = self.check(operand)
                if not is_number(found):
                    return self.error("E303", f"'-' needs a number, found {found}", span)
                return NUMBER
            case ast.Not(operand=operand, span=span):
                found = self.check(operand)
                if not is_bool(found):
                    return self.error("E303", f"'not' needs a boolean, found {found}", span)
                return BOOL
            case ast.Binary(op=op, left=left, right=right, span=span):
                lt, rt = self.check(left), self.check(right)
                for side, found in (("left", lt), ("right", rt)):
                    if not is_number(found):
                        return self.error(
                            "E303", f"'{op}' needs numbers, found {found} on the {side}", span
                        )
                return NUMBER
            case ast.Compare():
                return self.compare(node)
            case ast.BoolOp(op=op, left=left, right=right, span=span):
                lt, rt = self.check(left), self.check(right)
                for side, found in (("left", lt), ("right", rt)):
                    if not is_bool(found):
                        return self.error(
                            "E303",
                            f"'{op}' needs booleans, found {found} on the {side}",
                            span,
                            hint="compare the value, e.g. 'x > 0'" if is_number(found) else None,
                        )
                return BOOL
            case ast.Conditional(condition=condition, then=then, otherwise=otherwise, span=span):
                ct = self.check(condition)
                if not is_bool(ct):
                    self.error(
                        "E303", f"'if' needs a boolean condition, found {ct}", condition.span
                    )
                tt, ot = self.check(then), self.check(otherwise)
                common = same_value_type(tt, ot)
                if common is None:
                    return self.error(
                        "E303", f"'then' and 'else' differ in type: {tt} and {ot}", span
                    )
                return common
            case ast.Call():
                return self.call(node)
            case ast.Aggregate():
                return self.aggregate(node)

    def name(self, name: str, span: Span) -> Type:
        if name in self.bound:
            return self.bound[name]
        if name in self.scope.roots:
            return self.scope.roots[name]
        if name in self.scope.definitions:
            self.references.append((name, span))
            return self.scope.definitions[name]
        if name in BUILTINS or name in AGGREGATES:
            return self.error("E300", f"'{name}' is a function and must be called", span)
        return self.error(
            "E300", f"unknown name '{name}'", span, did_you_mean(name, self.names_in_scope())
        )

    def attribute(self, owner: Type, name: str, span: Span, value: ast.Attribute) -> Type:
        if isinstance(owner, AnyType):
            return ANY
        if isinstance(owner, RecordType):
            if name in owner.fields:
                return owner.fields[name]
            candidates = set(owner.fields)
            if owner.with_definitions:
                if name in self.scope.definitions:
                    self.definition_attributes.add(id(value))
                    self.references.append((name, span))
                    return self.scope.definitions[name]
                candidates |= set(self.scope.definitions)
            return self.error(
                "E301",
                f"unknown field '{name}' on {owner.name}",
                span,
                did_you_mean(name, candidates),
            )
        return self.error("E301", f"{owner} has no fields (looking for '{name}')", span)

    def compare(self, node: ast.Compare) -> Type:
        lt, rt = self.check(node.left), self.check(node.right)
        if node.op in ("==", "!="):
            if not comparable(lt, rt):
                return self.error("E303", f"cannot compare {lt} with {rt}", node.span)
            self.enum_value(lt, node.right)
            self.enum_value(rt, node.left)
            return BOOL
        for side, found in (("left", lt), ("right", rt)):
            if not is_number(found):
                return self.error(
                    "E303", f"'{node.op}' needs numbers, found {found} on the {side}", node.span
                )
        return BOOL

    def enum_value(self, expected: Type, other: ast.Expr) -> None:
        if not (isinstance(expected, StringType) and expected.values):
            return
        if (
            isinstance(other, ast.Const)
            and isinstance(other.value, str)
            and other.value not in expected.values
        ):
            allowed = ", ".join(f'"{v}"' for v in sorted(expected.values))
            self.error(
                "E307",
                f'"{other.value}" is never a value here; expected one of {allowed}',
                other.span,
                did_you_mean(other.value, expected.values, quote='"'),
            )

    def call(self, node: ast.Call) -> Type:
        builtin = BUILTINS.get(node.function)
        arguments = node.arguments
        if builtin is None:
            if node.function in AGGREGATES:
                return self.error(
                    "E302",
                    f"'{node.function}' aggregates over a collection",
                    node.span,
                    f"write {node.function}(p.notional for p in account.positions)",
                )
            return self.error(
                "E305",
                f"unknown function '{node.function}'",
                node.name_span,
                did_you_mean(node.function, [*BUILTINS, *AGGREGATES]),
            )
        count = len(arguments)
        if count < builtin.min_arity or (
            builtin.max_arity is not None and count > builtin.max_arity
        ):
            expected = (
                str(builtin.min_arity)
                if builtin.min_arity == builtin.max_arity
                else f"at least {builtin.min_arity}"
            )
            for argument in arguments:
                self.check(argument)
            return self.error(
                "E302",
                f"'{node.function}' takes {expected} argument{'s' if expected != '1' else ''},"
                f" found {count}",
                node.span,
                f"usage: {builtin.signature}",
            )
        if node.function == "lookup":
            return self.lookup(node)
        if node.function == "round":
            self.expect_number(arguments[0], "round")
            self.expect_number(arguments[1], "round")
            mode = arguments[2]
            if not (isinstance(mode, ast.Const) and isinstance(mode.value, str)):
                self.check(mode)
                return self.error(
                    "E306",
                    "the rounding mode must be a string literal",
                    mode.span,
                    "one of " + ", ".join(f'"{m}"' for m in ROUNDING_MODES),
                )
            if mode.value not in ROUNDING_MODES:
                return self.error(
                    "E306",
                    f'unknown rounding mode "{mode.value}"',
                    mode.span,
                    did_you_mean(mode.value, ROUNDING_MODES, quote='"')
                    or "one of " + ", ".join(f'"{m}"' for m in ROUNDING_MODES),
                )
            return NUMBER
        for argument in arguments:
            self.expect_number(argument, node.function)
        return NUMBER

    def expect_number(self, node: ast.Expr, function: str) -> None:
        found = self.check(node)
        if not is_number(found):
            self.error("E303", f"'{function}' needs numbers, found {found}", node.span)

    def lookup(self, node: ast.Call) -> Type:
        table_arg, *keys = node.arguments
        table = self.check(table_arg)
        key_types = [self.check(key) for key in keys]
        if isinstance(table, AnyType):
            return ANY
        if not isinstance(table, TableType):
            return self.error(
                "E303",
                f"'lookup' needs a table first, found {table}",
                table_arg.span,
                "tables are named tables.<name>, or market.tiers for the market's tier table",
            )
        if len(keys) != len(table.keys):
            names = ", ".join(key.name for key in table.keys)
            return self.error(
                "E302",
                f"table '{table.name}' is looked up by {len(table.keys)} key"
                f"{'s' if len(table.keys) != 1 else ''} ({names}), found {len(keys)}",
                node.span,
            )
        for key, found, key_node in zip(table.keys, key_types, keys, strict=True):
            if key.kind == "interval" and not is_number(found):
                self.error("E303", f"key '{key.name}' needs a number, found {found}", key_node.span)
            elif key.kind == "exact" and not comparable(key.type, found):
                self.error(
                    "E303", f"key '{key.name}' needs {key.type}, found {found}", key_node.span
                )
        return table.row

    def aggregate(self, node: ast.Aggregate) -> Type:
        collection = self.check(node.collection)
        element_type: Type = ANY
        if isinstance(collection, ListType):
            element_type = collection.element
        elif not isinstance(collection, AnyType):
            self.error(
                "E303",
                f"'{node.function}' iterates over a list, found {collection}",
                node.collection.span,
                "aggregate over account.positions",
            )
        if node.function not in AGGREGATES:
            self.error(
                "E305",
                f"'{node.function}' cannot aggregate",
                node.name_span,
                "aggregates are " + ", ".join(AGGREGATES),
            )
        if node.variable in self.scope.roots or node.variable in self.scope.definitions:
            self.error(
                "E309",
                f"'{node.variable}' already names an input or a definition",
                node.variable_span,
                "pick another variable name, e.g. 'p'",
            )
        saved = self.bound.get(node.variable)
        self.bound[node.variable] = element_type
        try:
            if node.condition is not None:
                found = self.check(node.condition)
                if not is_bool(found):
                    self.error(
                        "E303", f"'where' needs a boolean, found {found}", node.condition.span
                    )
            element = self.check(node.element)
        finally:
            if saved is None:
                del self.bound[node.variable]
            else:
                self.bound[node.variable] = saved
        if node.function != "count" and not is_number(element):
            return self.error(
                "E303", f"'{node.function}' needs numbers, found {element}", node.element.span
            )
        return NUMBER


@dataclass(frozen=True, slots=True)
class Checked:
    """A checked expression: its type, problems, and which `x.name` nodes name definitions.

    `references` lists the definitions it uses (name and where), for ordering and cycles.
    `definition_attributes` holds the ids of :class:`ast.Attribute` nodes that resolve to a
    definition evaluated for another position (`p.maintenance_margin`); evaluators use it
    instead of guessing at run time.
    """

    expr: ast.Expr
    type: Type
    diagnostics: tuple[Diagnostic, ...]
    definition_attributes: frozenset[int]
    references: tuple[tuple[str, Span], ...] = ()


def check_expression(
    expr: ast.Expr, scope: Scope, *, expected: Type | None = None, what: str = "expression"
) -> Checked:
    """Type-check `expr`, collecting every problem.

    With `expected`, also report when the whole expression has another type (e.g. a trigger
    that is not a boolean).
    """
    checker = _Checker(scope)
    found = checker.check(expr)
    if expected is not None and not isinstance(found, AnyType):
        matches = same_value_type(expected, found) is not None
        if not matches:
            checker.error("E303", f"{what} must be {expected}, found {found}", expr.span)
    return Checked(
        expr,
        found,
        tuple(checker.diagnostics),
        frozenset(checker.definition_attributes),
        tuple(checker.references),
    )


def definition_references(
    expr: ast.Expr, definitions: Mapping[str, object], record_fields: Iterable[str] = ()
) -> Iterator[tuple[str, Span]]:
    """Yield the definitions `expr` refers to (by name, or as a field of a position variable).

    Syntactic and conservative: used only to order definitions and find cycles.
    """
    inputs = set(record_fields)
    stack: list[tuple[ast.Expr, frozenset[str]]] = [(expr, frozenset())]
    while stack:
        node, bound = stack.pop()
        match node:
            case ast.Name(name=name, span=span) if name not in bound and name in definitions:
                yield name, span
            case ast.Attribute(name=name, name_span=span) if (
                name in definitions and name not in inputs
            ):
                yield name, span
            case _:
                pass
        inner = bound | {node.variable} if isinstance(node, ast.Aggregate) else bound
        stack.extend((child, inner) for child in ast.children(node))
