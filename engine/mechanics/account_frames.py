"""Account evaluations as a pandas DataFrame: one row per position (engine/frames.py).

What a batch of evaluations looks like to an analyst: every account's positions with the
policy's figures, prices and whether the trigger holds, ready to filter and plot
(``engine.to_pandas(results)``, ``AccountResult.to_pandas()``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from engine.frames import Field, frame

if TYPE_CHECKING:
    import pandas as pd

    from engine.mechanics.evaluate import AccountResult

FIGURES = ("notional", "unrealized_pnl", "maintenance_margin", "margin_balance", "margin_ratio")
POSITION_FIELDS = (
    Field("account", "text"),
    Field("symbol", "text"),
    Field("side", "category", ("long", "short")),
    Field("margin_mode", "category", ("isolated", "cross")),
    Field("size"),
    *(Field(name) for name in FIGURES),
    Field("effective_leverage"),
    Field("liquidation_price"),
    Field("bankruptcy_price"),
    Field("distance_to_liquidation"),
    Field("triggered", "bool"),
    Field("liquidated", "bool"),
)


def _records(results: Iterable[AccountResult]) -> Iterator[dict[str, Any]]:
    for result in results:
        liquidated = {
            order.symbol for item in result.liquidations for order in item.statement.orders
        }
        for position in result.positions:
            yield {
                "account": result.account_id,
                "symbol": position.symbol,
                "side": position.side,
                "margin_mode": position.margin_mode,
                "size": position.size,
                **{name: position.figure(name) for name in FIGURES},
                "effective_leverage": position.effective_leverage,
                "liquidation_price": position.liquidation_price,
                "bankruptcy_price": position.bankruptcy_price,
                "distance_to_liquidation": position.distance_to_liquidation,
                "triggered": position.triggered,
                "liquidated": position.symbol in liquidated,
            }


def positions_frame(results: Iterable[AccountResult], decimals: str = "exact") -> pd.DataFrame:
    """Every position of every result, one row each, in order (a default RangeIndex)."""
    return frame(_records(results), POSITION_FIELDS, decimals=decimals)
