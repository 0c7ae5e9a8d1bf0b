"""AST → canonical text, with the fewest parentheses that parse back to the same tree.

Used for traces, error messages, `liqpolicy expr`, and the print → parse round-trip property.
"""

from __future__ import annotations

from decimal import Decimal

from engine.dsl import ast
from engine.numbers import MAX_DIGITS, format_decimal

_CONDITIONAL, _OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _UNARY, _POSTFIX, _ATOM = range(10)


def _precedence(node: ast.Expr) -> int:
    match node:
        case ast.Conditional():
            return _CONDITIONAL
        case ast.BoolOp(op="or"):
            return _OR
        case ast.BoolOp():
            return _AND
        case ast.Not():
            return _NOT
        case ast.Compare():
            return _COMPARE
        case ast.Binary(op="+" | "-"):
            return _SUM
        case ast.Binary():
            return _PRODUCT
        case ast.Negate():
            return _UNARY
        case ast.Attribute() | ast.Call() | ast.Aggregate():
            return _POSTFIX
        case _:
            return _ATOM


def _wrap(node: ast.Expr, minimum: int) -> str:
    text = print_expression(node)
    return f"({text})" if _precedence(node) < minimum else text


def _constant(value: Decimal | bool | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    text = format_decimal(value)
    if sum(char.isdigit() for char in text) > MAX_DIGITS:  # 1e70: keep the exponent to parse back
        return str(value)
    return text


def print_expression(node: ast.Expr) -> str:
    """Canonical text of `node` (parsing it gives back an equal tree)."""
    match node:
        case ast.Const(value=value):
            return _constant(value)
        case ast.Name(name=name):
            return name
        case ast.Attribute(value=value, name=name):
            return f"{_wrap(value, _POSTFIX)}.{name}"
        case ast.Negate(operand=operand):
            return f"-{_wrap(operand, _UNARY)}"
        case ast.Not(operand=operand):
            return f"not {_wrap(operand, _NOT)}"
        case ast.Binary(op=op, left=left, right=right):
            level = _precedence(node)
            return f"{_wrap(left, level)} {op} {_wrap(right, level + 1)}"
        case ast.Compare(op=op, left=left, right=right):
            return f"{_wrap(left, _SUM)} {op} {_wrap(right, _SUM)}"
        case ast.BoolOp(op=op, left=left, right=right):
            level = _precedence(node)
            return f"{_wrap(left, level)} {op} {_wrap(right, level + 1)}"
        case ast.Conditional(condition=condition, then=then, otherwise=otherwise):
            return (
                f"if {print_expression(condition)} then {print_expression(then)}"
                f" else {print_expression(otherwise)}"
            )
        case ast.Call(function=function, arguments=arguments):
            return f"{function}({', '.join(print_expression(a) for a in arguments)})"
        case ast.Aggregate(
            function=function,
            element=element,
            variable=variable,
            collection=collection,
            condition=condition,
        ):
            where = f" where {print_expression(condition)}" if condition is not None else ""
            return (
                f"{function}({print_expression(element)} for {variable} in "
                f"{print_expression(collection)}{where})"
            )
