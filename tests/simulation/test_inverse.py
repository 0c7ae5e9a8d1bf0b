"""Inverse (coin-margined) contracts end to end: books, simulation, waterfall, reports.

The toy policy (tests/simulation/policies/toy-inverse.yaml): a contract is 100 USD of face value;
PnL = direction × contracts × 100 × (1 / entry − 1 / price) BTC, rounded down to 0.00000001;
maintenance 0.5 % of the BTC notional; a triggered position is closed at its bankruptcy price
(tick 0.5) and the fund sells q contracts at mark × (1 − s), s = notional × mark / depth / 2
(floored to the tick); fee 0.05 % of the BTC notional (collected only if margin is left).

Every case: B is long 10,000 USD (100 contracts) at 50,000 with 0.05 BTC of isolated margin
(4x: 10,000 / 50,000 / 4); the mark gaps from 50,000 to 32,000 with a book depth of 200,000
USD, so a sale of q contracts slips q × 100 / 200,000 / 2 = q / 4,000 and fills at
32,000 − 8 q. B's bankruptcy price is 40,000: 0.05 + 10,000 × (1/50,000 − 1/40,000) = 0, while
at 40,000.5 the margin balance is 0.00000312 > 0. Settled at 40,000 B loses exactly its 0.05.
"""

from __future__ import annotations

import functools
import io
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import pytest

from engine.cli import main
from engine.errors import InputError
from engine.policy.load import load_policy
from engine.policy.model import Policy
from engine.report.compare_text import render_result
from engine.simulation.book import read_book, write_book_csv, write_book_jsonl
from engine.simulation.book_accounts import book_accounts, symbols_by_instrument
from engine.simulation.generate import generate_book
from engine.simulation.model import (
    Book,
    BookAccount,
    BookPosition,
    InstrumentPath,
    PricePoint,
    Scenario,
)
from engine.simulation.simulate import simulate

D = Decimal
HERE = Path(__file__).parent
TOY = HERE / "policies" / "toy-inverse.yaml"


def beside(parent: Path, folder: Path) -> str:
    """Copy `parent` into `folder` and return its file name, for a child written there to
    extend: policies may only extend parents in their own folder (E431)."""
    (folder / parent.name).write_text(parent.read_text(encoding="utf-8"), encoding="utf-8")
    return parent.name


ROOT = HERE.parents[1]


@functools.cache
def toy() -> Policy:
    return load_policy(TOY)


def floor8(value: Decimal) -> Decimal:
    return value.quantize(D("0.00000001"), rounding=ROUND_FLOOR)


def pnl(contracts: int, entry: int, price: Decimal, side: int = 1) -> Decimal:
    """The toy's inverse PnL, computed here from its formula."""
    return floor8(side * contracts * 100 * (1 / D(entry) - 1 / price))


def gap(fund: str) -> Scenario:
    points = tuple(
        PricePoint(60 * t, D(m), D(m), D(m), D(200_000), D(200_000))
        for t, m in enumerate(("50000", "32000"))
    )
    path = InstrumentPath("BTC/USD", points)
    return Scenario("gap", "gap", "two steps", 60, {"BTC/USD": path}, {"BTC/USD": D(fund)})


def inverse(side: str, face: str, entry: str, mode: str, margin: str | None = None):
    return BookPosition(
        "BTC/USD", side, D(face), D(entry), mode, D(4), D(margin) if margin else None, "inverse"
    )


def bankrupt() -> BookAccount:
    return BookAccount("b", D(0), (inverse("long", "10000", "50000", "isolated"),))


def counterparty() -> BookAccount:
    return BookAccount("c", D(1), (inverse("short", "20000", "50000", "cross"),))


def test_a_book_position_becomes_face_over_contract_size_with_a_coin_margin():
    """10,000 USD of face / 100 USD contracts = 100 contracts; no margin given: the policy's
    notional at entry (10,000 / 50,000 = 0.2 BTC) over the leverage 4 = 0.05 BTC."""
    [account] = book_accounts(toy(), Book((bankrupt(),)), symbols_by_instrument(toy()))
    [position] = account.positions
    assert (position["symbol"], position["size"], position["isolated_margin"]) == (
        "BTCUSD",
        100,
        D("0.05"),
    )


