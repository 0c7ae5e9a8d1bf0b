"""ADL as a fill mode: hand-derived splits of a takeover, and properties on random books.

The toy policy (tests/simulation/policies/toy-linear.yaml): 1 unit per contract, tick 1, quantity
step 1, maintenance 5 % of the notional, a bankrupt position closed in full at its bankruptcy
price, the insurance fund selling q contracts at mark − 10 q (a long), waterfall
insurance fund → ADL (ranked by unrealised PnL, `replace_market_sale`) → write-off.

Every toy case: the bankrupt trader B is long 10 at 1,000 with 1,000 isolated margin (10x), its
bankruptcy price is 900 (1,000 + 10 (P − 1,000) ≤ 0), and the mark gaps from 1,000 to 880 in
one step. Counterparties are cross shorts with 10,000 wallets (never liquidated here).
"""

from __future__ import annotations

import decimal
import functools
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.numbers import DECIMAL_CONTEXT
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
from engine.simulation.results import SimulationResult
from engine.simulation.simulate import simulate

D = Decimal
TOY = Path(__file__).parent / "policies" / "toy-linear.yaml"


def beside(parent: Path, folder: Path) -> str:
    """Copy `parent` into `folder` and return its file name, for a child written there to
    extend: policies may only extend parents in their own folder (E431)."""
    (folder / parent.name).write_text(parent.read_text(encoding="utf-8"), encoding="utf-8")
    return parent.name


@functools.cache
def toy() -> Policy:
    return load_policy(TOY)


@functools.cache
def shipped(policy_id: str) -> Policy:
    return load_policy(policy_id)


def gap(fund: str, marks: tuple[str, ...] = ("1000", "880"), instrument: str = "TOY/USD"):
    points = tuple(PricePoint(60 * t, D(m), D(m), D(m)) for t, m in enumerate(marks))
    return Scenario(
        "gap", "gap", "two steps", 60, {instrument: InstrumentPath(instrument, points)},
        {"shared": D(fund)},
    )  # fmt: skip


def short(account_id: str, quantity: str, entry: str) -> BookAccount:
    position = BookPosition("TOY/USD", "short", D(quantity), D(entry), "cross", D(10))
    return BookAccount(account_id, D(10_000), (position,))


def bankrupt_long(margin: str = "1000") -> BookAccount:
    position = BookPosition("TOY/USD", "long", D(10), D(1000), "isolated", D(10), D(margin))
    return BookAccount("b", D(0), (position,))


def run(fund: str, *counterparties: BookAccount, margin: str = "1000") -> SimulationResult:
    book = Book((bankrupt_long(margin), *counterparties))
    return simulate(toy(), book, gap(fund))


def test_takeover_split_between_the_fund_and_adl_at_the_bankruptcy_price():
    """Fund 250. Selling q of B's 10 contracts fetches 880 − 10 q each against the 900 B was
    settled at: the fund's result is q (880 − 10 q − 900) = −(20 q + 10 q²). It can afford
    q = 4 (−240 ≥ −250) but not q = 5 (−350), so it takes over 4 and sells them at 840.

    The other 6 are closed against counterparties at 900, best unrealised PnL first:
    C1 (3 short at 1,000: 3 × 120 = 360 at the mark) closes all 3, realising 3 × 100 = 300,
    a haircut of 360 − 300 = 60; C2 (4 short at 950: 280) closes 3, realising 3 × 50 = 150
    against 3 × 70 = 210 at the mark, a haircut of 60. C3 (short at 890) is losing at 880 and not
    eligible. Nothing is written off; the fund ends at 250 − 240 = 10.
    """
    result = run("250", short("c1", "3", "1000"), short("c2", "4", "950"), short("c3", "5", "890"))
    [event] = result.events
    [takeover] = event.takeovers
    assert (takeover.quantity, takeover.settlement_price) == (10, 900)
    assert (takeover.fund_quantity, takeover.fund_price, takeover.fund_result) == (4, 840, -240)
    assert (takeover.adl_quantity, takeover.adl_price, takeover.adl_result) == (6, 900, 0)
    assert (takeover.market_quantity, takeover.passed_on) == (0, 0)
    fills = [(d.account_id, d.quantity, d.price, d.haircut, d.kind) for d in result.deleverages]
    assert fills == [("c1", 3, 900, 60, "fill"), ("c2", 3, 900, 60, "fill")]
    assert result.write_offs == 0 and result.adl_exhausted["count"] == 0
    assert result.pools["shared"]["end"] == 10
    assert event.liquidation.statement.orders[0].takeover_result == -240  # what the fund bore
    assert result.conservation_error == 0
    # C1 closed out, C2 keeps 1 contract: wallets grew by the realised PnL
    fates = result.fates
    assert fates["c1"].end_equity == 10_300 and fates["c1"].adl_haircut == 60
    assert fates["c2"].end_equity == 10_000 + 150 + 70  # realised 150, 1 left at +70
    went = result.where_the_money_went()
    assert went["insurance_fund_takeover_losses"] == 240 and went["adl"] == 0
    assert result.losses_past_bankruptcy == 240


