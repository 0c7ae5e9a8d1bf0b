"""A policy-neutral book in one policy's terms: symbols, contracts, margins and one currency.

A book names instruments (`BTC/USDT`, `BTC/USD`) and quantities in the instrument's book unit:
base units (BTC) for a linear contract, face value in the quote currency (USD) for an inverse
one.  Either way a policy's contracts are `quantity / contract_size` (1 BTC / 0.001 BTC = 1,000
contracts; 10,000 USD / 100 USD = 100 contracts), exactly.  Wallets and isolated margins are in
the settlement currency of the account's markets (USDT, or the coin of an inverse contract); an
isolated position without a margin gets the policy's `initial_margin` at entry, or else its
`notional` at entry over the leverage, so the policy's own formulas decide what a margin is.

Money is added up across accounts (results, the conservation check), so everything a simulation
moves must be counted in one currency: an account, or a book, whose positions settle in more
than one currency under a policy is refused (E622) rather than simulated wrongly.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

from engine.dsl.runtime import EvaluationContext
from engine.errors import EngineError, InputError
from engine.mechanics.accounts import Account, account_fields
from engine.numbers import DECIMAL_CONTEXT
from engine.policy.markets import missing_instrument_diagnostics
from engine.policy.model import Market, Policy
from engine.simulation.model import Book, BookPosition
from engine.source import Diagnostic

MAX_PROBLEMS = 50


def symbols_by_instrument(policy: Policy) -> dict[str, list[str]]:
    """The policy's symbols trading each instrument, in declaration order."""
    mapping: dict[str, list[str]] = {}
    for symbol, market in policy.markets.items():
        mapping.setdefault(market.instrument or symbol, []).append(symbol)
    return mapping


def quantity_unit(market: Market) -> str:
    """What a book quantity of this market counts: the base (linear) or quote (inverse) unit."""
    base, _, quote = (market.instrument or market.symbol).partition("/")
    if market.kind == "inverse":
        return quote or market.symbol
    return base


def default_margin(policy: Policy, position: dict[str, Any], wallet: Decimal) -> Decimal:
    """`initial_margin` at entry, else `notional` at entry / leverage, from the policy."""
    market = {**policy.markets[position["symbol"]].record, "mark_price": position["entry_price"]}
    context = EvaluationContext(
        {"positions": [position], "wallet_balance": wallet}, {position["symbol"]: market}
    )
    frame = context.frame_for(position)
    definitions = policy.program.definitions
    if "initial_margin" in definitions:
        margin: Decimal = definitions["initial_margin"](frame)
        return margin
    notional: Decimal = definitions["notional"](frame)
    leverage: Decimal = position["leverage"]
    return notional / leverage


def _record(policy: Policy, symbol: str, position: BookPosition) -> dict[str, Any]:
    market = policy.markets[symbol]
    return {
        "symbol": symbol,
        "side": position.side,
        "size": position.quantity / market.contract_size,
        "entry_price": position.entry_price,
        "margin_mode": position.margin_mode,
        "leverage": position.leverage,
    }


def book_accounts(policy: Policy, book: Book, instruments: dict[str, list[str]]) -> list[Account]:
    """The book in this policy's terms: symbols by instrument, sizes in the policy's contracts."""
    with decimal.localcontext(DECIMAL_CONTEXT):
        return _accounts(policy, book, instruments)


def _accounts(policy: Policy, book: Book, instruments: dict[str, list[str]]) -> list[Account]:
    where = book.path or "<book>"
    accounts: list[Account] = []
    problems: list[Diagnostic] = []
    currencies: dict[str, str] = {}  # currency -> the first account that uses it
    missing: dict[str, list[str]] = {}  # instrument the policy lacks -> where the book trades it
    for account in book.accounts:
        positions: list[dict[str, Any]] = []
        settled: dict[str, str] = {}  # currency -> instrument
        for index, position in enumerate(account.positions):
            symbols = instruments.get(position.instrument)
            if not symbols:
                missing.setdefault(position.instrument, []).append(
                    f"account {account.id}, position {index + 1}"
                )
                continue
            symbol = symbols[0]
            market = policy.markets[symbol]
            if market.kind != position.kind:
                problems.append(
                    Diagnostic(
                        "E623",
                        f"account {account.id}, position {index + 1}: the book's "
                        f"{position.instrument} position is {position.kind} (quantity in "
                        f"{'face value' if position.kind == 'inverse' else 'base units'}) but "
                        f"{policy.id}'s market {symbol} is {market.kind}",
                        path=where,
                        hint="the book's `kind` says what its quantity counts; give the policy a "
                        f"{position.kind} market for {position.instrument}",
                    )
                )
                continue
            settled.setdefault(market.settlement_currency, position.instrument)
            record = _record(policy, symbol, position)
            if position.margin_mode == "isolated":
                if position.isolated_margin is not None:
                    record["isolated_margin"] = position.isolated_margin
                else:
                    try:
                        record["isolated_margin"] = default_margin(
                            policy, record, account.wallet_balance
                        )
                    except EngineError as error:
                        problems.append(
                            Diagnostic(
                                "E605",
                                f"cannot derive the isolated margin of account {account.id}, "
                                f"position {index + 1} under {policy.id}: {error}",
                                path=where,
                                hint="give `isolated_margin` in the book",
                            )
                        )
                        continue
            positions.append(record)
        if len(settled) > 1:
            shown = ", ".join(f"{instrument} in {c}" for c, instrument in settled.items())
            problems.append(
                Diagnostic(
                    "E622",
                    f"account {account.id} holds positions settling in more than one currency "
                    f"under {policy.id} ({shown}); one wallet cannot hold both",
                    path=where,
                    hint="split the account: a book's accounts each settle in one currency",
                )
            )
        for currency in settled:
            currencies.setdefault(currency, account.id)
        for name in account.fields:
            if name not in policy.account_fields:
                problems.append(
                    Diagnostic(
                        "E625",
                        f"{policy.id} declares no account field '{name}' (account {account.id})",
                        path=where,
                        hint="account_fields: " + (", ".join(policy.account_fields) or "none"),
                    )
                )
        fields = account_fields(policy, account.fields)
        accounts.append(
            Account(account.id, account.wallet_balance, tuple(positions), {}, fields=fields)
        )
    if len(currencies) > 1 and not any(p.code == "E622" for p in problems):
        shown = ", ".join(f"{c} (e.g. account {a})" for c, a in currencies.items())
        problems.append(
            Diagnostic(
                "E622",
                f"the book's accounts settle in more than one currency under {policy.id}: "
                f"{shown}; a simulation adds money up across accounts, so it runs in one currency",
                path=where,
                hint="run the linear and the inverse (coin-margined) accounts as separate books",
            )
        )
    # one E620 per instrument, with the fix (not one per position)
    problems[:0] = missing_instrument_diagnostics(policy.id, policy.markets, missing, where)
    if problems:
        raise InputError(diagnostics=problems[:MAX_PROBLEMS])
    return accounts


def book_currency(policy: Policy, accounts: list[Account]) -> str:
    """The one settlement currency of the accounts' markets (the first market's without any)."""
    for account in accounts:
        for position in account.positions:
            return policy.markets[position["symbol"]].settlement_currency
    return next(iter(policy.markets.values())).settlement_currency if policy.markets else ""