def test_a_fund_that_affords_the_sale_takes_it_over_in_the_coin():
    """Fund 1 BTC. The fund sells all 100 at 32,000 − 800 = 31,200: B's PnL there is
    floor(10,000 × (1/50,000 − 1/31,200)) = −0.12051283 against −0.05 at the settlement price,
    so the fund loses 0.07051283 BTC and ends with 0.92948717 BTC. The clearance fee
    (0.05 % × 0.3125 BTC) finds no margin left and is waived."""
    result = simulate(toy(), Book((bankrupt(), counterparty())), gap("1"))
    [event] = result.events
    [order] = event.liquidation.statement.orders
    assert (order.quantity, order.settlement_price, order.fill_price) == (100, 40000, 31200)
    assert order.notional == D("0.3125")  # the policy's notional: 10,000 / 32,000 BTC
    assert event.liquidation.statement.shortfall == 0
    [takeover] = event.takeovers
    assert takeover.fund_result == pnl(100, 50000, D(31200)) - pnl(100, 50000, D(40000))
    assert takeover.fund_result == D("-0.07051283")
    assert result.pools["BTCUSD"] == {"start": 1, "min": D("0.92948717"), "end": D("0.92948717")}
    assert result.currency == result.notional_unit == "BTC"
    assert result.pool_currencies == {"BTCUSD": "BTC"}
    assert result.liquidated_notional == D("0.3125")
    assert result.conservation_error == 0


def test_takeover_split_between_the_fund_and_adl_in_the_coin():
    """Fund 0.05 BTC. A sale of q loses pnl(q, 40,000) − pnl(q, 32,000 − 8 q):
    q = 73 → −0.0365 + 0.08636568 = 0.04986568 ≤ 0.05; q = 74 → −0.037 + 0.08760877 =
    0.05060877 > 0.05. The fund takes 73 (ends at 0.00013432 BTC); ADL closes the other 27
    against C (200 contracts short at 50,000) at 40,000: C realises 27 × 100 × (1/40,000 −
    1/50,000) = 0.0135 BTC where the mark (32,000) would have given 0.030375, a haircut of
    0.016875 BTC."""
    result = simulate(toy(), Book((bankrupt(), counterparty())), gap("0.05"))
    [takeover] = result.events[0].takeovers
    assert (takeover.fund_quantity, takeover.fund_price) == (73, 31416)
    assert takeover.fund_result == pnl(73, 50000, D(31416)) - pnl(73, 50000, D(40000))
    assert takeover.fund_result == D("-0.04986568")
    assert (takeover.adl_quantity, takeover.adl_price, takeover.market_quantity) == (27, 40000, 0)
    [fill] = result.deleverages
    assert (fill.account_id, fill.quantity, fill.price) == ("c", 27, 40000)
    assert fill.haircut == pnl(27, 50000, D(32000), -1) - pnl(27, 50000, D(40000), -1)
    assert fill.haircut == D("0.016875")
    assert result.pools["BTCUSD"]["end"] == D("0.00013432")
    assert result.write_offs == 0 and result.conservation_error == 0
    summary = result.summary()
    assert summary["currency"] == "BTC"
    assert summary["insurance_funds"]["BTCUSD"]["currency"] == "BTC"
    assert summary["adl_contracts"] == {
        "BTCUSD": {
            "contracts": "27",
            "instrument": "BTC/USD",
            "contract": "100 USD",
            "quantity": "2700",
            "unit": "USD",
        }
    }
    text = render_result(result)
    assert "money in BTC" in text and "volume BTC/USD (USD)" in text


def test_a_linear_book_position_under_an_inverse_market_is_refused():
    """The book's quantity would be read as face value: refused, never simulated."""
    linear = BookPosition("BTC/USD", "long", D(1), D(50000), "cross", D(4))
    book = Book((BookAccount("x", D(1), (linear,)),), path="coin.jsonl")
    with pytest.raises(InputError) as caught:
        book_accounts(toy(), book, symbols_by_instrument(toy()))
    [problem] = caught.value.diagnostics
    assert problem.code == "E623"
    assert (
        "BTC/USD position is linear" in problem.message and "BTCUSD is inverse" in problem.message
    )