def test_a_sub_tick_shortfall_is_paid_by_the_fund_then_by_counterparties_profit():
    """B's margin 1,005: bankruptcy at P ≤ 899.5, the highest tick 899; settled there B loses
    1,010, 5 more than its margin: a money claim, not contracts.

    The takeover first: the fund (240) affords q (880 − 10 q − 899) = −(19 q + 10 q²) for q = 4
    (−236), not q = 5 (−345); it keeps 4. ADL closes 6 at 899: C1 3, C2 3 (C2 keeps 1 short at
    950, 70 of profit at 880). Then the claim of 5: the fund pays its last 4, and the ranked
    counterparties pay the residual 1 from profit, nothing closed (C1 is gone; C2 pays).
    """
    result = run("240", short("c1", "3", "1000"), short("c2", "4", "950"), margin="1005")
    [event] = result.events
    assert event.liquidation.statement.shortfall == 5
    [takeover] = event.takeovers
    assert (takeover.fund_quantity, takeover.fund_result, takeover.adl_quantity) == (4, -236, 6)
    assert [(a.stage, a.amount) for a in event.allocations] == [("insurance_fund", 4), ("adl", 1)]
    residual = [d for d in result.deleverages if d.kind == "residual"]
    assert [(d.account_id, d.quantity, d.price, d.haircut) for d in residual] == [
        ("c2", 0, None, 1)
    ]
    assert result.write_offs == 0 and result.pools["shared"]["end"] == 0
    assert result.losses_past_bankruptcy == 5 + 236
    assert result.conservation_error == 0


def test_when_no_counterparty_is_left_the_fund_sells_the_rest_and_the_loss_is_written_off():
    """Fund 250 takes 4 (as above); ADL finds only C1 (3). The last 3 are sold by the fund
    after all, at 880 − 30 = 850: 3 × (850 − 900) = −150, passed on to the stage after ADL
    (write-off) and reported as ADL exhausted."""
    result = run("250", short("c1", "3", "1000"))
    [event] = result.events
    [takeover] = event.takeovers
    assert (takeover.fund_quantity, takeover.adl_quantity, takeover.market_quantity) == (4, 3, 3)
    assert (takeover.market_price, takeover.market_result, takeover.passed_on) == (850, -150, 150)
    assert [(a.stage, a.amount, a.detail) for a in event.allocations] == [
        ("write_off", 150, "takeover loss")
    ]
    assert result.write_offs == 150
    assert result.adl_exhausted == {"count": 1, "contracts": {"TOY": D(3)}, "amount": D(150)}
    assert result.summary()["adl_exhausted"] == {
        "count": 1,
        "contracts": {"TOY": "3"},
        "amount": "150",
    }
    assert result.conservation_error == 0


def test_a_fund_that_can_afford_the_whole_sale_takes_it_all():
    """Fund 1,200 ≥ 20 × 10 + 10 × 100: the fund takes all 10, sells at 780, loses 1,200."""
    result = run("1200", short("c1", "3", "1000"))
    [takeover] = result.events[0].takeovers
    assert (takeover.fund_quantity, takeover.fund_price, takeover.fund_result) == (10, 780, -1200)
    assert takeover.adl_quantity == 0 and result.deleverages == ()


