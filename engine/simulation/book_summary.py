"""What a book holds, in numbers: accounts, positions and notional by instrument.

Notional is at entry in the instrument's quote currency: quantity times entry price for a linear
position, the face value itself for an inverse one.  Wallets are summed per settlement currency
(an account's is its first position's; accounts without positions are left out).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from engine.numbers import ZERO
from engine.simulation.model import Book, BookAccount


def _median(values: list[Decimal]) -> Decimal:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def summarize_book(book: Book | Iterable[BookAccount]) -> dict[str, Any]:
    """Counts and notional of a book, by instrument, side and margin mode (all exact)."""
    accounts = book.accounts if isinstance(book, Book) else tuple(book)
    instruments: dict[str, dict[str, Any]] = {}
    leverages: dict[str, list[Decimal]] = {}
    wallets = ZERO
    by_currency: dict[str, Decimal] = {}
    positions = 0
    for account in accounts:
        wallets += account.wallet_balance
        if account.positions:
            currency = account.positions[0].settlement_currency
            by_currency[currency] = by_currency.get(currency, ZERO) + account.wallet_balance
        for p in account.positions:
            positions += 1
            entry = instruments.setdefault(
                p.instrument,
                {
                    "positions": 0,
                    "long": 0,
                    "short": 0,
                    "cross": 0,
                    "isolated": 0,
                    "quantity_long": ZERO,
                    "quantity_short": ZERO,
                    "notional": ZERO,
                    "kind": p.kind,
                },
            )
            entry["positions"] += 1
            entry[p.side] += 1
            entry[p.margin_mode] += 1
            entry[f"quantity_{p.side}"] += p.quantity
            entry["notional"] += p.notional
            leverages.setdefault(p.instrument, []).append(p.leverage)
    for name, entry in instruments.items():
        values = leverages[name]
        entry["leverage"] = {"min": min(values), "median": _median(values), "max": max(values)}
    return {
        "accounts": len(accounts),
        "positions": positions,
        "wallet_balance": wallets,
        "wallet_balances": dict(sorted(by_currency.items())),
        "notional": sum((e["notional"] for e in instruments.values()), ZERO),
        "instruments": dict(sorted(instruments.items())),
    }
