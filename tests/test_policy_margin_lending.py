"""Spot margin lending: declared account fields, charges that accrue into them, and the two
policies built on them (binance-cross-margin, and the margin-financing article's what-if).

Every expected number is derived by hand in the docstrings, never read back from the engine.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import InputError, PolicyError
from engine.mechanics.accounts import parse_account
from engine.mechanics.evaluate import evaluate_account
from engine.mechanics.examples import run_examples
from engine.policy.load import load_policy
from engine.simulation.book import load_book
from engine.simulation.model import (
    Book,
    BookAccount,
    BookPosition,
    InstrumentPath,
    PricePoint,
    Scenario,
)
from engine.simulation.simulate import simulate

DEPTH = Decimal(10_000_000)


def scenario(step: int, marks: list[str]) -> Scenario:
    points = tuple(
        PricePoint(index * step, Decimal(m), Decimal(m), Decimal(m), DEPTH, DEPTH)
        for index, m in enumerate(marks)
    )
    return Scenario(
        "margin-test",
        "margin test",
        "stylised",
        step,
        {"BTC/USDT": InstrumentPath("BTC/USDT", points)},
        {"shared": Decimal(0)},
    )


def margin_book(wallet: str, borrowed: str, interest: str) -> Book:
    position = BookPosition("BTC/USDT", "long", Decimal("0.1"), Decimal(60000), "cross", Decimal(3))
    account = BookAccount(
        "m1",
        Decimal(wallet),
        (position,),
        {"borrowed": Decimal(borrowed), "interest": Decimal(interest)},
    )
    return Book((account,))


@pytest.mark.parametrize("policy_id", ["binance-cross-margin", "seed-margin-financing"])
def test_policy_examples_pass(policy_id: str):
    failed = [r.as_dict() for r in run_examples(load_policy(policy_id)) if not r.passed]
    assert failed == []


def test_account_fields_are_read_from_the_account_and_default_to_zero():
    """binance-cross-margin declares `borrowed` and `interest`; an account that gives neither
    has no liabilities from a loan: a 0.1 BTC short at 60,000 owes 0.1 × 60,000 = 6,000 and holds
    3,000 + 6,000 = 9,000, level 1.5."""
    policy = load_policy("binance-cross-margin")
    account = parse_account(
        {
            "wallet_balance": "3000",
            "positions": [
                {
                    "symbol": "BTCUSDT",
                    "side": "short",
                    "size": "0.1",
                    "entry_price": "60000",
                    "margin_mode": "cross",
                    "leverage": 3,
                }
            ],
            "market": {"BTCUSDT": {"mark_price": "60000"}},
        },
        policy,
    )
    assert dict(account.fields) == {"borrowed": 0, "interest": 0}
    (position,) = evaluate_account(policy, account).positions
    assert position.figure("liabilities") == 6000
    assert position.figure("margin_level") == Decimal("1.5")


def test_an_unknown_account_field_is_refused_with_a_suggestion():
    policy = load_policy("binance-cross-margin")
    with pytest.raises(InputError) as caught:
        parse_account({"wallet_balance": 1, "positions": [], "fields": {"borowed": 5}}, policy)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "E607"
    assert "borowed" in diagnostic.message and "borrowed" in (diagnostic.hint or "")


@pytest.mark.parametrize(
    ("snippet", "code"),
    [
        ("account_fields:\n  debt: {description: clash}\n", "E419"),
        (
            "account_fields:\n  loan: {description: a loan}\n"
            "charges:\n  - {name: x, at: interval, every_seconds: 60, scope: account,"
            " amount: '1', accrue_to: lone}\n",
            "E420",
        ),
    ],
)
def test_bad_account_field_declarations_are_located_errors(tmp_path: Path, snippet: str, code: str):
    path = tmp_path / "p.yaml"
    path.write_text("id: p\ntitle: p\n" + snippet, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert [d.code for d in caught.value.diagnostics] == [code]


def test_a_book_carries_account_fields_and_a_policy_without_them_refuses_it(tmp_path: Path):
    line = (
        '{"id": "m1", "wallet_balance": 1998.8, "positions": [{"instrument": "BTC/USDT", '
        '"side": "long", "quantity": 0.1, "entry_price": 60000, "margin_mode": "cross", '
        '"leverage": 3}], "fields": {"borrowed": 4000, "interest": "1.2"}}\n'
    )
    path = tmp_path / "margin.jsonl"
    path.write_text(line, encoding="utf-8")
    book = load_book(path)
    assert dict(book.accounts[0].fields) == {"borrowed": 4000, "interest": Decimal("1.2")}
    with pytest.raises(InputError) as caught:
        simulate(load_policy("binance-usdm"), book, scenario(60, ["60000", "60000"]))
    found = caught.value.diagnostics
    assert [d.code for d in found] == ["E625", "E625"]  # one per field the policy lacks
    assert "'borrowed'" in found[0].message and "'interest'" in found[1].message


def test_hourly_interest_accrues_until_the_forced_sale_repays_it():
    """binance-cross-margin, 0.1 BTC bought at 60,000 with 2,000 of own funds and 4,000
    borrowed, 1.2 of interest already accrued (wallet 1,998.8). Hourly steps at 60,000, then
    44,014.9 from t = 4 h. Interest every full hour: 4,000 × 0.001 % = 0.04 at 1 h, 2 h, 3 h and
    4 h (charges run before liquidations): 0.16 to the exchange, wallet 1,998.64, `interest`
    1.36. At 44,014.9 the equity is 1,998.64 − 1,598.51 = 400.13, the liabilities 4,001.36, the
    assets 4,401.49: level 1.0999985… ≤ 1.1. Had the interest not been added to the liabilities
    (4,001.2 and assets 4,401.33) the level would be 1.1000025…: no liquidation. The forced sale
    fills at 44,014.9 × (1 − 4,401.49 / 10,000,000 / 2) = 44,005.213…, 44,005.21 on the tick,
    realising 0.1 × (44,005.21 − 60,000) = −1,599.479, and pays the 2 % fee, 88.0298, to the
    insurance fund: the trader keeps 1,998.64 − 1,599.479 − 88.0298 = 311.1312. No interest
    runs once nothing is held."""
    result = simulate(
        load_policy("binance-cross-margin"),
        margin_book("1998.8", "4000", "1.2"),
        scenario(3600, ["60000", "60000", "60000", "60000", "44014.9", "44014.9"]),
    )
    assert result.charges == {"margin_interest": Decimal("0.16")}
    assert result.fee_revenue == Decimal("0.16")
    (event,) = result.events
    statement = event.liquidation.statement
    assert event.time == 4 * 3600
    assert statement.fees_collected == Decimal("88.0298")
    assert statement.final_balance == Decimal("311.1312")
    assert result.conservation_error == 0
    assert result.fates["m1"].end_equity == Decimal("311.1312")


def test_the_article_debt_grows_by_penalty_interest_and_late_fees():
    """seed-margin-financing: the same account with 20 of interest since the loan's start
    (wallet 1,980). Daily steps: 60,000, then 38,000 from day 1 on. Day 1: interest 4,000 ×
    0.05 % = 2 (wallet 1,978), then the forced sale at 37,992.78 (38,000 less 0.019 %) realises
    −2,200.722: 222.722 is the trader's debt (no insurance fund); the fee is waived. Day 2:
    penalty 222.722 × 0.075 % = 0.1670415 → 222.8890415; the debt is one day old, not older than
    the one-day grace: no late fee. Day 3: penalty 222.8890415 × 0.075 % = 0.167166781125 →
    223.056208281125; late fee 0.05 % of that = 0.1115281041405625 → 223.1677363852655625. Day
    4: penalty 0.167375802288949171875 → 223.335112187554511671875; late fee
    0.1116675560937772558359375 → 223.4467797436482889277109375, all owed, nothing written off."""
    result = simulate(
        load_policy("seed-margin-financing"),
        margin_book("1980", "4000", "20"),
        scenario(86400, ["60000", "38000", "38000", "38000", "38000"]),
    )
    (event,) = result.events
    assert event.time == 86400
    assert event.liquidation.statement.shortfall == Decimal("222.722")
    assert result.debt_outstanding == Decimal("223.4467797436482889277109375")
    assert result.charges == {
        "daily_interest": Decimal(2),
        "penalty_interest": Decimal("0.1670415")
        + Decimal("0.167166781125")
        + Decimal("0.167375802288949171875"),
        "late_fee": Decimal("0.1115281041405625") + Decimal("0.1116675560937772558359375"),
    }
    assert result.write_offs == 0
    assert result.conservation_error == 0
