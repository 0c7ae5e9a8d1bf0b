"""Liquidation and bankruptcy price of a hypothetical position (`liqpolicy liq-price`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.errors import InputError
from engine.mechanics.accounts import parse_account
from engine.mechanics.evaluate import evaluate_account
from engine.numbers import format_decimal
from engine.policy.model import Policy
from engine.source import Diagnostic


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """Liquidation and bankruptcy price of one position, with the tier row at the price."""

    symbol: str
    side: str
    size: Decimal
    entry_price: Decimal
    margin_mode: str
    margin: Decimal | None
    liquidation_price: Decimal | None
    bankruptcy_price: Decimal | None
    tier: Mapping[str, Any] | None
    maintenance_margin: Decimal | None

    def as_dict(self) -> dict[str, Any]:
        def show(value: Decimal | None) -> str | None:
            return format_decimal(value) if value is not None else None

        return {
            "symbol": self.symbol,
            "side": self.side,
            "size": show(self.size),
            "entry_price": show(self.entry_price),
            "margin_mode": self.margin_mode,
            "margin": show(self.margin),
            "liquidation_price": show(self.liquidation_price),
            "bankruptcy_price": show(self.bankruptcy_price),
            "maintenance_margin": show(self.maintenance_margin),
            "tier": {k: show(v) if isinstance(v, Decimal) else v for k, v in self.tier.items()}
            if self.tier is not None
            else None,
        }


def _prices(price: Decimal) -> dict[str, str]:
    """Market data for a quote: every price input at the same price, the rest held fixed."""
    text = str(price)
    return {
        "mark_price": text,
        "last_price": text,
        "index_price": text,
        "previous_mark_price": text,
    }


def quote_prices(
    policy: Policy,
    *,
    symbol: str,
    side: str,
    size: Decimal,
    entry_price: Decimal,
    leverage: Decimal | None = None,
    margin: Decimal | None = None,
    mode: str = "isolated",
    wallet: Decimal | None = None,
    mark_price: Decimal | None = None,
) -> PriceQuote:
    """Prices for one position opened at `entry_price`, evaluated with the mark at entry.

    Isolated: `margin` (or notional / `leverage`) backs the position.  Cross: `wallet` does (or
    `margin` when no wallet is given).  The tier reported is the one at the liquidation price.
    """
    if leverage is None and margin is None:
        raise InputError(
            diagnostics=[Diagnostic("E606", "give a leverage or a margin", path="<liq-price>")]
        )
    position: dict[str, Any] = {
        "symbol": symbol,
        "side": side,
        "size": str(size),
        "entry_price": str(entry_price),
        "margin_mode": mode,
        "leverage": str(leverage if leverage is not None else 1),
    }
    if mode == "isolated" and margin is not None:
        position["isolated_margin"] = str(margin)
    if mode == "cross":
        balance = wallet if wallet is not None else margin
        if balance is None:
            raise InputError(
                diagnostics=[
                    Diagnostic(
                        "E606", "cross mode needs a wallet balance or a margin", path="<liq-price>"
                    )
                ]
            )
    else:
        balance = wallet if wallet is not None else Decimal(0)
    account = parse_account(
        {
            "id": "quote",
            "wallet_balance": str(balance),
            "positions": [position],
            "market": {symbol: _prices(mark_price if mark_price is not None else entry_price)},
        },
        policy,
        path="<liq-price>",
    )
    result = evaluate_account(policy, account, run_liquidation=False).positions[0]
    tier = None
    if result.liquidation_price is not None:
        tier_account = parse_account(
            {
                "id": "quote",
                "wallet_balance": str(balance),
                "positions": [position],
                "market": {symbol: _prices(result.liquidation_price)},
            },
            policy,
            path="<liq-price>",
        )
        at_liquidation = evaluate_account(policy, tier_account, run_liquidation=False).positions[0]
        tier = next(iter(at_liquidation.tiers.values()), None)
    parsed = account.positions[0]
    return PriceQuote(
        symbol,
        side,
        size,
        entry_price,
        mode,
        parsed.get("isolated_margin") if mode == "isolated" else balance,
        result.liquidation_price,
        result.bankruptcy_price,
        tier,
        result.figures.get("maintenance_margin"),
    )
