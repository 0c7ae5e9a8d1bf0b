"""The liquidated unit and its balance: what backs the orders, and what is left after them.

A unit is an isolated position (its own margin) or all cross positions of an account (the cross
wallet).  After the last order :func:`close_out` settles what remains: a cross wallet's deficit
becomes shortfall, the policy's surplus rule may keep remaining margin for the insurance fund,
the rest goes back to the trader, and the statement is reconciled to the last unit.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from engine.dsl.runtime import Frame
from engine.mechanics.state import AccountState, Evaluator
from engine.mechanics.statement import LineItem, Order, Statement, event_id, reconcile
from engine.numbers import LEDGER_CONTEXT, ZERO


class Unit:
    """The positions being liquidated together and the balance that backs them."""

    def __init__(self, state: AccountState, positions: list[dict[str, Any]]) -> None:
        self.state = state
        self.positions = positions
        self.cross = positions[0]["margin_mode"] == "cross"
        first = positions[0]
        self.name = "cross" if self.cross else f"{first['symbol']} {first['side']} isolated"
        self.balance_name = (
            "cross_wallet" if self.cross else f"isolated_margin:{first['symbol']} {first['side']}"
        )

    @property
    def margin(self) -> Decimal:
        if self.cross:
            return self.state.wallet_balance
        return Decimal(self.positions[0]["isolated_margin"]) if self.positions else ZERO

    def set_margin(self, value: Decimal, position: dict[str, Any]) -> None:
        if self.cross:
            self.state.wallet_balance = value
        else:
            position["isolated_margin"] = value

    def open_positions(self) -> list[dict[str, Any]]:
        return [p for p in self.positions if p in self.state.positions]


def close_out(
    evaluator: Evaluator,
    state: AccountState,
    unit: Unit,
    orders: list[Order],
    items: list[LineItem],
    starting: Decimal,
    inputs: Any,
) -> Statement:
    """Settle the unit's balance after its last order and build the reconciled statement."""
    fully = not unit.open_positions()
    if fully and unit.cross and unit.margin < 0 and orders:
        # Losses that other positions' profits backed while open, and no longer do.
        deficit = unit.margin.copy_negate()
        state.wallet_balance = ZERO
        last = orders[-1]
        shortfall = LEDGER_CONTEXT.add(last.shortfall, deficit)
        orders[-1] = replace(last, shortfall=shortfall, margin_after=ZERO)
        items.append(
            LineItem(
                "shortfall",
                "wallet deficit once every cross position closed",
                deficit,
                unit.balance_name,
                last.number,
            )
        )
    surplus = ZERO
    remaining = ZERO if fully or unit.cross else unit.margin
    final = unit.margin if (fully or unit.cross) else ZERO
    if fully and orders:
        rule = evaluator.policy.procedure.surplus_to_insurance_fund
        if rule and final > 0:
            last = orders[-1]
            order = {
                "kind": "offset" if last.kind == "offset" else "liquidation",
                "quantity": last.quantity,
                "fill_price": last.fill_price,
                "is_partial": False,
                "step": Decimal(last.number),
                "margin_before": last.margin_before,
                "remaining_margin": final,
                "notional": ZERO,
            }
            probe = Frame(
                {
                    "symbol": last.symbol,
                    "side": last.side,
                    "size": ZERO,
                    "margin_mode": "cross" if unit.cross else "isolated",
                },
                {"positions": []},
                evaluator.context(state).markets.get(last.symbol),
                None,
                order,
            )
            surplus = min(final, max(ZERO, evaluator.expression(rule, probe, "surplus")))
        if surplus:
            items.append(
                LineItem(
                    "surplus_to_insurance_fund",
                    "remaining margin kept by the insurance fund",
                    surplus.copy_negate(),
                    unit.balance_name,
                )
            )
        final = LEDGER_CONTEXT.subtract(final, surplus)
        if unit.cross:
            state.wallet_balance = final
        else:
            state.wallet_balance = LEDGER_CONTEXT.add(state.wallet_balance, final)
    elif unit.cross:
        state.wallet_balance = final
    items.append(
        LineItem(
            "final_balance",
            "returned to the trader" if not unit.cross else "cross wallet after",
            final,
            unit.balance_name,
        )
    )
    lines = tuple(items)
    error = reconcile(lines, final, remaining)
    shortfall = sum((o.shortfall for o in orders), ZERO)
    statement = Statement(
        event_id=event_id(evaluator.policy.digest, unit.name, inputs),
        unit=unit.name,
        balance=unit.balance_name,
        starting_margin=starting,
        orders=tuple(orders),
        items=lines,
        surplus_to_insurance_fund=surplus,
        shortfall=shortfall,
        final_balance=final,
        remaining_margin=remaining,
        fully_liquidated=fully,
        reconciliation_error=error,
    )
    return statement