def test_after_market_sale_deleverages_no_more_than_the_contracts_taken_over(tmp_path):
    """`after_market_sale`: the fund (0) sells all 10 at 780 and loses 1,200; counterparties give
    up, per contract, their PnL at the mark (880) less at the ADL price (900) — 20 for a short —
    for at most the 10 contracts taken over: C1 3 (60) and C2 4 (80) and C3 3 of its 5 (60), 200
    in all; the other 1,000 is written off. (Counting more than the 10 contracts would let C3
    give up all 5.)"""
    after = tmp_path / "after.yaml"
    after.write_text(
        f"id: toy-after\ntitle: toy after\nextends: {beside(TOY, tmp_path)}\n"
        "waterfall:\n  adl: {ranking: unrealized_pnl, mode: after_market_sale}\n",
        encoding="utf-8",
    )
    book = Book(
        (
            bankrupt_long(),
            short("c1", "3", "1000"),
            short("c2", "4", "950"),
            short("c3", "5", "930"),
        )
    )
    result = simulate(load_policy(after), book, gap("0"))
    fills = [(d.account_id, d.quantity, d.haircut, d.kind) for d in result.deleverages]
    assert fills == [
        ("c1", 3, 60, "after_sale"),
        ("c2", 4, 80, "after_sale"),
        ("c3", 3, 60, "after_sale"),
    ]
    assert result.write_offs == 1000
    assert result.conservation_error == 0


# -- properties on random books -------------------------------------------------------------

positions = st.lists(
    st.tuples(
        st.sampled_from(["long", "short"]),
        st.integers(1, 400).map(lambda n: D(n) / 100),  # 0.01 … 4 BTC
        st.integers(-2000, 2000).map(lambda n: D(60000 + n)),
        st.sampled_from(["cross", "isolated"]),
        st.sampled_from([D(x) for x in (5, 10, 20, 50, 100)]),
    ),
    min_size=2,
    max_size=10,
)
falls = st.lists(st.integers(-1200, 50), min_size=1, max_size=5).map(
    lambda moves: [D(60000)] + [D(60000) * (1 + D(m) / 10000) for m in sorted(moves, reverse=True)]
)


def crash(marks: list[Decimal], fund: Decimal) -> Scenario:
    points = tuple(
        PricePoint(60 * t, m.quantize(D("0.1")), m.quantize(D("0.1")), m.quantize(D("0.1")),
                   D(800_000), D(5_000_000))
        for t, m in enumerate(marks)
    )  # fmt: skip
    path = InstrumentPath("BTC/USDT", points)
    return Scenario("p", "p", "p", 60, {"BTC/USDT": path}, {"shared": fund, "BTC/USDT": fund})


def random_book(items, whales: bool) -> Book:
    accounts = []
    for index, (side, quantity, entry, mode, leverage) in enumerate(items):
        margin = (quantity * entry / leverage).quantize(D("0.01"))
        wallet = margin if mode == "cross" else D(0)
        position = BookPosition(
            "BTC/USDT",
            side,
            quantity,
            entry,
            mode,
            leverage,
            margin if mode == "isolated" else None,
        )
        accounts.append(BookAccount(f"a{index:02d}", wallet, (position,)))
    if whales:  # deep, profitable, never liquidated counterparties on both sides
        for side, entry in (("short", D(70000)), ("long", D(40000))):
            position = BookPosition("BTC/USDT", side, D(100), entry, "cross", D(1))
            accounts.append(BookAccount(f"whale-{side}", D(10_000_000), (position,)))
    return Book(tuple(accounts))


def check_takeovers(result: SimulationResult, policy: Policy) -> None:
    """Contracts are conserved per takeover; ADL never closes more than was left to close."""
    step = policy.markets["BTCUSDT"].quantity_step
    for event in result.events:
        served = sum(
            d.quantity
            for d in result.deleverages
            if d.bankrupt_account == event.account_id and d.time == event.time
        )
        left = sum(t.quantity - t.fund_quantity for t in event.takeovers)
        assert served <= left
        for takeover in event.takeovers:
            parts = takeover.fund_quantity + takeover.adl_quantity + takeover.market_quantity
            assert parts == takeover.quantity
            assert takeover.adl_quantity <= takeover.quantity - takeover.fund_quantity
            assert step is not None and takeover.fund_quantity % step == 0
    for deleverage in result.deleverages:
        if deleverage.kind == "fill":  # every ADL fill at the bankrupt order's bankruptcy price
            assert any(
                t.adl_price == deleverage.price == t.settlement_price
                for e in result.events
                if e.account_id == deleverage.bankrupt_account
                for t in e.takeovers
            )


