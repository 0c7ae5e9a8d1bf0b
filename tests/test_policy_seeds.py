"""The seed articles' models as what-if policies: seed-clearing-fee and seed-huobi-formula.

The articles are /work/shared/seeds/001 (liquidation clearing fee) and 004 (Huobi formulas).
Expected values are the articles' own numbers or hand derivations in the docstrings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from engine.mechanics.accounts import parse_account
from engine.mechanics.evaluate import AccountResult, evaluate_account
from engine.mechanics.examples import run_examples
from engine.policy.load import load_policy
from engine.policy.model import Policy


@pytest.fixture(scope="module")
def clearing() -> Policy:
    return load_policy("seed-clearing-fee")


@pytest.fixture(scope="module")
def formula() -> Policy:
    return load_policy("seed-huobi-formula")


def evaluate(policy: Policy, symbol: str, position: dict[str, Any], market: dict[str, Any]):
    account = {
        "wallet_balance": 0,
        "positions": [{"symbol": symbol, "margin_mode": "isolated", **position}],
        "market": {symbol: market},
    }
    return evaluate_account(policy, parse_account(account, policy))


@pytest.mark.parametrize("policy_id", ["seed-clearing-fee", "seed-huobi-formula"])
def test_examples_pass_and_the_policy_says_it_is_not_an_exchange(policy_id: str):
    policy = load_policy(policy_id)
    assert [r.as_dict() for r in run_examples(policy) if not r.passed] == []
    assert "what-if" in policy.title and "not an exchange" in policy.title
    assert policy.extends is not None


def consumed(result: AccountResult) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for order in result.liquidations[0].statement.orders:
        for category, amount in order.consumed:
            totals[category] = totals.get(category, Decimal(0)) + amount
    return totals


@pytest.mark.parametrize(
    ("mark", "previous", "depth", "fees"),
    [
        # gap 400 / 57,600 > 0.5 %: base 28.6 + surcharge 28.6
        ("57200", "57600", "2000000", "57.2"),
        # depth 1,400,000 < 30 % of 5,000,000, no gap: base + surcharge on 57,200
        ("57200", "57200", "1400000", "57.2"),
        # gap 0.25 %, depth 40 % of average: base fee only
        ("57200", "57343.36", "2000000", "28.6"),
    ],
)
def test_clearing_fee_statement_adds_up_to_the_initial_margin(
    clearing: Policy, mark: str, previous: str, depth: str, fees: str
):
    """Article 001: base fee 0.05 % of the notional (57,200 → 28.6), a surcharge as large again
    when the mark gaps more than 0.5 % or depth is below 30 % of its average; the margin pays the
    fee first, then the loss (2,800 at 57,200 for a 1 BTC long from 60,000), then slippage; with
    the margin exhausted the three parts add up to the initial 3,000 and the final balance is 0.
    (57,343.36 → 57,200 is a gap of 143.36 / 57,343.36 = 0.25 %.)"""
    result = evaluate(
        clearing,
        "BTCUSDT",
        {"side": "long", "size": 1, "entry_price": 60000, "isolated_margin": 3000, "leverage": 20},
        {
            "mark_price": mark,
            "previous_mark_price": previous,
            "book_depth": depth,
            "average_book_depth": "5000000",
        },
    )
    statement = result.liquidations[0].statement
    parts = consumed(result)
    assert parts["fees"] == Decimal(fees)
    assert parts["loss"] == 2800
    assert parts["fees"] + parts["loss"] + parts["slippage"] == statement.starting_margin == 3000
    assert statement.final_balance == 0
    assert [name for name, _ in parts.items()] == ["fees", "loss", "slippage"]  # the order


@pytest.mark.parametrize(
    ("side", "leverage", "article_price"),
    [
        ("long", 10, 90000),  # 10万×(1-1/10)=9万
        ("short", 10, 110000),  # 10万×(1+1/10)=11万
        ("long", 5, 80000),  # "5倍杠杆做多时,强平价格为开仓价的80%"
        ("long", 20, 95000),  # 20x: 95 %
        ("long", 125, 99200),  # 125x: "0.8%的价格反向波动"
    ],
)
def test_the_articles_liquidation_price_is_the_bankruptcy_price(
    formula: Policy, side: str, leverage: int, article_price: int
):
    """Article 004: liquidation price = entry × (1 ∓ 1/leverage). With the initial margin
    entry / leverage per BTC, equity reaches 0 exactly there: it is the bankruptcy price. The
    article's own 50 % threshold fires half-way: entry × (1 ∓ 0.5/leverage), reported on the
    0.1 tick past the boundary because the ratio must fall *below* 50 %."""
    result = evaluate(
        formula,
        "BTC-USDT",
        {"side": side, "size": 1000, "entry_price": 100000, "leverage": leverage},
        {"mark_price": "100000", "last_price": "100000"},
    )
    (found,) = result.positions
    direction = 1 if side == "long" else -1
    half_way = Decimal(100000) * (1 - Decimal(direction) / 2 / leverage)
    assert found.figure("article_liquidation_price") == article_price
    assert found.bankruptcy_price == article_price
    assert found.liquidation_price == half_way - direction * Decimal("0.1")


def test_the_articles_ten_x_example_liquidates_at_a_twenty_percent_ratio(formula: Policy):
    """Article 004: 10x, 1 BTC at 100,000, margin 10,000, price −8 %: ratio (10,000 − 8,000) /
    10,000 = 20 %, below the 50–80 % threshold → liquidated."""
    result = evaluate(
        formula,
        "BTC-USDT",
        {"side": "long", "size": 1000, "entry_price": 100000, "leverage": 10},
        {"mark_price": "92000", "last_price": "92000", "book_depth": "100000000"},
    )
    assert result.positions[0].figure("maintenance_ratio") == Decimal("0.2")
    assert result.triggered


def test_the_huobi_formula_article_socialises_by_clawback(formula: Policy):
    """Article 004: "火币特有的全账户分摊制度在穿仓时要求盈利用户分担损失"."""
    assert formula.waterfall.order == ("insurance_fund", "clawback", "write_off")
