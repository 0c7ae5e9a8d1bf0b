"""The OKX, Bybit, BitMEX, dYdX and Hyperliquid policies: tables, hand derivations, code vectors.

Every expected number is worked out by hand in the docstring or from a cited source (the venue's
page, or dYdX's own Go tests), never read back from the engine. Section numbers (§) refer to
/work/shared/research/exchanges.md. The policies' own `examples:` (run by `liqpolicy test` and by
tests/test_api.py for every shipped policy) reproduce the venues' published worked examples.
"""

from __future__ import annotations

import functools
import itertools
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.mechanics.accounts import parse_account
from engine.mechanics.evaluate import AccountResult, evaluate_account
from engine.mechanics.examples import run_examples
from engine.policy.load import load_policy
from engine.policy.model import Policy
from engine.simulation.model import (
    Book,
    BookAccount,
    BookPosition,
    InstrumentPath,
    PricePoint,
    Scenario,
)
from engine.simulation.simulate import simulate

VENUES = (
    "okx-usdt-swap",
    "bybit-usdt-perpetual",
    "bybit-inverse-perpetual",
    "bitmex-xbtusd",
    "bitmex-xbtusd-dpe-2016",
    "dydx-v4",
    "hyperliquid",
)
SATOSHI = Decimal("0.00000001")


@functools.cache
def policy(policy_id: str) -> Policy:
    return load_policy(policy_id)


def evaluate(policy_id: str, account: dict[str, Any]) -> AccountResult:
    loaded = policy(policy_id)
    return evaluate_account(loaded, parse_account({"id": "t", **account}, loaded))


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


@pytest.mark.parametrize("policy_id", VENUES)
def test_every_worked_example_passes(policy_id: str) -> None:
    results = run_examples(policy(policy_id))
    assert results, f"{policy_id} has no worked examples"
    assert [r.as_dict() for r in results if not r.passed] == []


# -- tier tables ---------------------------------------------------------------------------------


def test_bybit_deductions_follow_bybits_recursion() -> None:
    """Bybit's margin-parameters page: deduction(n) = risk limit(n−1) × (MMR(n) − MMR(n−1)) +
    deduction(n−1), deduction(1) = 0 (§5.1; e.g. 2,000,000 × 0.06 % = 1,200; 1,200 + 2,600,000 ×
    0.07 % = 3,020). The risk limit of tier n−1 is the table's max of the row before."""
    rows = policy("bybit-usdt-perpetual").tables["btcusdt_risk_limits"].rows
    assert len(rows) == 20
    assert rows[0]["maintenance_deduction"] == 0
    for previous, row in itertools.pairwise(rows):
        expected = (
            previous["max_value"]
            * (row["maintenance_margin_rate"] - previous["maintenance_margin_rate"])
            + previous["maintenance_deduction"]
        )
        assert row["maintenance_deduction"] == expected, row


@pytest.mark.parametrize(
    ("symbol", "edge", "low_leverage", "high_leverage"),
    [("BTC", 150_000_000, 40, 20), ("ETH", 100_000_000, 25, 15), ("SOL", 70_000_000, 20, 10)],
)
def test_hyperliquid_maintenance_is_continuous_at_the_tier_edge(
    symbol: str, edge: int, low_leverage: int, high_leverage: int
) -> None:
    """Hyperliquid's deduction recursion makes the maintenance margin continuous: at the edge E,
    E / (2 × low) from below equals E / (2 × high) − E × (1/(2 high) − 1/(2 low)) from above, and
    one unit of notional further the rate of the upper tier applies."""
    one = {"margin_mode": "isolated", "side": "long", "entry_price": 1, "leverage": 1}
    below = evaluate(
        "hyperliquid",
        {
            "wallet_balance": 0,
            "positions": [{"symbol": symbol, "size": edge - 1, **one}],
            "market": {symbol: {"mark_price": 1}},
        },
    )
    at = evaluate(
        "hyperliquid",
        {
            "wallet_balance": 0,
            "positions": [{"symbol": symbol, "size": edge, **one}],
            "market": {symbol: {"mark_price": 1}},
        },
    )
    low_rate = Decimal(1) / (2 * low_leverage)
    high_rate = Decimal(1) / (2 * high_leverage)
    assert below.positions[0].figure("maintenance_margin") == (edge - 1) * low_rate
    assert at.positions[0].figure("maintenance_margin") == edge * high_rate - edge * (
        high_rate - low_rate
    )
    assert abs(at.positions[0].figure("maintenance_margin") - edge * low_rate) < Decimal("1e-40")


