"""A readable account statement: per-position figures, then each liquidation as a trader sees it."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from engine.mechanics.evaluate import AccountResult, PositionResult
from engine.mechanics.liquidate import Liquidation
from engine.numbers import format_decimal, group_thousands

RATIO_PLACES = Decimal("0.000001")


def money(value: Any) -> str:
    """Exact amount with thousands separators (display only; JSON keeps plain digits)."""
    if value is None:
        return "—"
    if not isinstance(value, Decimal):
        return str(value)
    return group_thousands(format_decimal(value))


def ratio(value: Any) -> str:
    """A ratio shown to six places with its percentage (display only)."""
    if not isinstance(value, Decimal):
        return "—"
    shown = (
        format_decimal(value.quantize(RATIO_PLACES))
        if abs(value) < 10**12
        else format_decimal(value)
    )
    percent = (
        format_decimal((value * 100).quantize(Decimal("0.01"))) if abs(value) < 10**12 else "∞"
    )
    return f"{shown} ({percent} %)"


def _row(label: str, value: str, width: int = 22) -> str:
    return f"  {label:<{width}} {value}"


def _tier(row: Mapping[str, Any]) -> str:
    fields = ", ".join(
        f"{k} {format_decimal(v) if isinstance(v, Decimal) else v}"
        for k, v in row.items()
        if k != "tier"
    )
    tier = row.get("tier")
    return (f"tier {format_decimal(tier)}: " if isinstance(tier, Decimal) else "") + fields


def position_lines(position: PositionResult) -> list[str]:
    f = position.figures
    lines = [
        f"{position.symbol} {position.side} {position.margin_mode}, size {money(position.size)}"
    ]
    lines.append(_row("notional", money(f.get("notional"))))
    lines.append(_row("unrealized PnL", money(f.get("unrealized_pnl"))))
    lines.append(_row("maintenance margin", money(f.get("maintenance_margin"))))
    for name, row in position.tiers.items():
        lines.append(_row(f"  {name}", _tier(row)))
    lines.append(_row("margin balance", money(f.get("margin_balance"))))
    lines.append(_row("margin ratio", ratio(f.get("margin_ratio"))))
    lines.append(_row("effective leverage", ratio(position.effective_leverage).split(" ")[0]))
    lines.append(_row("liquidation price", money(position.liquidation_price)))
    lines.append(_row("bankruptcy price", money(position.bankruptcy_price)))
    lines.append(_row("distance to liq.", ratio(position.distance_to_liquidation)))
    lines.append(_row("trigger", "LIQUIDATE" if position.triggered else "safe"))
    return lines


def liquidation_lines(liquidation: Liquidation) -> list[str]:
    statement = liquidation.statement
    lines = [f"Liquidation of {statement.unit}  (event {statement.event_id})", "  steps:"]
    for number, step in enumerate(liquidation.steps, 1):
        lines.append(f"    {number}. {step.name}: {step.status} ({step.detail})")
    lines.append("  orders:")
    for order in statement.orders:
        partial = "partial" if order.is_partial else "full"
        lines.append(
            f"    #{order.number} {order.step}: close {money(order.quantity)} {order.symbol} "
            f"{order.side} ({partial}); mark {money(order.mark_price)}, fill {money(order.fill_price)}, "
            f"settled at {money(order.settlement_price)}"
        )
        if order.requested is not None and order.limit_price is not None:
            lines.append(
                f"       immediate-or-cancel: {money(order.requested)} requested at limit "
                f"{money(order.limit_price)}, {money(order.quantity)} filled, "
                f"{money(order.cancelled)} cancelled"
            )
    lines.append(f"  statement ({statement.balance}):")
    width = max(
        (len(_label(item.kind, item.name, item.order)) for item in statement.items), default=10
    )
    for item in statement.items:
        label = _label(item.kind, item.name, item.order)
        detail = f"   {item.detail}" if item.detail else ""
        lines.append(f"    {label:<{width}}  {money(item.amount):>20}{detail}")
    status = (
        "yes" if statement.reconciles else f"NO, off by {money(statement.reconciliation_error)}"
    )
    lines.append(f"  reconciles exactly: {status}")
    if statement.remaining_margin:
        lines.append(
            f"  margin still backing the open remainder: {money(statement.remaining_margin)}"
        )
    if statement.shortfall:
        lines.append(f"  shortfall handed to the loss waterfall: {money(statement.shortfall)}")
    if liquidation.takeover_result:
        lines.append(
            f"  insurance fund result of the takeover: {money(liquidation.takeover_result)}"
        )
    for recipient, amount in sorted(liquidation.fees_to.items()):
        lines.append(f"  fees to {recipient}: {money(amount)}")
    return lines


def _label(kind: str, name: str, order: int | None) -> str:
    prefix = f"#{order} " if order is not None else ""
    names = {
        "starting_margin": "starting margin",
        "pnl_at_mark": "PnL at mark",
        "slippage": "slippage",
        "shortfall": "shortfall covered",
        "surplus_to_insurance_fund": "surplus to insurance fund",
        "final_balance": "final balance",
    }
    return prefix + (f"fee {name}" if kind == "fee" else names.get(kind, kind))


def render_account(result: AccountResult, *, trace: bool = False) -> str:
    lines = [
        f"Account {result.account_id} under {result.policy_id} ({result.policy_digest[:19]}…)",
        "",
    ]
    for position in result.positions:
        lines += [*position_lines(position), ""]
    if not result.liquidations:
        lines.append(
            "No liquidation."
            if not result.triggered
            else "Triggered (the policy declares no steps)."
        )
    for liquidation in result.liquidations:
        lines += [*liquidation_lines(liquidation), ""]
    if trace:
        lines.append("Trace:")
        for entry in result.trace:
            reads = ", ".join(f"{n} = {v}" for n, v in entry.reads)
            where = f"  [{entry.location}]" if entry.location else ""
            subject = f" ({entry.subject})" if entry.subject else ""
            lines.append(f"  {entry.kind} {entry.name}{subject} = {entry.value}{where}")
            if reads:
                lines.append(f"      reads {reads}")
    return "\n".join(lines).rstrip() + "\n"
