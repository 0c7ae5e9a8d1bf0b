"""The coin-margined (inverse) policies: huobi-coin-swap (historic clawback) and binance-coinm.

Section numbers (§x.y) refer to /work/shared/research/exchanges.md. Expected values are derived
by hand in each docstring (closed forms in exact decimals), never read back from the engine.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from itertools import pairwise
from typing import Any

import pytest

from engine.mechanics.accounts import parse_account
from engine.mechanics.evaluate import AccountResult, evaluate_account
from engine.mechanics.examples import run_examples
from engine.numbers import DECIMAL_CONTEXT
from engine.policy.load import check_policy, load_policy
from engine.policy.model import Policy
from engine.policy.packaged import shipped_policy_paths

TICK = Decimal("0.1")
FACE = Decimal(100)  # USD per contract, both venues


@pytest.fixture(scope="module")
def huobi() -> Policy:
    return load_policy("huobi-coin-swap")


@pytest.fixture(scope="module")
def binance() -> Policy:
    return load_policy("binance-coinm")


def evaluate(
    policy: Policy,
    symbol: str,
    positions: list[dict[str, Any]],
    *,
    mark: str,
    wallet: str = "0",
    depth: str = "1000",
) -> AccountResult:
    account = {
        "id": "t",
        "wallet_balance": wallet,
        "positions": [{"symbol": symbol, **p} for p in positions],
        "market": {symbol: {"mark_price": mark, "last_price": mark, "book_depth": depth}},
    }
    return evaluate_account(policy, parse_account(account, policy))


def to_tick(value: Decimal, rounding: str) -> Decimal:
    return (value / TICK).to_integral_value(rounding=rounding) * TICK


@pytest.mark.parametrize("policy_id", ["huobi-coin-swap", "binance-coinm"])
def test_policy_is_valid_cites_every_number_and_passes_its_examples(policy_id: str):
    path = next(p for p in shipped_policy_paths() if p.stem == policy_id)
    loaded, diagnostics = check_policy(path)
    assert loaded is not None
    assert [(d.code, d.message) for d in diagnostics] == []
    failed = [r.as_dict() for r in run_examples(loaded) if not r.passed]
    assert failed == []
    (market,) = loaded.markets.values()
    assert (market.kind, market.instrument, market.settlement_currency) == (
        "inverse",
        "BTC/USD",
        "BTC",
    )
    assert market.contract_size == FACE


# -- huobi-coin-swap ----------------------------------------------------------------------------


def test_huobi_coin_swap_is_the_historic_clawback_rulebook(huobi: Policy):
    """§2.9: coin-margined futures and swaps used clawback until 2023-05-29 02:00 UTC; the
    running rate was published per contract (`estimated_clawback`), one fund per contract."""
    assert (huobi.valid_from, huobi.valid_until) == ("2020-10-15", "2023-05-29")
    assert huobi.waterfall.order == ("insurance_fund", "clawback", "write_off")
    assert huobi.waterfall.pool == "per_symbol"
    assert huobi.waterfall.clawback_cap == 1
    assert huobi.waterfall.clawback_base == "equity"
    assert huobi.waterfall.clawback_step == Decimal("1e-18")


@pytest.mark.parametrize(
    ("side", "size", "leverage", "entry", "margin", "af"),
    [
        ("long", 100, 125, 50000, None, "0.65"),
        ("long", 5000, 125, 40000, "0.2", "0.80"),
        ("short", 100, 125, 50000, None, "0.65"),
        ("short", 12000, 125, 30000, "1", "0.85"),
        ("long", 1000, 10, 50000, None, "0.10"),
        ("short", 3000, 20, 60000, "0.3", "0.25"),
    ],
)
def test_huobi_isolated_inverse_prices_follow_the_closed_form(
    huobi: Policy,
    side: str,
    size: int,
    leverage: int,
    entry: int,
    margin: str | None,
    af: str,
):
    """§2.5 inverse (face F = 100 USD, N contracts, margin M in BTC, MMR = AF / L): equity(P) =
    M + s·N·F·(1/EP − 1/P); maintenance = AF·N·F / (P·L) (position margin at the price, §2.2).
    Long: P = N·F·(1 + AF/L) / (M + N·F/EP); short: P = N·F·(1 − AF/L) / (N·F/EP − M).
    Bankruptcy: AF = 0. Reported on the tick (long: down, short: up). AF from the official 125x
    ladder (0.65 / 0.80 / 0.85 at 2,000 / 10,000) or the assumed 1 / 1.25 / 1.5 % × leverage."""
    with localcontext(DECIMAL_CONTEXT):
        n_f = Decimal(size) * FACE
        m = Decimal(margin) if margin is not None else n_f / entry / leverage
        factor = Decimal(af)
        if side == "long":
            lp = n_f * (1 + factor / leverage) / (m + n_f / entry)
            bp = n_f / (m + n_f / entry)
            rounding = ROUND_FLOOR
        else:
            lp = n_f * (1 - factor / leverage) / (n_f / entry - m)
            bp = n_f / (n_f / entry - m)
            rounding = ROUND_CEILING
    extra = {"isolated_margin": margin} if margin is not None else {}
    result = evaluate(
        huobi,
        "BTC-USD",
        [
            {
                "side": side,
                "size": size,
                "entry_price": entry,
                "margin_mode": "isolated",
                "leverage": leverage,
                **extra,
            }
        ],
        mark=str(entry),
    )
    (found,) = result.positions
    assert found.figure("adjustment_factor") == factor
    assert found.liquidation_price == to_tick(lp, rounding)
    assert found.bankruptcy_price == to_tick(bp, rounding)


def test_huobi_amounts_are_rounded_to_its_18_decimals(huobi: Policy):
    """1 contract long at 30,000, mark 29,999.9: PnL = 100 × (1/30,000 − 1/29,999.9) =
    −1.11111481…e-8 BTC, rounded down (against the trader) to 1e-18: −0.000000011111148149 (the
    exact digits are 1.1111148148765...e-8, so the floor of the negative value ends in …149)."""
    result = evaluate(
        huobi,
        "BTC-USD",
        [
            {
                "side": "long",
                "size": 1,
                "entry_price": 30000,
                "margin_mode": "isolated",
                "isolated_margin": "0.01",
                "leverage": 125,
            }
        ],
        mark="29999.9",
    )
    (found,) = result.positions
    with localcontext(DECIMAL_CONTEXT):
        exact = FACE * (Decimal(1) / 30000 - Decimal(1) / Decimal("29999.9"))
    pnl = found.figure("unrealized_pnl")
    assert pnl == exact.quantize(Decimal("1e-18"), rounding=ROUND_FLOOR)
    assert pnl == Decimal("-0.000000011111148149")


# -- binance-coinm ------------------------------------------------------------------------------


def test_binance_coinm_brackets_follow_the_maintenance_amount_recursion(binance: Policy):
    """§1.1: amount(n) = floor(n) × (rate(n) − rate(n−1)) + amount(n−1), amount(1) = 0, which
    makes maintenance margin continuous in the position value; and the FAQ's published points:
    level 4 0.56 BTC, level 5 1.81 BTC, level 7 (300 BTC) 12.5 % and 11.81 BTC."""
    table = binance.tables["btcusd_brackets"]
    rows = [dict(row) for row in table.rows]
    assert rows[0]["maintenance_amount"] == 0
    for below, row in pairwise(rows):
        expected = (
            row["min_notional"]
            * (row["maintenance_margin_rate"] - below["maintenance_margin_rate"])
            + below["maintenance_amount"]
        )
        assert row["maintenance_amount"] == expected, row["bracket"]
    published = {
        r["bracket"]: (r["maintenance_margin_rate"], r["maintenance_amount"]) for r in rows
    }
    assert published[4] == (Decimal("0.025"), Decimal("0.56"))
    assert published[5] == (Decimal("0.05"), Decimal("1.81"))
    assert published[7] == (Decimal("0.125"), Decimal("11.81"))


@pytest.mark.parametrize(
    ("contracts", "mark", "value", "maintenance"),
    [
        (100, "25000", "0.4", "0.0016"),  # the FAQ's example: 0.4 × 0.4 % − 0
        (150000, "50000", "300", "25.69"),  # 300 BTC: 300 × 12.5 % − 11.81
        (30000, "50000", "60", "1.19"),  # level 5: 60 × 5 % − 1.81
        (25000, "50000", "50", "0.69"),  # the level-5 floor: 50 × 5 % − 1.81 = 50 × 2.5 % − 0.56
        (2000, "20000", "10", "0.04"),  # level 2 floor: 10 × 0.5 % − 0.01 = 10 × 0.4 %
    ],
)
def test_binance_coinm_maintenance_margin_in_btc(
    binance: Policy, contracts: int, mark: str, value: str, maintenance: str
):
    """§1.1 COIN-M: notional in BTC = contracts × 100 / mark; maintenance margin = notional ×
    rate − amount of its bracket (BTC)."""
    result = evaluate(
        binance,
        "BTCUSD_PERP",
        [
            {
                "side": "long",
                "size": contracts,
                "entry_price": mark,
                "margin_mode": "cross",
                "leverage": 2,
            }
        ],
        mark=mark,
        wallet="1000",
    )
    (found,) = result.positions
    assert found.figure("notional") == Decimal(value)
    assert found.figure("maintenance_margin") == Decimal(maintenance)


@pytest.mark.parametrize(
    ("side", "size", "entry", "margin"),
    [("long", 100, 25000, "0.04"), ("short", 100, 25000, "0.04"), ("long", 300, 40000, "0.03")],
)
def test_binance_coinm_isolated_price_matches_the_faq_formula(
    binance: Policy, side: str, size: int, entry: int, margin: str
):
    """§1.3 COIN-M, the FAQ's single-position formula (bracket 1, cum 0):
    LP = (Q·MMR + side·Q) / ((WB + cum)/CM + side·Q/EP), Q in contracts, WB and cum in BTC,
    CM = 100; bankruptcy with MMR = 0. The 1e-8 BTC rounding is far from every boundary here."""
    with localcontext(DECIMAL_CONTEXT):
        q, wb, s = Decimal(size), Decimal(margin), 1 if side == "long" else -1
        lp = (q * Decimal("0.004") + s * q) / (wb / FACE + s * q / entry)
        bp = (s * q) / (wb / FACE + s * q / entry)
    rounding = ROUND_FLOOR if side == "long" else ROUND_CEILING
    result = evaluate(
        binance,
        "BTCUSD_PERP",
        [
            {
                "side": side,
                "size": size,
                "entry_price": entry,
                "margin_mode": "isolated",
                "isolated_margin": margin,
                "leverage": 10,
            }
        ],
        mark=str(entry),
    )
    (found,) = result.positions
    assert found.liquidation_price == to_tick(lp, rounding)
    assert found.bankruptcy_price == to_tick(bp, rounding)


def test_binance_coinm_is_insurance_fund_then_adl_in_place_of_the_market_sale(binance: Policy):
    """§1.7: the fund takes bankrupt positions over; when it cannot, counterparties are
    deleveraged at "the bankruptcy price of the initial liquidated order"."""
    assert binance.waterfall.order == ("insurance_fund", "adl", "write_off")
    assert binance.waterfall.adl_mode == "replace_market_sale"
    assert binance.waterfall.adl_price is None
    assert binance.valid_until is None
