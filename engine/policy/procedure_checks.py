"""Whole-policy checks of the liquidation procedure and waterfall that the schema cannot state.

Run after the expressions are checked, on the data the structure pass left (parts with schema
errors are taken out, and `dropped` tells which, so their consequences are not reported again).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from engine.dsl import ast
from engine.dsl.check import Scope
from engine.policy.procedure import REQUIRED_DEFINITIONS
from engine.policy.yaml_reader import Pointer
from engine.source import Diagnostic, Span

Locate = Callable[[Pointer, bool], Span]
Dropped = Callable[..., bool]
Parse = Callable[[Pointer, str], ast.Expr | None]


def market_reads(expr: ast.Expr, field: str) -> list[Span]:
    """Where `expr` reads `market.<field>`."""
    return [
        node.name_span
        for node in ast.walk(expr)
        if isinstance(node, ast.Attribute)
        and node.name == field
        and isinstance(node.value, ast.Name)
        and node.value.name == "market"
    ]


def _is_zero(expr: ast.Expr) -> bool:
    """Whether an amount is zero whatever the inputs: `0`, `0%`, or a product with such a factor."""
    if isinstance(expr, ast.Const):
        value = expr.value
        return isinstance(value, Decimal) and not isinstance(value, bool) and value == 0
    if isinstance(expr, ast.Binary) and expr.op == "*":
        return _is_zero(expr.left) or _is_zero(expr.right)
    return False


def _reads_bankruptcy_price(expr: ast.Expr) -> bool:
    return any(
        isinstance(node, ast.Attribute)
        and node.name == "bankruptcy_price"
        and isinstance(node.value, ast.Name)
        and node.value.name == "order"
        for node in ast.walk(expr)
    )


def procedure_problems(
    data: Mapping[str, Any], scope: Scope, at: Locate, dropped: Dropped, parse: Parse
) -> list[Diagnostic]:
    """The waterfall's, the charges' and the steps' rules, and warning W006."""
    problems: list[Diagnostic] = []
    liquidation = data.get("liquidation", {})
    waterfall = data.get("waterfall", {})
    order = waterfall.get("order", [])
    if order and order[-1] not in ("debt", "write_off"):
        problems.append(
            Diagnostic(
                "E414",
                "the waterfall must end with `debt` or `write_off`",
                at(("waterfall", "order"), False),
                "someone has to take what is left",
            )
        )
    if "adl" in order and "adl" not in waterfall and not dropped("waterfall", "adl"):
        problems.append(
            Diagnostic(
                "E415",
                "the waterfall uses `adl` but declares no `adl.ranking`",
                at(("waterfall", "order"), False),
            )
        )
    if "adl" in order and "clawback" in order:
        problems.append(
            Diagnostic(
                "E416",
                "a waterfall uses either `adl` or `clawback`, not both",
                at(("waterfall", "order"), False),
            )
        )
    for index, charge in enumerate(data.get("charges", [])):
        if charge is not None and charge.get("at") == "interval" and "every_seconds" not in charge:
            problems.append(
                Diagnostic(
                    "E417",
                    f"charge '{charge['name']}' runs at an interval but has no `every_seconds`",
                    at(("charges", index), False),
                )
            )
    if liquidation.get("steps"):
        for name in REQUIRED_DEFINITIONS:
            if name not in scope.definitions:
                problems.append(
                    Diagnostic(
                        "E412",
                        f"a policy with liquidation steps needs the definition '{name}'",
                        at(("liquidation", "steps"), True),
                        "the engine reads it for results and statements; see docs/mechanics.md",
                    )
                )
        for index, step in enumerate(liquidation["steps"]):
            if step is not None and step["kind"] == "reduce" and "quantity" not in step:
                problems.append(
                    Diagnostic(
                        "E413",
                        f"step '{step['name']}' reduces but has no `quantity`",
                        at(("liquidation", "steps", index), False),
                    )
                )
            if step is not None and step["kind"] != "reduce" and "limit_price" in step:
                problems.append(
                    Diagnostic(
                        "E418",
                        f"step '{step['name']}' is a `{step['kind']}` step but has a `limit_price`",
                        at(("liquidation", "steps", index, "limit_price"), True),
                        "only `reduce` steps place an immediate-or-cancel order with a limit; "
                        "remove the limit or make the step `kind: reduce`",
                    )
                )
    problems += _fees_first(liquidation, at, parse)
    return problems


def _fees_first(liquidation: Mapping[str, Any], at: Locate, parse: Parse) -> list[Diagnostic]:
    """W006: fees paid before losses while the takeover settles at the bankruptcy price.

    Settled at the bankruptcy price the trader's loss consumes exactly the margin, so a fee
    taken first always leaves the same amount of loss unpaid: every fee becomes a shortfall the
    insurance fund pays back to itself.
    """
    fees = [(i, fee) for i, fee in enumerate(liquidation.get("fees") or []) if fee is not None]
    settlement = liquidation.get("fill", {}).get("settlement_price")
    order = liquidation.get("consumption_order", ["fees", "loss", "slippage"])
    if not fees or not isinstance(settlement, str) or order.index("fees") > order.index("loss"):
        return []
    charged = []
    for index, fee in fees:
        expr = parse(("liquidation", "fees", index, "amount"), fee["amount"])
        if expr is None or not _is_zero(expr):
            charged.append(fee["name"])
    expr = parse(("liquidation", "fill", "settlement_price"), settlement)
    if not charged or expr is None or not _reads_bankruptcy_price(expr):
        return []
    declared = "consumption_order" in liquidation
    where: Pointer = (
        ("liquidation", "consumption_order")
        if declared
        else ("liquidation", "fill", "settlement_price")
    )
    return [
        Diagnostic(
            "W006",
            "fees come before the loss in the consumption order while orders settle at the"
            f" bankruptcy price: each fee ({', '.join(charged)}) becomes a shortfall the"
            " insurance fund pays",
            at(where, False),
            "at the bankruptcy price the loss takes the whole margin; put `fees` last"
            " (`consumption_order: [loss, slippage, fees]`) unless the venue really charges first",
            severity="warning",
        )
    ]
