"""Policy-neutral inputs of a simulation: scenarios (price paths) and books (accounts).

The same book must run under every policy, and exchanges name and size contracts differently
(one venue's `BTCUSDT` of 1 BTC is another's `BTC-USDT` of 0.001 BTC).  So books and scenarios
speak of *instruments* (e.g. `BTC/USDT`, matched against each market's `instrument`) and of
quantities in the instrument's book unit: base units (BTC) for a linear contract, face value in
the quote currency (USD) for an inverse one; each policy's contracts are derived when the
simulation starts (see engine/simulation/book_accounts.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class PricePoint:
    """Market state of one instrument at one time (seconds from the scenario start)."""

    time: int
    mark_price: Decimal
    last_price: Decimal
    index_price: Decimal
    book_depth: Decimal | None = None
    average_book_depth: Decimal | None = None

    def market_data(self, previous_mark: Decimal | None) -> dict[str, Decimal]:
        """The account-file `market` fields for this point."""
        data = {
            "mark_price": self.mark_price,
            "last_price": self.last_price,
            "index_price": self.index_price,
            "previous_mark_price": previous_mark if previous_mark is not None else self.mark_price,
        }
        if self.book_depth is not None:
            data["book_depth"] = self.book_depth
        if self.average_book_depth is not None:
            data["average_book_depth"] = self.average_book_depth
        return data


@dataclass(frozen=True, slots=True)
class FundingEvent:
    time: int
    rate: Decimal  # paid by longs to shorts when positive, per funding interval


@dataclass(frozen=True, slots=True)
class InstrumentPath:
    instrument: str
    points: tuple[PricePoint, ...]  # strictly increasing times, first at 0
    funding: tuple[FundingEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class Scenario:
    """A stylised market path for one or more instruments, stepped on a common clock."""

    id: str
    title: str
    description: str
    step_seconds: int
    paths: Mapping[str, InstrumentPath]  # by instrument
    insurance_fund: Mapping[str, Decimal]  # starting balance per pool name ("shared" or a symbol)
    settlement_seconds: int | None = None  # clawback settlement period (default: end of path)
    sources: tuple[Mapping[str, Any], ...] = ()
    path: str = ""

    def times(self) -> list[int]:
        """Every step time: the union of all points' times, sorted."""
        return sorted({p.time for path in self.paths.values() for p in path.points})


@dataclass(frozen=True, slots=True)
class BookPosition:
    instrument: str
    side: str
    quantity: Decimal  # linear: base units (BTC); inverse: face value in the quote (USD)
    entry_price: Decimal
    margin_mode: str
    leverage: Decimal
    isolated_margin: Decimal | None = None  # in the settlement currency (the coin if inverse)
    kind: str = "linear"  # or "inverse" (coin-margined): what `quantity` counts

    @property
    def settlement_currency(self) -> str:
        """What the position's money is counted in: the quote (linear) or the base (inverse)."""
        base, _, quote = self.instrument.partition("/")
        return base if self.kind == "inverse" else quote

    @property
    def notional(self) -> Decimal:
        """Value at entry in the quote currency: quantity * entry (linear), the face (inverse)."""
        return self.quantity if self.kind == "inverse" else self.quantity * self.entry_price


@dataclass(frozen=True, slots=True)
class BookAccount:
    id: str
    wallet_balance: Decimal
    positions: tuple[BookPosition, ...]
    fields: Mapping[str, Decimal] = field(default_factory=dict)  # policies' account_fields


@dataclass(frozen=True, slots=True)
class Book:
    """The accounts a simulation runs, in venue-neutral terms (instruments, base quantities)."""

    accounts: tuple[BookAccount, ...]
    path: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)


def price_mismatches(
    book: Book, scenario: Scenario, tolerance: Decimal = Decimal("0.2")
) -> list[str]:
    """Instruments whose average entry price in the book is far from the scenario's first mark.

    A book priced for another market level liquidates (or never liquidates) at once, which is
    almost always a mistake worth a warning rather than a result.
    """
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    for account in book.accounts:
        for position in account.positions:
            weight, value = totals.get(position.instrument, (Decimal(0), Decimal(0)))
            totals[position.instrument] = (  # weighted by quantity (face value if inverse)
                weight + position.quantity,
                value + position.quantity * position.entry_price,
            )
    found: list[str] = []
    for instrument, (weight, value) in sorted(totals.items()):
        path = scenario.paths.get(instrument)
        if path is None or weight == 0 or not path.points:
            continue
        average = value / weight
        start = path.points[0].mark_price
        if abs(average - start) > tolerance * start:
            found.append(
                f"{instrument}: the book's average entry price {average:.2f} is far from the "
                f"scenario's first mark {start} (more than {tolerance:.0%} apart)"
            )
    return found


def book_instruments(book: Book) -> set[str]:
    """Every instrument a book's positions trade."""
    return {position.instrument for account in book.accounts for position in account.positions}