@settings(max_examples=30, deadline=None)
@given(positions, falls, st.sampled_from([D(0), D(500), D(50_000)]))
def test_adl_takes_only_what_is_left_and_money_is_conserved(items, marks, fund):
    policy = shipped("binance-usdm")
    result = simulate(policy, random_book(items, whales=False), crash(marks, fund))
    assert result.conservation_error == 0
    check_takeovers(result, policy)
    for values in result.pools.values():
        assert values["min"] >= 0  # the fund never takes over more than it can afford


@settings(max_examples=30, deadline=None)
@given(positions, falls, st.sampled_from([D(0), D(500)]))
def test_nothing_is_written_off_while_counterparties_can_take_the_contracts(items, marks, fund):
    policy = shipped("binance-usdm")
    result = simulate(policy, random_book(items, whales=True), crash(marks, fund))
    assert result.conservation_error == 0
    check_takeovers(result, policy)
    assert result.write_offs == 0
    assert result.adl_exhausted["count"] == 0


def test_largest_quantity_matches_a_scan_of_the_grid():
    """The binary search returns the largest grid point (or the upper end) that passes."""
    from engine.mechanics.takeover import largest_quantity

    with decimal.localcontext(DECIMAL_CONTEXT):
        for upper in (D("0"), D("0.005"), D("1"), D("2.345"), D("7")):
            for limit in (D("-1"), D("0"), D("0.004"), D("0.5"), D("2.3449"), D("9")):
                expected = max(
                    [D(0)]
                    + [q for q in (D(n) / 1000 for n in range(int(upper * 1000) + 1)) if q <= limit]
                    + ([upper] if upper <= limit else [])
                )
                if upper == 0:
                    expected = D(0)
                found = largest_quantity(upper, D("0.001"), lambda q, cap=limit: q <= cap)
                assert found == expected, (upper, limit)


def test_after_market_sale_does_not_count_the_solvent_orders_contracts(tmp_path):
    """A toy with a first order settled at its fill (an IOC-like reduce of half) before the close.

    Order 1 sells 5 at 880 − 50 = 830, settled there: 5 × (830 − 1,000) = −850, margin left 150.
    Order 2: the other 5 go bankrupt at 150 + 5 (P − 1,000) ≤ 0 → 970 and are settled there
    (−150: no shortfall); the fund (0) sells them at 830: 5 × (830 − 970) = −700, passed on.
    `after_market_sale`: C1 (10 short at 1,000) gives up 120 − 30 = 90 per contract, for at most
    the 5 contracts taken over — 450; the other 250 is written off. (Counting order 1's 5 as
    well would let C1 cover all 700.)
    """
    variant = tmp_path / "toy-reduce-after.yaml"
    variant.write_text(
        f"id: toy-reduce-after\ntitle: toy reduce after\nextends: {beside(TOY, tmp_path)}\n"
        "liquidation:\n"
        "  steps:\n"
        "    - {name: reduce half, kind: reduce, quantity: position.size / 2}\n"
        "    - {name: close, kind: close}\n"
        "  fill:\n"
        "    settlement_price: 'if order.step == 1 then order.fill_price "
        "else order.bankruptcy_price'\n"
        "waterfall:\n  adl: {ranking: unrealized_pnl, mode: after_market_sale}\n",
        encoding="utf-8",
    )
    book = Book((bankrupt_long(), short("c1", "10", "1000")))
    result = simulate(load_policy(variant), book, gap("0"))
    [event] = result.events
    first, second = event.liquidation.statement.orders
    assert (first.quantity, first.fill_price, second.settlement_price) == (5, 830, 970)
    assert [(d.account_id, d.quantity, d.price, d.haircut) for d in result.deleverages] == [
        ("c1", 5, 970, 450)
    ]
    assert result.write_offs == 250
    assert result.conservation_error == 0