def test_okx_reduces_two_tiers_to_the_top_of_the_tier_two_below() -> None:
    """OKX (§3.4): a tier-n position (n ≥ 3) is reduced to the top of tier n−2. On the assumed
    BTC tiers (0–300, 301–600, 601–1,200, 1,201–2,400, 2,401–3,600 contracts) a 3,000-contract
    position is in tier 5 and is reduced to 1,200 (the top of tier 3): 1,800 contracts; a
    tier-2 position is not reduced."""
    common = {"side": "long", "entry_price": 100000, "margin_mode": "isolated", "leverage": 20}
    market = {"BTC-USDT-SWAP": {"mark_price": 100000}}

    def reduction(size: int) -> Decimal:
        result = evaluate(
            "okx-usdt-swap",
            {
                "wallet_balance": 0,
                "positions": [{"symbol": "BTC-USDT-SWAP", "size": size, **common}],
                "market": market,
            },
        )
        value: Decimal = result.positions[0].figure("reduce_two_tiers")
        return value

    assert reduction(3000) == 1800
    assert reduction(1500) == 1500 - 600  # tier 4 → the top of tier 2, 600
    assert reduction(500) == 0


# -- Bybit: the FillOrKill example, order by order ------------------------------------------------


def test_bybit_fill_or_kill_statement() -> None:
    """100 BTC long at 23,000 (tier 2), margin 25,000, mark 22,860, depth 100,000,000.
    FOK: (2,300,000 − 2,000,000) / 23,000 = 13.0434… → 13.044 BTC (rounded up to 0.001).
    Fill 22,860 × (1 − 13.044 × 22,860 / 100,000,000 / 2) = 22,825.917… → floor 22,825.9.
    PnL at mark 13.044 × −140 = −1,826.16; slippage 13.044 × (22,825.9 − 22,860) = −444.8004;
    fee 13.044 × 22,825.9 × 0.055 % = 163.75757178 to the exchange.
    Margin left 25,000 − 1,826.16 − 444.8004 − 163.75757178 = 22,565.28202822."""
    result = evaluate(
        "bybit-usdt-perpetual",
        {
            "wallet_balance": 0,
            "positions": [
                {
                    "symbol": "BTCUSDT",
                    "side": "long",
                    "size": 100,
                    "entry_price": 23000,
                    "margin_mode": "isolated",
                    "isolated_margin": 25000,
                    "leverage": 92,
                }
            ],
            "market": {"BTCUSDT": {"mark_price": 22860, "book_depth": 100000000}},
        },
    )
    statement = result.liquidations[0].statement
    (order,) = statement.orders
    assert order.quantity == Decimal("13.044")
    assert order.fill_price == Decimal("22825.9")
    assert order.settlement_price == order.fill_price
    assert order.pnl_at_mark == Decimal("-1826.16")
    assert order.slippage == Decimal("-444.8004")
    assert order.fees == (
        ("fee_to_close", "base", Decimal("163.75757178"), Decimal("163.75757178"), "exchange"),
    )
    assert statement.remaining_margin == Decimal("22565.28202822")
    assert statement.reconciles


# -- BitMEX: the FillOrKill example in satoshis ---------------------------------------------------


def test_bitmex_fill_or_kill_statement_in_satoshis() -> None:
    """2,300,000 contracts long at 10,000, margin 3.4 XBT, mark 9,950, depth 995,000,000 USD
    (100,000 XBT at the mark; book depth is in the quote currency).
    Kept: ceil(200 × 9,950) − 1 = 1,989,999 contracts (< 200 XBT); closed 310,001.
    Face value 310,001 USD; slippage rate 310,001 / 995,000,000 / 2; fill 9,950 × (1 − rate)
    = 9,948.45… → floor to the 0.5 tick, 9,948. PnL in whole satoshis, rounded down:
    at the mark floor(310,001 × (1/10,000 − 1/9,950)), at the fill likewise with 9,948."""
    result = evaluate(
        "bitmex-xbtusd",
        {
            "wallet_balance": 0,
            "positions": [
                {
                    "symbol": "XBTUSD",
                    "side": "long",
                    "size": 2300000,
                    "entry_price": 10000,
                    "margin_mode": "isolated",
                    "isolated_margin": "3.4",
                    "leverage": 100,
                }
            ],
            "market": {"XBTUSD": {"mark_price": 9950, "book_depth": 995000000}},
        },
    )
    statement = result.liquidations[0].statement
    (order,) = statement.orders
    quantity = Decimal(310001)
    assert order.quantity == quantity
    rate = quantity / Decimal(995000000) / 2
    assert floor_to(Decimal(9950) * (1 - rate), Decimal("0.5")) == order.fill_price == 9948
    at_mark = floor_to(quantity * (Decimal(1) / 10000 - Decimal(1) / 9950), SATOSHI)
    at_fill = floor_to(quantity * (Decimal(1) / 10000 - Decimal(1) / 9948), SATOSHI)
    assert order.pnl_at_mark == at_mark
    assert order.slippage == at_fill - at_mark
    assert statement.remaining_margin == Decimal("3.4") + at_fill
    assert statement.reconciles


