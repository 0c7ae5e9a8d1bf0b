"""Where money sits outside traders' own balances, moved only by explicit transfers.

Traders' balances live in their account states; everything else (insurance funds, fee revenue,
the exchange's write-offs, the market's counterparties, clawback receivable) lives here.  The
conservation check adds both sides and compares with the start: any statement that does not
match the state changes it describes shows up as a difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from engine.numbers import ZERO


@dataclass(slots=True)
class Ledger:
    insurance_funds: dict[str, Decimal]
    fee_revenue: Decimal = ZERO  # fees paid to the exchange
    exchange: Decimal = ZERO  # negative: what the exchange wrote off
    market: Decimal = ZERO  # counterparties outside the book (fills, funding)
    clawback_receivable: Decimal = ZERO  # negative while losses await clawback at settlement
    flows: dict[str, Decimal] = field(default_factory=dict)  # "where the money went" totals

    def add_flow(self, name: str, amount: Decimal) -> None:
        self.flows[name] = self.flows.get(name, ZERO) + amount

    def total(self) -> Decimal:
        return (
            sum(self.insurance_funds.values(), ZERO)
            + self.fee_revenue
            + self.exchange
            + self.market
            + self.clawback_receivable
        )
