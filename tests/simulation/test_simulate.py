"""Simulation invariants on the shipped demo data and on small random books.

Money is conserved exactly (the simulator refuses to report otherwise), results do not depend on
the order of accounts in the book, the same inputs give the same events and ids, and the
"where the money went" figures add up.
"""

from __future__ import annotations

import decimal
import functools
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.numbers import DECIMAL_CONTEXT
from engine.policy.load import load_policy
from engine.simulation.model import (
    Book,
    BookAccount,
    BookPosition,
    FundingEvent,
    InstrumentPath,
    PricePoint,
    Scenario,
)
from engine.simulation.simulate import simulate

POLICIES = ("binance-usdm", "huobi-linear-swap")


@functools.cache
def policy(policy_id: str):
    return load_policy(policy_id)


def crash(marks: list[Decimal], funding: Decimal = Decimal("0.0001")) -> Scenario:
    points = tuple(
        PricePoint(
            t * 60, m, m - Decimal(5), m + Decimal(2), Decimal(3_000_000), Decimal(5_000_000)
        )
        for t, m in enumerate(marks)
    )
    path = InstrumentPath("BTC/USDT", points, (FundingEvent(60, funding),))
    return Scenario(
        "test",
        "test",
        "stylised",
        60,
        {"BTC/USDT": path},
        {"shared": Decimal(5000), "BTC/USDT": Decimal(5000)},
        settlement_seconds=120,
    )


accounts = st.lists(
    st.tuples(
        st.sampled_from(["long", "short"]),
        st.integers(1, 400).map(lambda n: Decimal(n) / 100),  # 0.01 … 4 BTC
        st.integers(-2000, 2000).map(lambda n: Decimal(60000 + n)),
        st.sampled_from(["cross", "isolated"]),
        st.sampled_from([Decimal(x) for x in (2, 5, 10, 20, 50, 100)]),
        st.integers(0, 30).map(lambda n: Decimal(n) / 10),  # extra wallet, in margins
    ),
    min_size=2,
    max_size=12,
)
paths = st.lists(
    st.integers(-900, 300).map(lambda n: Decimal(60000) * (1 + Decimal(n) / 10000)),
    min_size=2,
    max_size=6,
)


def book_of(items: list[tuple]) -> Book:
    result = []
    for index, (side, quantity, entry, mode, leverage, extra) in enumerate(items):
        margin = (quantity * entry / leverage).quantize(Decimal("0.01"))
        wallet = (margin * extra).quantize(Decimal("0.01")) + (margin if mode == "cross" else 0)
        position = BookPosition(
            "BTC/USDT",
            side,
            quantity,
            entry,
            mode,
            leverage,
            margin if mode == "isolated" else None,
        )
        result.append(BookAccount(f"a{index:03d}", wallet, (position,)))
    return Book(tuple(result))


@settings(max_examples=25, deadline=None)
@given(accounts, paths, st.sampled_from(POLICIES))
def test_money_is_conserved_and_flows_add_up(items, marks, policy_id):
    result = simulate(policy(policy_id), book_of(items), crash(marks))
    assert result.conservation_error == 0
    went = result.where_the_money_went()
    margin_side = ("counterparties", "fees", "insurance_fund_takeover_gains", "insurance_fund")
    assert sum(went[k] for k in margin_side) == result.liquidated_margin
    covered = sum(v for k, v in went.items() if k not in margin_side)
    assert covered == result.losses_past_bankruptcy
    # …which is every statement's shortfall plus every takeover's loss
    shortfalls = sum(e.liquidation.statement.shortfall for e in result.events)
    takeover_losses = sum(
        -min(Decimal(0), part)
        for e in result.events
        for t in e.takeovers
        for part in (t.fund_result, t.adl_result, t.market_result)
    )
    assert covered == shortfalls + takeover_losses
    for event in result.events:
        assert event.liquidation.statement.reconciles


@settings(max_examples=15, deadline=None)
@given(accounts, paths, st.sampled_from(POLICIES), st.randoms(use_true_random=False))
def test_results_do_not_depend_on_account_order(items, marks, policy_id, random):
    shuffled = list(items)
    random.shuffle(shuffled)
    book = book_of(items)
    reordered = Book(
        tuple(sorted(book.accounts, key=lambda a: shuffled.index(items[int(a.id[1:])])))
    )
    first = simulate(policy(policy_id), book, crash(marks)).as_dict()
    second = simulate(policy(policy_id), reordered, crash(marks)).as_dict()
    assert first == second


def test_same_inputs_same_events_and_ids():
    items = [
        ("long", Decimal(2), Decimal(60000), "isolated", Decimal(20), Decimal(0)),
        ("short", Decimal(1), Decimal(59500), "cross", Decimal(5), Decimal(1)),
    ]
    marks = [Decimal(60000), Decimal(56000), Decimal(54000), Decimal(57000)]
    for policy_id in POLICIES:
        first = simulate(policy(policy_id), book_of(items), crash(marks))
        second = simulate(policy(policy_id), book_of(items), crash(marks))
        assert first.as_dict() == second.as_dict()
        assert [e.liquidation.statement.event_id for e in first.events]


def test_dpe_clawback_example_comes_out_at_sixty_percent(tmp_path):
    """BitMEX DPE (exchanges.md §4.6 / §8): total system loss 6, total profit 10 → 60 %."""
    from engine.simulation.simulate import _Simulation

    text = tmp_path / "p.yaml"
    text.write_text(
        "id: dpe\ntitle: dpe\nextends: huobi-linear-swap\nexamples: null\n", encoding="utf-8"
    )
    scenario = crash([Decimal(60000), Decimal(60000)])
    book = book_of(
        [
            ("long", Decimal(1), Decimal(50000), "cross", Decimal(5), Decimal(1)),
            ("short", Decimal(1), Decimal(70000), "cross", Decimal(5), Decimal(1)),
        ]
    )
    policy = load_policy(text)
    with decimal.localcontext(DECIMAL_CONTEXT):  # as simulate() runs it
        _settle_dpe(policy, book, scenario, _Simulation)


def _settle_dpe(policy, book, scenario, simulation_class):
    run = simulation_class(policy, book, scenario)
    run.path_ranges(scenario.times())
    start = {aid: run.equity(state) for aid, state in run.states.items()}
    # Account a000 gains 10 BTC-USDT points of equity, a001 is flat; 6 of loss is uncovered.
    run.states["a000"].wallet_balance += Decimal(10)
    run.ledger.market -= Decimal(10)
    run.ledger.clawback_receivable -= Decimal(6)
    run.ledger.market += Decimal(6)
    run.refresh_balances(set(run.states))
    run.settle_clawback(0, start)
    clawback = run.clawbacks[-1]
    assert clawback.rate == Decimal("0.6")
    assert clawback.collected == Decimal(6)
    assert run.clawback_paid["a000"] == Decimal(6)  # realised 4 of 10


def test_price_mismatch_between_book_and_scenario_is_reported():
    from engine.simulation.model import price_mismatches

    items = [("long", Decimal(1), Decimal(60000), "cross", Decimal(5), Decimal(1))]
    assert price_mismatches(book_of(items), crash([Decimal(60500), Decimal(59000)])) == []
    far = price_mismatches(book_of(items), crash([Decimal(30000), Decimal(29000)]))
    assert len(far) == 1
    assert far[0].startswith("BTC/USDT: the book's average entry price 60000.00")
