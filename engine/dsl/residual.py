"""A numeric residual for a boolean condition: >= 0 exactly where (up to ties) the condition holds.

Solvers search for where a condition starts to hold; a boolean gives them one bit per
evaluation (bisection), a residual also says how far away the boundary is (secant steps).  It
is derived from the condition's own tree: `a >= b` → `a - b`, `and` → `min`, `or` → `max`,
`not` → negation, boolean definitions are followed; any other condition becomes a step
(`if c then 1e30 else -1e30`).  Callers still confirm the boundary with the condition itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from engine.dsl import ast

_STEP = Decimal("1e30")
_MAX_INLINE = 8


def _cleared(
    left: ast.Expr,
    right: ast.Expr,
    plain: ast.Expr,
    definitions: Mapping[str, ast.Expr],
    *,
    ratio_above: bool,
    strict: bool,
) -> ast.Expr | None:
    """For `x / y >= c` (directly or through a definition, possibly `if k then x / y else e`),
    the residual `x - c * y` where `y > 0`: same sign, but linear where the ratio is hyperbolic,
    so secant steps converge.  Elsewhere it is still `x - c * y` when that has the sign of
    `plain` (so a sentinel like `else 999999` does not put a step into the residual), otherwise
    `plain`; callers confirm the boundary anyway."""
    body, guard = left, None
    if isinstance(left, ast.Name) and left.name in definitions:
        body = definitions[left.name]
    if isinstance(body, ast.Conditional):
        guard, body = body.condition, body.then
    if not (isinstance(body, ast.Binary) and body.op == "/"):
        return None
    span = left.span
    x, y = body.left, body.right
    scaled = ast.Binary(op="*", left=right, right=y, span=span)
    linear = (
        ast.Binary(op="-", left=x, right=scaled, span=span)
        if ratio_above
        else ast.Binary(op="-", left=scaled, right=x, span=span)
    )
    positive: ast.Expr = ast.Compare(
        op=">", left=y, right=ast.Const(value=Decimal(0), span=span), span=span
    )
    if guard is not None:
        positive = ast.BoolOp(op="and", left=guard, right=positive, span=span)
    zero = ast.Const(value=Decimal(0), span=span)

    def both(op: ast.CompareOperator) -> ast.Expr:
        return ast.BoolOp(
            op="and",
            left=ast.Compare(op=op, left=linear, right=zero, span=span),
            right=ast.Compare(op=op, left=plain, right=zero, span=span),
            span=span,
        )

    # Classified as the comparison classifies: for a strict one a plain 0 is a tie that does
    # not hold, so only a linear value <= 0 may stand in for it.
    same_sign = ast.BoolOp(
        op="or",
        left=both(">" if strict else ">="),
        right=both("<=" if strict else "<"),
        span=span,
    )
    outside = ast.Conditional(condition=same_sign, then=linear, otherwise=plain, span=span)
    return ast.Conditional(condition=positive, then=linear, otherwise=outside, span=span)


def residual_of(
    expr: ast.Expr, definitions: Mapping[str, ast.Expr], boolean: frozenset[str], depth: int = 0
) -> ast.Expr:
    """The residual of boolean `expr`; `boolean` names the definitions that are booleans."""
    span = expr.span
    match expr:
        case ast.Compare(op=">=" | ">" as op, left=left, right=right):
            plain = ast.Binary(op="-", left=left, right=right, span=span)
            cleared = _cleared(left, right, plain, definitions, ratio_above=True, strict=op == ">")
            return cleared or plain
        case ast.Compare(op="<=" | "<" as op, left=left, right=right):
            plain = ast.Binary(op="-", left=right, right=left, span=span)
            cleared = _cleared(left, right, plain, definitions, ratio_above=False, strict=op == "<")
            return cleared or plain
        case ast.BoolOp(op=op, left=left, right=right):
            parts = (
                residual_of(left, definitions, boolean, depth),
                residual_of(right, definitions, boolean, depth),
            )
            return ast.Call(
                function="min" if op == "and" else "max", arguments=parts, span=span, name_span=span
            )
        case ast.Not(operand=operand):
            return ast.Negate(operand=residual_of(operand, definitions, boolean, depth), span=span)
        case ast.Name(name=name) if name in boolean and depth < _MAX_INLINE:
            return residual_of(definitions[name], definitions, boolean, depth + 1)
        case _:
            return ast.Conditional(
                condition=expr,
                then=ast.Const(value=_STEP, span=span),
                otherwise=ast.Negate(operand=ast.Const(value=_STEP, span=span), span=span),
                span=span,
            )
