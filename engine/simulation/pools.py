"""Insurance-fund pools: which pool a market pays into, its currency, and its starting balance.

A policy pools its fund `shared` (one fund for every market) or `per_symbol` (one per market).
A per-symbol pool counts in its market's settlement currency and starts with the scenario's
balance for the market's instrument (`BTC/USD: 25` is 25 BTC for a coin-margined market).  The
shared pool counts in the simulation's one currency and starts with the scenario's
`shared:<CURRENCY>` balance, or else its plain `shared` balance — a quote-currency amount, used
only when the pool's markets settle in their quote currency (linear contracts), so a scenario
sized in USDT never funds a coin-margined pool with as many coins.
"""

from __future__ import annotations

from decimal import Decimal

from engine.numbers import ZERO
from engine.policy.model import Policy
from engine.simulation.model import Scenario

SHARED = "shared"


def pool_names(policy: Policy, instruments: set[str] | None = None) -> list[str]:
    """The pools a run keeps: the shared one, or one per market of `instruments` (the ones the
    scenario prices or the book trades; all markets when None).  A policy listing hundreds of
    markets thus reports the pools a crash can touch, not hundreds of empty ones."""
    if policy.waterfall.pool == SHARED:
        return [SHARED]
    return [
        symbol
        for symbol, market in policy.markets.items()
        if instruments is None or (market.instrument or symbol) in instruments
    ]


def pool_of(policy: Policy, symbol: str) -> str:
    return SHARED if policy.waterfall.pool == SHARED else symbol


def pool_currency(policy: Policy, pool: str, currency: str) -> str:
    """The currency a pool counts in (`currency`: the simulation's)."""
    return currency if pool == SHARED else policy.markets[pool].settlement_currency


def pool_start(policy: Policy, scenario: Scenario, pool: str, currency: str) -> Decimal:
    """The pool's starting balance from the scenario, in the pool's currency (0 if none)."""
    funds = scenario.insurance_fund
    if pool != SHARED:
        return funds.get(policy.markets[pool].instrument, ZERO)
    qualified = funds.get(f"{SHARED}:{currency}")
    if qualified is not None:
        return qualified
    settling = [m for m in policy.markets.values() if m.settlement_currency == currency]
    in_quote = all(m.kind == "linear" for m in settling)
    return funds.get(SHARED, ZERO) if in_quote else ZERO
