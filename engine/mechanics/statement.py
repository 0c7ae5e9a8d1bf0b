"""Settlement statements: itemised, reconciled to the last unit, with a deterministic event id."""

from __future__ import annotations

import decimal
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.numbers import LEDGER_CONTEXT, ZERO, format_decimal


@dataclass(frozen=True, slots=True)
class LineItem:
    """One movement of money in a statement; `amount` is signed from the trader's point of view."""

    kind: str  # starting_margin | pnl_at_mark | slippage | fee | surplus_to_insurance_fund | shortfall | final_balance
    name: str
    amount: Decimal
    balance: str  # which balance it touches: "isolated_margin:BTCUSDT long" or "cross_wallet"
    order: int | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "amount": format_decimal(self.amount),
            "balance": self.balance,
            "order": self.order,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Order:
    """One liquidation order: what was closed, at which prices, and what it cost."""

    number: int
    step: str
    symbol: str
    side: str
    quantity: Decimal
    is_partial: bool
    mark_price: Decimal
    fill_price: Decimal
    settlement_price: Decimal
    bankruptcy_price: Decimal | None
    pnl_at_mark: Decimal
    slippage: Decimal
    fees: tuple[tuple[str, str, Decimal, Decimal, str], ...]  # (name, kind, charged, collected, to)
    consumed: tuple[tuple[str, Decimal], ...]  # margin consumed per category, in consumption order
    shortfall: Decimal
    takeover_result: Decimal  # fill vs settlement difference, to the insurance fund
    margin_before: Decimal
    margin_after: Decimal
    kind: str = "liquidation"  # or "offset": a self-trade leg at the mark
    notional: Decimal = ZERO  # the policy's `notional` of the closed contracts, at the mark
    requested: Decimal | None = None  # an immediate-or-cancel order: contracts asked for
    limit_price: Decimal | None = None  # …and its limit; `requested - quantity` was cancelled

    @property
    def fees_collected(self) -> Decimal:
        return sum((collected for _, _, _, collected, _ in self.fees), ZERO)

    @property
    def cancelled(self) -> Decimal:
        return self.requested - self.quantity if self.requested is not None else ZERO

    def as_dict(self) -> dict[str, Any]:
        show = format_decimal
        return {
            "number": self.number,
            "kind": self.kind,
            "step": self.step,
            "symbol": self.symbol,
            "side": self.side,
            "quantity": show(self.quantity),
            "notional": show(self.notional),
            "requested_quantity": show(self.requested) if self.requested is not None else None,
            "cancelled_quantity": show(self.cancelled),
            "limit_price": show(self.limit_price) if self.limit_price is not None else None,
            "is_partial": self.is_partial,
            "mark_price": show(self.mark_price),
            "fill_price": show(self.fill_price),
            "settlement_price": show(self.settlement_price),
            "bankruptcy_price": show(self.bankruptcy_price)
            if self.bankruptcy_price is not None
            else None,
            "realized_pnl": show(self.pnl_at_mark + self.slippage),
            "pnl_at_mark": show(self.pnl_at_mark),
            "slippage": show(self.slippage),
            "fees": [
                {
                    "name": n,
                    "kind": k,
                    "charged": show(c),
                    "collected": show(col),
                    "waived": show(c - col),
                    "to": to,
                }
                for n, k, c, col, to in self.fees
            ],
            "margin_consumed": {name: show(amount) for name, amount in self.consumed},
            "shortfall": show(self.shortfall),
            "takeover_result": show(self.takeover_result),
            "margin_before": show(self.margin_before),
            "margin_after": show(self.margin_after),
        }


@dataclass(frozen=True, slots=True)
class Statement:
    """The whole liquidation of one unit (an isolated position, or the cross positions)."""

    event_id: str
    unit: str
    balance: str
    starting_margin: Decimal
    orders: tuple[Order, ...]
    items: tuple[LineItem, ...]
    surplus_to_insurance_fund: Decimal
    shortfall: Decimal
    final_balance: Decimal
    remaining_margin: Decimal  # margin still backing what stays open (partial liquidation)
    fully_liquidated: bool
    reconciliation_error: Decimal = field(default=ZERO)

    @property
    def reconciles(self) -> bool:
        return self.reconciliation_error == 0

    @property
    def fees_collected(self) -> Decimal:
        return sum((o.fees_collected for o in self.orders), ZERO)

    @property
    def closed_quantity(self) -> Decimal:
        return sum((o.quantity for o in self.orders), ZERO)

    def as_dict(self) -> dict[str, Any]:
        show = format_decimal
        return {
            "event_id": self.event_id,
            "unit": self.unit,
            "balance": self.balance,
            "starting_margin": show(self.starting_margin),
            "orders": [o.as_dict() for o in self.orders],
            "items": [i.as_dict() for i in self.items],
            "fees_collected": show(self.fees_collected),
            "surplus_to_insurance_fund": show(self.surplus_to_insurance_fund),
            "shortfall": show(self.shortfall),
            "final_balance": show(self.final_balance),
            "remaining_margin": show(self.remaining_margin),
            "fully_liquidated": self.fully_liquidated,
            "reconciles": self.reconciles,
            "reconciliation_error": show(self.reconciliation_error),
        }


def reconcile(
    items: tuple[LineItem, ...], final_balance: Decimal, remaining_margin: Decimal
) -> Decimal:
    """Starting margin + every signed item must equal what the trader ends with, exactly.

    What the trader ends with is the final balance plus the margin still backing any part of
    the unit left open.  Returns the difference (zero when the statement reconciles).
    """
    with decimal.localcontext(LEDGER_CONTEXT):  # exact: a rounded sum could hide a difference
        flows = sum((i.amount for i in items if i.kind not in ("final_balance",)), ZERO)
        return flows - (final_balance + remaining_margin)


def event_id(policy_digest: str, unit: str, inputs: Any) -> str:
    """A deterministic id: the same policy content and inputs always give the same id."""
    text = json.dumps(
        {"policy": policy_digest, "unit": unit, "inputs": inputs},
        sort_keys=True,
        default=str,
        separators=(",", ":"),
    )
    return "liq-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