@pytest.fixture(scope="module")
def two_currencies(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    """The toy with a linear USDT market beside the inverse one."""
    folder = tmp_path_factory.mktemp("mixed")
    path = folder / "mixed.yaml"
    path.write_text(
        f"id: toy-mixed\ntitle: toy mixed\nextends: {beside(TOY, folder)}\n"
        "markets:\n  BTCUSDT: {kind: linear, instrument: BTC/USDT, contract_size: 1, "
        "tick_size: 0.1, assumption: made up}\n",
        encoding="utf-8",
    )
    return load_policy(path)


def test_an_account_settling_in_two_currencies_is_refused(two_currencies):
    linear = BookPosition("BTC/USDT", "long", D(1), D(50000), "cross", D(4))
    coin = inverse("short", "100", "50000", "cross")
    book = Book((BookAccount("both", D(1), (linear, coin)),), path="mixed.jsonl")
    with pytest.raises(InputError) as caught:
        book_accounts(two_currencies, book, symbols_by_instrument(two_currencies))
    [problem] = caught.value.diagnostics
    assert problem.code == "E622"
    assert "account both" in problem.message and "USDT" in problem.message
    assert problem.path == "mixed.jsonl"


def test_a_book_whose_accounts_settle_in_two_currencies_is_refused(two_currencies):
    linear = BookPosition("BTC/USDT", "long", D(1), D(50000), "cross", D(4))
    book = Book(
        (
            BookAccount("usdt", D(1000), (linear,)),
            BookAccount("btc", D(1), (inverse("short", "100", "50000", "cross"),)),
        )
    )
    with pytest.raises(InputError) as caught:
        book_accounts(two_currencies, book, symbols_by_instrument(two_currencies))
    [problem] = caught.value.diagnostics
    assert problem.code == "E622" and "separate books" in (problem.hint or "")


def test_generated_inverse_books_round_trip_with_their_kind():
    """Face values on the 100 USD grid, margins and wallets in satoshis, `kind: inverse`."""
    book = generate_book(
        60,
        3,
        instruments={"BTC/USD": D(43000), "BTC/USDT": D(43000)},
        inverse=frozenset({"BTC/USD"}),
    )
    coins = [p for a in book.accounts for p in a.positions if p.instrument == "BTC/USD"]
    assert coins and all(p.kind == "inverse" and p.quantity % 100 == 0 for p in coins)
    for account in book.accounts:
        assert len({p.settlement_currency for p in account.positions}) == 1
        if account.positions[0].kind == "inverse":
            assert account.wallet_balance == account.wallet_balance.quantize(D("0.00000001"))
    for write in (write_book_jsonl, write_book_csv):
        stream = io.StringIO()
        write(book, stream)
        again = read_book(stream.getvalue(), csv=write is write_book_csv)
        assert again.accounts == book.accounts


def test_the_coin_margined_demo_book_is_the_documented_generator_output():
    """books/demo-coinm.jsonl is `book generate --accounts 2000 --seed 7 --scenario
    crash-2021-05-19 --instrument BTC/USD --inverse BTC/USD`."""
    book = generate_book(2000, 7, instruments={"BTC/USD": D(43000)}, inverse=frozenset({"BTC/USD"}))
    stream = io.StringIO()
    write_book_jsonl(book, stream)
    assert stream.getvalue() == (ROOT / "books" / "demo-coinm.jsonl").read_text(encoding="utf-8")


def test_coin_margined_demo_through_compare_reports_in_the_coin(capsys, tmp_path):
    """The done-when run: the coin-margined demo book through the 2021 crash, two policies."""
    after = tmp_path / "toy-inverse-after.yaml"
    after.write_text(
        f"id: toy-inverse-after\ntitle: toy inverse, ADL after the sale\nextends: {beside(TOY, tmp_path)}\n"
        "waterfall:\n  adl: {ranking: unrealized_pnl, mode: after_market_sale}\n",
        encoding="utf-8",
    )
    code = main(
        [
            "compare",
            str(TOY),
            str(after),
            "--book",
            "demo-coinm",
            "--scenario",
            "crash-2021-05-19",
            "--format",
            "json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    import json

    data = json.loads(out)
    for summary in data["policies"]:
        assert summary["currency"] == "BTC"
        assert summary["conservation_error"] == "0"
        assert summary["accounts_liquidated"]["total"] > 0
        assert {p["currency"] for p in summary["insurance_funds"].values()} == {"BTC"}
    replace, after_sale = data["policies"]
    assert replace["bad_debt"] == "0" and replace["adl_exhausted"]["count"] == 0
    assert Decimal(after_sale["bad_debt"]) > 0  # the contrast the fill mode makes


def test_a_shared_coin_pool_never_takes_a_quote_sized_shared_balance(tmp_path):
    """`shared: 150,000` is a USDT-sized amount: a shared pool of coin-margined markets starts
    with `shared:BTC` when the scenario gives it, else with nothing (not 150,000 BTC)."""
    from engine.simulation.pools import pool_start

    shared = tmp_path / "toy-inverse-shared.yaml"
    shared.write_text(
        f"id: toy-inverse-shared\ntitle: toy inverse, shared fund\nextends: {beside(TOY, tmp_path)}\n"
        "waterfall:\n  insurance_fund: {pool: shared}\n",
        encoding="utf-8",
    )
    policy = load_policy(shared)
    scenario = gap("0")
    quote_sized = Scenario("s", "s", "s", 60, scenario.paths, {"shared": D(150_000)})
    in_coin = Scenario(
        "s", "s", "s", 60, scenario.paths, {"shared": D(150_000), "shared:BTC": D(2)}
    )
    assert pool_start(policy, quote_sized, "shared", "BTC") == 0
    assert pool_start(policy, in_coin, "shared", "BTC") == 2
    linear = load_policy(HERE / "policies" / "toy-linear.yaml")  # shared, linear: takes `shared`
    assert pool_start(linear, quote_sized, "shared", "USD") == 150_000