@settings(max_examples=20, deadline=None)
@given(
    st.sampled_from(["bitmex-xbtusd", "bybit-inverse-perpetual"]),
    st.sampled_from(["long", "short"]),
    st.integers(1_000, 5_000_000),
    st.integers(20_000, 120_000),
    st.integers(2, 100),
    st.integers(0, 300),
)
def test_inverse_statements_reconcile_exactly(
    policy_id: str, side: str, size: int, entry: int, leverage: int, move_bp: int
) -> None:
    """Inverse PnL is 1/price, rarely an exact decimal; both inverse policies keep money in
    whole satoshis, so every amount of a statement is a whole number of satoshis and the
    statement adds up to the last digit."""
    symbol = "XBTUSD" if policy_id == "bitmex-xbtusd" else "BTCUSD"
    # past the bankruptcy price: E·L/(L+1) for a long, E·L/(L−1) < E·(1 + 2/L) for a short
    move = Decimal(move_bp) / 10000
    if side == "long":
        mark = Decimal(entry) * (1 - move - Decimal(1) / leverage)
    else:
        mark = Decimal(entry) * (1 + move + Decimal(2) / leverage)
    result = evaluate(
        policy_id,
        {
            "wallet_balance": 0,
            "positions": [
                {
                    "symbol": symbol,
                    "side": side,
                    "size": size,
                    "entry_price": entry,
                    "margin_mode": "isolated",
                    "leverage": leverage,
                    "isolated_margin": str(floor_to(Decimal(size) / entry / leverage, SATOSHI)),
                }
            ],
            "market": {
                symbol: {
                    "mark_price": str(mark.quantize(Decimal(1))),
                    "book_depth": 50,
                }
            },
        },
    )
    assert result.liquidations
    for liquidation in result.liquidations:
        statement = liquidation.statement
        assert statement.reconciles, statement.reconciliation_error
        assert [item.amount for item in statement.items if item.amount % SATOSHI] == []


# -- dYdX: the protocol's own test vectors ---------------------------------------------------------

GO_TEST_POLICY = """\
id: dydx-go-tests
title: dYdX v4 with the perpetual and liquidations config of liquidations_test.go
extends: {parent}
markets:
  BTC-USD:
    parameters:
      initial_margin_rate: 0.2
      maintenance_fraction: 0.5
      max_liquidation_fee: {fee}
      spread_to_maintenance: 0.1
      max_position_portion: 1
      min_notional_liquidated: 0
      max_notional_per_block: 1_000_000_000_000
liquidation:
  fill:
    price: '{fill}'
    settlement_price: 'if direction * (order.fill_price - protocol_bankruptcy_price) >= 0 then order.fill_price else protocol_bankruptcy_price'
examples: null
"""


def go_test_policy(tmp_path: Path, *, fee: str = "0.005", fill: str = "book_price") -> Policy:
    """dYdX's Go tests use BtcUsd_20PercentInitial_10PercentMaintenance (IM 20 %, MMR 10 %),
    FillablePriceConfig_Default (BA 1, SMMR 0.1), a 0.5 % max fee and no block limits."""
    path = tmp_path / "dydx-go-tests.yaml"
    path.write_text(GO_TEST_POLICY.format(parent="dydx-v4", fee=fee, fill=fill), encoding="utf-8")
    return load_policy(path)


def btc_account(side: str, usdc: int) -> dict[str, Any]:
    """0.1 BTC at an oracle of 50,000 with `usdc` of quote balance: dYdX's TNC is usdc + 0.1 ×
    50,000 for a long, usdc − 5,000 for a short; an entry at the oracle gives the same TNC here."""
    wallet = usdc + (5000 if side == "long" else -5000)
    return {
        "id": "go",
        "wallet_balance": wallet,
        "positions": [
            {
                "symbol": "BTC-USD",
                "side": side,
                "size": "0.1",
                "entry_price": 50000,
                "margin_mode": "cross",
                "leverage": 5,
            }
        ],
        "market": {"BTC-USD": {"mark_price": 50000, "book_depth": 1000000000}},
    }


@pytest.mark.parametrize(
    ("side", "usdc", "bankruptcy", "fillable"),
    [
        # TestGetBankruptcyPriceInQuoteQuantums: 4,501,000,000 quote quantums for 0.1 BTC, and
        # TestGetFillablePrice: 49,999 (long), 50,001 (short, USDC 5,499, −5,499,000,000).
        ("long", -4501, Decimal(45010), Decimal(49999)),
        ("short", 5499, Decimal(54990), Decimal(50001)),
        # "at the bankruptcy price": USDC −5,000 → 5,000,000,000 quote quantums; ABR = 1.
        ("long", -5000, Decimal(50000), Decimal(49500)),
    ],
)
def test_dydx_go_vectors_bankruptcy_and_fillable_price(
    tmp_path: Path, side: str, usdc: int, bankruptcy: Decimal, fillable: Decimal
) -> None:
    """liquidations_test.go: bankruptcy quote −DNNV − TNC × |DMMR| / TMMR over 0.1 BTC; fillable
    price 50,000 × (1 ∓ ABR × 0.1 × 10 %), ABR = 1 − TNC/TMMR (499/500 → 49,999; at TNC 0,
    ABR 1 → 49,500)."""
    loaded = go_test_policy(tmp_path)
    result = evaluate_account(loaded, parse_account(btc_account(side, usdc), loaded))
    figures = result.positions[0].figures
    assert figures["protocol_bankruptcy_price"] == bankruptcy
    assert figures["fillable_price"] == fillable


@pytest.mark.parametrize(
    ("max_fee", "expected"),
    [
        ("0.005", Decimal("28.05")),  # 5,610 × 0.5 % < 5,610 − 5,100
        ("0.025", Decimal("140.25")),  # MaxLiquidationFeePpm 25,000
        ("1", Decimal(510)),  # MaxLiquidationFeePpm 1,000,000: all the leftover collateral
    ],
)
def test_dydx_go_vectors_insurance_fund_delta(
    tmp_path: Path, max_fee: str, expected: Decimal
) -> None:
    """TestGetLiquidationInsuranceFundDelta: 0.1 BTC long, USDC −5,100 (bankruptcy quote 5,100),
    filled at 56,100 (quote 5,610): the fund receives min(max fee × 5,610, 5,610 − 5,100)."""
    loaded = go_test_policy(tmp_path, fee=max_fee, fill="56100")
    result = evaluate_account(loaded, parse_account(btc_account("long", -5100), loaded))
    (order,) = result.liquidations[0].statement.orders
    assert order.fill_price == 56100
    ((name, _kind, charged, collected, to),) = order.fees
    assert (name, charged, collected, to) == (
        "liquidation_fee",
        expected,
        expected,
        "insurance_fund",
    )


# -- BitMEX DPE 2016: the 60 % example through the clawback waterfall -----------------------------


def dpe_run(policy_id: str) -> Any:
    """BitMEX's DPE example (§4.6) in XBT: A long 5,000 contracts at 100, B short 5,000 at 100
    with 4 XBT of margin; the price goes to 125, where A's profit is 5,000 × (1/100 − 1/125) = 10
    XBT and B's loss is 10, capped at its 4: a system loss of 6. B is liquidated at a mark of
    124.9 whose fill rounds up to the 125 tick (slippage on a deep book is a hair above 0), the
    insurance fund is empty, and settlement at 125 measures A's profit."""

    def point(t: int, mark: str) -> PricePoint:
        price = Decimal(mark)
        return PricePoint(t, price, price, price, Decimal(10**9), Decimal(10**9))

    path = InstrumentPath("BTC/USD", (point(0, "100"), point(60, "124.9"), point(120, "125")), ())
    scenario = Scenario(
        "dpe",
        "dpe",
        "test",
        60,
        {"BTC/USD": path},
        {"shared:XBT": Decimal(0)},
        settlement_seconds=120,
    )
    book = Book(
        (
            BookAccount(
                "a",
                Decimal(0),
                (
                    BookPosition(
                        "BTC/USD",
                        "long",
                        Decimal(5000),
                        Decimal(100),
                        "isolated",
                        Decimal(100),
                        Decimal(10),
                        kind="inverse",
                    ),
                ),
            ),
            BookAccount(
                "b",
                Decimal(0),
                (
                    BookPosition(
                        "BTC/USD",
                        "short",
                        Decimal(5000),
                        Decimal(100),
                        "isolated",
                        Decimal(100),
                        Decimal(4),
                        kind="inverse",
                    ),
                ),
            ),
        )
    )
    return simulate(policy(policy_id), book, scenario)


def test_dpe_socialises_sixty_percent_of_profit() -> None:
    """Profit Adjustment = Total System Loss / Total System Profit = 6 / 10 = 60 %: A gives up 6
    and realises 4 of its 10."""
    result = dpe_run("bitmex-xbtusd-dpe-2016")
    (clawback,) = result.clawbacks
    assert clawback.uncovered == 6
    assert clawback.total_profit == 10
    assert clawback.rate == Decimal("0.6")
    assert clawback.collected == 6
    assert result.conservation_error == 0


def test_todays_bitmex_deleverages_instead_of_clawing_back() -> None:
    """The same book under bitmex-xbtusd: no clawback, the loss goes to ADL."""
    result = dpe_run("bitmex-xbtusd")
    assert not result.clawbacks
    assert result.summary()["adl_count"] >= 1
    assert result.conservation_error == 0
