"""The liquidation procedure: steps, fills, fees, consumption order, takeover, surplus, units."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from engine.mechanics.accounts import parse_account
from engine.mechanics.evaluate import AccountResult, evaluate_account
from engine.mechanics.liquidate import Liquidation

D = Decimal
ISOLATED = "isolated_margin:BTCUSDT long"

ERIN_MARKET = {
    "mark_price": "54200",
    "book_depth": "2500000",
    "average_book_depth": "5000000",
    "previous_mark_price": "56000",
}


def pos(
    symbol="BTCUSDT",
    side="long",
    *,
    size="2",
    entry="60000",
    mode="isolated",
    margin="12000",
    leverage="10",
) -> dict[str, Any]:
    p = {
        "symbol": symbol,
        "side": side,
        "size": size,
        "entry_price": entry,
        "margin_mode": mode,
        "leverage": leverage,
    }
    if margin is not None and mode == "isolated":
        p["isolated_margin"] = margin
    return p


def run(policy, positions, market, wallet="0") -> AccountResult:
    account = parse_account(
        {"id": "t", "wallet_balance": wallet, "positions": positions, "market": market}, policy
    )
    return evaluate_account(policy, account)


def erin(policy) -> Liquidation:
    [liquidation] = run(policy, [pos()], {"BTCUSDT": dict(ERIN_MARKET)}).liquidations
    return liquidation


def items(liquidation: Liquidation) -> list[tuple[Any, ...]]:
    return [
        (i.kind, i.name, i.amount, i.balance, i.order, i.detail)
        for i in liquidation.statement.items
    ]


def statuses(liquidation: Liquidation) -> list[tuple[str, str]]:
    return [(s.name, s.status) for s in liquidation.steps]


# --- the stepped example -------------------------------------------------------------------


def test_erin_statement_items_exactly(market_ioc):
    """Example `erin` with a market IOC: one reduce to bracket 1 at the fill, then the takeover.

    Fills round to the tick (floor for a long): 54,200 less 1.168552 % → 53,566.6."""
    liquidation = erin(market_ioc)
    assert items(liquidation) == [
        ("starting_margin", "margin before liquidation", D("12000"), ISOLATED, None, None),
        ("pnl_at_mark", "closed 1.078 BTCUSDT long at mark", D("-6252.4"), ISOLATED, 1, None),
        ("slippage", "settlement price vs mark", D("-682.8052"), ISOLATED, 1, None),
        (
            "fee",
            "clearance_fee",
            D("-175.2828"),
            ISOLATED,
            1,
            "charged 175.2828; to insurance_fund",
        ),
        ("pnl_at_mark", "closed 0.922 BTCUSDT long at mark", D("-5347.6"), ISOLATED, 2, None),
        ("slippage", "settlement price vs mark", D("458.0496"), ISOLATED, 2, None),
        (
            "fee",
            "clearance_fee",
            D("0"),
            ISOLATED,
            2,
            "charged 149.9172, waived 149.9172; to insurance_fund",
        ),
        (
            "shortfall",
            "loss past bankruptcy, to the loss waterfall",
            D("0.0384"),
            ISOLATED,
            2,
            None,
        ),
        ("final_balance", "returned to the trader", D("0"), ISOLATED, None, None),
    ]
    statement = liquidation.statement
    assert statement.reconciliation_error == 0
    assert (statement.fees_collected, statement.shortfall, statement.final_balance) == (
        D("175.2828"),
        D("0.0384"),
        D("0"),
    )
    assert statement.fully_liquidated and statement.remaining_margin == 0
    first, second = statement.orders
    assert (first.quantity, first.fill_price, first.settlement_price, first.bankruptcy_price) == (
        D("1.078"),
        D("53566.6"),
        D("53566.6"),
        D("54000"),
    )
    assert first.is_partial and not second.is_partial
    assert first.margin_after == D("4889.512") == second.margin_before + D("0.922") * 5800
    assert dict(first.consumed) == {
        "loss": D("6252.4"),
        "slippage": D("682.8052"),
        "fees": D("175.2828"),
    }
    assert dict(second.consumed) == {"loss": D("5347.5616"), "slippage": 0, "fees": 0}
    assert statuses(liquidation) == [
        ("cancel open orders", "no effect"),
        ("one large reduce-only IOC order", "executed"),
        ("close at the bankruptcy price, insurance fund takes over", "executed"),
    ]
    assert liquidation.fees_to == {"insurance_fund": D("175.2828")}


def test_settlement_at_the_bankruptcy_price_sends_the_fill_difference_to_the_takeover(market_ioc):
    liquidation = erin(market_ioc)
    first, second = liquidation.statement.orders
    assert first.takeover_result == 0  # step 1 settles at its own fill
    assert second.settlement_price == second.bankruptcy_price == D("54696.8")
    assert second.fill_price == D("53658.2")
    # the fund sold at the fill but paid the trader the bankruptcy price
    assert second.takeover_result == D("0.922") * (second.fill_price - second.settlement_price)
    assert liquidation.takeover_result == D("-957.5892")
    # the trader's realised loss is at the settlement price: -0.922 * (60,000 - 54,696.8)
    assert second.pnl_at_mark + second.slippage == D("-4889.5504")
    # …which is the margin left after the first order (4,889.512) and a tick's worth of shortfall
    assert second.pnl_at_mark + second.slippage == -(first.margin_after + second.shortfall)


def test_settlement_at_the_fill_price_leaves_the_trader_the_slippage(market_ioc, variant):
    at_fill = variant(
        "settle-at-fill",
        """\
        liquidation:
          fill: {settlement_price: order.fill_price}
        """,
    )
    liquidation = erin(at_fill)
    second = liquidation.statement.orders[1]
    assert second.settlement_price == second.fill_price
    assert liquidation.takeover_result == 0
    # the whole loss at the fill (not the bankruptcy price) is the trader's: a larger shortfall
    margin_left = liquidation.statement.orders[0].margin_after
    assert liquidation.statement.shortfall == D("0.922") * (60000 - second.fill_price) - margin_left
    assert liquidation.statement.shortfall > erin(market_ioc).statement.shortfall
    assert liquidation.statement.reconciliation_error == 0


# --- consumption order ---------------------------------------------------------------------


def test_consumption_order_decides_what_is_waived_and_what_is_shortfall(market_ioc, variant):
    fees_first = variant(
        "fees-first",
        """\
        liquidation:
          consumption_order: [fees, loss, slippage]
        """,
    )
    assert market_ioc.procedure.consumption_order == ("loss", "slippage", "fees")
    last = erin(market_ioc)  # fees last: the bankrupt order's fee is waived
    first = erin(fees_first)  # fees first: the fee is collected, the loss it displaces is shortfall
    fee = D("149.9172")  # 0.3 % * 0.922 * 54,200
    ((_, _, charged_last, collected_last, _),) = last.statement.orders[1].fees
    ((_, _, charged_first, collected_first, _),) = first.statement.orders[1].fees
    assert charged_last == charged_first == fee
    assert (collected_last, collected_first) == (0, fee)
    assert last.statement.shortfall == D("0.0384")
    assert first.statement.shortfall == last.statement.shortfall + fee
    loss_paid = dict(last.statement.orders[1].consumed)["loss"]
    assert dict(first.statement.orders[1].consumed) == {
        "fees": fee,
        "loss": loss_paid - fee,
        "slippage": 0,
    }
    # the solvent first order pays everything either way
    assert last.statement.orders[0].consumed != first.statement.orders[0].consumed  # order differs
    assert dict(last.statement.orders[0].consumed) == dict(first.statement.orders[0].consumed)
    for liquidation in (last, first):
        assert liquidation.statement.reconciliation_error == 0
        assert liquidation.statement.final_balance == 0


def test_slippage_before_loss_changes_which_loss_is_short(variant):
    slippage_first = variant(
        "slippage-first",
        """\
        liquidation:
          consumption_order: [slippage, fees, loss]
          fill: {settlement_price: order.fill_price}
        """,
    )
    first, second = erin(slippage_first).statement.orders
    margin = first.margin_after  # what backs the bankrupt second order
    consumed = dict(second.consumed)
    assert [name for name, _ in second.consumed] == ["slippage", "fees", "loss"]
    assert consumed["slippage"] == -second.slippage  # paid in full first
    assert consumed["fees"] == second.fees[0][2]  # then the fee, in full
    assert consumed["loss"] == margin - consumed["slippage"] - consumed["fees"]  # the rest
    assert second.shortfall == -second.pnl_at_mark - consumed["loss"]  # the loss at mark is short
    assert second.margin_after == 0


# --- fee conditions ------------------------------------------------------------------------

SURCHARGE = """\
    liquidation:
      fees:
        - name: clearance_fee
          amount: order.notional * market.clearance_fee_rate
        - name: stress_surcharge
          kind: surcharge
          amount: order.notional * 0.2%
          to: exchange
          when: |
            abs(market.mark_price - market.previous_mark_price) / market.previous_mark_price > 0.5%
            or market.book_depth < 30% * market.average_book_depth
    """

DAVE = pos(size="0.5", entry="40000", margin=None, leverage="20")  # LP 38,152.6, bracket 1


@pytest.mark.parametrize(
    ("mark", "previous", "depth", "average", "surcharged"),
    [
        ("38150", "38200", "9000000", "10000000", False),  # calm: 0.13 % move, deep book
        ("38150", "39000", "9000000", "10000000", True),  # 2.2 % jump
        ("38150", "37000", "9000000", "10000000", True),  # jump upwards counts too (abs)
        ("38150", "38200", "2000000", "10000000", True),  # thin book: 20 % of average
        ("38108.5", "38300", "9000000", "10000000", False),  # exactly 0.5 %: not more than
        ("38150", "38200", "3000000", "10000000", False),  # exactly 30 %: not less than
        ("38108.5", "38300", "2999999", "10000000", True),  # both edges, depth just under
    ],
)
def test_surcharge_applies_only_in_stressed_markets(
    variant, *, mark, previous, depth, average, surcharged
):
    policy = variant("surcharge", SURCHARGE)
    market = {
        "BTCUSDT": {
            "mark_price": mark,
            "previous_mark_price": previous,
            "book_depth": depth,
            "average_book_depth": average,
        }
    }
    [liquidation] = run(policy, [dict(DAVE)], market).liquidations
    [order] = liquidation.statement.orders  # bracket 1: closed in full by step 1
    names = [name for name, *_ in order.fees]
    assert names == (["clearance_fee", "stress_surcharge"] if surcharged else ["clearance_fee"])
    if surcharged:
        (_, kind, charged, _, to) = order.fees[1]
        assert (kind, to) == ("surcharge", "exchange")
        assert charged == D("0.5") * D(mark) * D("0.002")
        assert "exchange" in liquidation.fees_to
    assert liquidation.statement.reconciliation_error == 0


PARTIAL_FREE = """\
    liquidation:
      consumption_order: [fees, loss, slippage]
      fees:
        - name: closing_fee
          amount: order.notional * 1%
          when: not order.is_partial
    """


def test_no_fee_on_a_partial_liquidation_order(variant):
    policy = variant("partial-free", PARTIAL_FREE)
    first, second = erin(policy).statement.orders
    assert first.is_partial and first.fees == ()
    assert not second.is_partial
    [(name, _, charged, collected, _)] = second.fees
    assert name == "closing_fee" and charged == collected == D("0.922") * 54200 / 100
    fee_items = [i for i in erin(policy).statement.items if i.kind == "fee"]
    assert [i.order for i in fee_items] == [2]


# --- surplus -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "share"),
    [
        ("0", D(0)),
        ("order.remaining_margin", D(1)),
        ("order.remaining_margin / 2", D("0.5")),
        ("1_000_000", D(1)),
    ],  # clamped to what is left
)
def test_surplus_to_insurance_fund_takes_the_remaining_margin(variant, rule, share):
    body = f"liquidation:\n  surplus_to_insurance_fund: '{rule}'\n"
    policy = variant(f"surplus-{len(rule)}", body)
    market = {"BTCUSDT": {"mark_price": "38152.6", "book_depth": "1000000000"}}
    result = run(policy, [dict(DAVE)], market, wallet="100")
    [liquidation] = result.liquidations
    statement = liquidation.statement
    [order] = statement.orders
    left = order.margin_after
    fee = D("0.5") * D("38152.6") * D("0.003")
    assert left == D("76.3") + order.slippage - fee > 0  # balance at the mark - slippage - fee
    assert statement.fully_liquidated
    assert statement.surplus_to_insurance_fund == left * share
    assert statement.final_balance == left - left * share
    assert result.after.wallet_balance == 100 + statement.final_balance  # the rest goes home
    surplus_items = [i.amount for i in statement.items if i.kind == "surplus_to_insurance_fund"]
    assert surplus_items == ([-left * share] if share else [])
    assert statement.reconciliation_error == 0


# --- units ---------------------------------------------------------------------------------


def test_cross_liquidation_touches_only_the_cross_wallet(usdm):
    positions = [
        pos("BTCUSDT", "long", size="1", entry="60000", mode="cross"),
        pos("ETHUSDT", "long", size="2", entry="3000", mode="cross"),
        pos("ETHUSDT", "short", size="10", entry="3000", margin="10000", leverage="3"),
    ]
    market = {
        "BTCUSDT": {"mark_price": "45000", "book_depth": "100000000"},
        "ETHUSDT": {"mark_price": "3000", "book_depth": "100000000"},
    }
    result = run(usdm, positions, market, wallet="10000")
    by_mode = {(p.symbol, p.side): p.triggered for p in result.positions}
    assert by_mode == {
        ("BTCUSDT", "long"): True,
        ("ETHUSDT", "long"): True,
        ("ETHUSDT", "short"): False,
    }
    [liquidation] = result.liquidations
    statement = liquidation.statement
    assert statement.unit == "cross" and statement.balance == "cross_wallet"
    assert {i.balance for i in statement.items} == {"cross_wallet"}
    closed = {(o.symbol, o.side) for o in statement.orders}
    assert closed <= {("BTCUSDT", "long"), ("ETHUSDT", "long")}
    assert statement.starting_margin == D(10000)
    assert result.after.wallet_balance == statement.final_balance
    [isolated] = [p for p in result.after.positions if p["margin_mode"] == "isolated"]
    assert isolated == {
        "symbol": "ETHUSDT",
        "side": "short",
        "margin_mode": "isolated",
        "size": D(10),
        "entry_price": D(3000),
        "isolated_margin": D(10000),
        "leverage": D(3),
    }
    assert statement.reconciliation_error == 0


def test_isolated_liquidation_leaves_the_cross_wallet_alone_until_it_returns_the_rest(usdm):
    positions = [
        pos(size="0.5", entry="40000", margin=None, leverage="20"),
        pos("ETHUSDT", "long", size="1", entry="3000", mode="cross"),
    ]
    market = {
        "BTCUSDT": {"mark_price": "38152.6", "book_depth": "1000000000"},
        "ETHUSDT": {"mark_price": "3000"},
    }
    result = run(usdm, positions, market, wallet="500")
    [liquidation] = result.liquidations
    assert liquidation.statement.unit == "BTCUSDT long isolated"
    assert {i.balance for i in liquidation.statement.items} == {ISOLATED}
    assert result.after.positions == (
        {
            "symbol": "ETHUSDT",
            "side": "long",
            "margin_mode": "cross",
            "size": D(1),
            "entry_price": D(3000),
            "leverage": D(10),
        },
    )
    assert result.after.wallet_balance == 500 + liquidation.statement.final_balance


# --- stopping and closing the rest ---------------------------------------------------------


def test_trigger_that_stops_holding_after_the_reduce_stops_the_procedure(usdm):
    """20 BTC long (bracket 3) at its liquidation price: reducing below 600,000 notional drops the
    maintenance margin more than the fee costs, so the trigger stops holding after step 1."""
    big = pos(size="20", entry="60000", margin="60000", leverage="20")
    price = run(usdm, [big], {"BTCUSDT": {"mark_price": "60000"}}).positions[0].liquidation_price
    assert price == D("57325.1")
    result = run(usdm, [big], {"BTCUSDT": {"mark_price": str(price), "book_depth": "1000000000"}})
    [liquidation] = result.liquidations
    assert statuses(liquidation) == [
        ("cancel open orders", "no effect"),
        ("one large reduce-only IOC order", "executed"),
        ("close at the bankruptcy price, insurance fund takes over", "not reached"),
    ]
    assert liquidation.steps[2].detail == "trigger no longer holds"
    statement = liquidation.statement
    [order] = statement.orders
    assert order.is_partial and order.quantity == D("9.534")  # 20 - 600,000 / 57,325.1, up to 0.001
    assert not statement.fully_liquidated
    assert statement.final_balance == 0
    [left] = result.after.positions
    assert left["size"] == D("10.466")
    assert left["isolated_margin"] == statement.remaining_margin == order.margin_after
    assert statement.reconciliation_error == 0
    after = evaluate_account(usdm, result.after, run_liquidation=False).positions[0]
    assert not after.triggered and after.tiers["bracket"]["bracket"] == 2


def test_close_the_rest_after_the_last_step_when_still_triggered(variant):
    policy = variant(
        "trim-only",
        """\
        liquidation:
          steps:
            - name: trim a tenth
              kind: reduce
              quantity: 'round(position.size / 10, 0.001, "up")'
              repeat: 2
        """,
    )
    liquidation = erin(policy)
    assert statuses(liquidation) == [("trim a tenth", "executed"), ("close the rest", "executed")]
    assert liquidation.steps[0].detail == "2 orders, 0.38 contracts"  # 0.2, then 0.18
    orders = liquidation.statement.orders
    assert [(o.step, o.quantity) for o in orders] == [
        ("trim a tenth", D("0.2")),
        ("trim a tenth", D("0.18")),
        ("close the rest", D("1.62")),
    ]
    assert liquidation.statement.fully_liquidated
    assert liquidation.steps[1].detail == "trigger still held after the last step; closed 1.62"
    assert liquidation.statement.reconciliation_error == 0


def test_untriggered_account_is_not_liquidated(usdm):
    result = run(usdm, [pos()], {"BTCUSDT": {"mark_price": "59000"}})
    assert not result.triggered and result.liquidations == ()
    assert result.as_dict()["account_after"] is None


# --- offsetting opposite positions ---------------------------------------------------------

OFFSET = """\
    liquidation:
      steps:
        - {name: offset, kind: offset_opposite}
        - {name: close, kind: close}
    """


def test_offsetting_a_hedged_pair_books_no_shortfall(variant):
    """Regression: the legs ran loss first, so a 1 BTC hedge 10,000 under water on the long leg
    took the 1,000 wallet, booked 9,000 shortfall, then the short leg paid 10,000 back: the trader
    left with 10,000 of the insurance fund's money.  The gaining leg now runs first."""
    policy = variant("offset-close", OFFSET)
    positions = [
        pos("BTCUSDT", "long", size="1", entry="60000", mode="cross"),
        pos("BTCUSDT", "short", size="1", entry="60000", mode="cross"),
        pos("ETHUSDT", "long", size="1", entry="3000", mode="cross"),
    ]
    market = {
        "BTCUSDT": {"mark_price": "50000", "book_depth": "1000000"},
        "ETHUSDT": {"mark_price": "2300", "book_depth": "1000000"},
    }
    result = run(policy, positions, market, wallet="1000")
    [liquidation] = result.liquidations
    assert statuses(liquidation) == [("offset", "executed"), ("close", "not reached")]
    statement = liquidation.statement
    assert [(o.symbol, o.side, o.quantity) for o in statement.orders] == [
        ("BTCUSDT", "short", D(1)),
        ("BTCUSDT", "long", D(1)),
    ]
    assert statement.shortfall == 0
    assert sum((o.pnl_at_mark + o.slippage for o in statement.orders), D(0)) == 0
    assert statement.final_balance == result.after.wallet_balance == D(1000)
    assert [(p["symbol"], p["side"]) for p in result.after.positions] == [("ETHUSDT", "long")]
    assert statement.reconciliation_error == 0


def test_hedged_cross_pair_without_a_bankruptcy_price_settles_at_the_mark(usdm):
    """Regression: with a BTC long and short of equal size in the cross unit, the margin balance
    does not move with the BTC price, so no bankruptcy price exists and step 2's
    `order.bankruptcy_price` raised EvaluationError (missing input) out of evaluate_account."""
    positions = [
        pos("BTCUSDT", "long", size="1", entry="60000", mode="cross"),
        pos("BTCUSDT", "short", size="1", entry="60000", mode="cross"),
        pos("ETHUSDT", "long", size="30", entry="3000", mode="cross"),
    ]
    market = {
        "BTCUSDT": {"mark_price": "50000", "book_depth": "1000000"},
        "ETHUSDT": {"mark_price": "2000", "book_depth": "1000000"},
    }
    for wallet in ("0", "1000"):
        result = run(usdm, positions, market, wallet=wallet)
        [liquidation] = result.liquidations
        statement = liquidation.statement
        [hedged] = [o for o in statement.orders if (o.symbol, o.side) == ("BTCUSDT", "long")]
        assert hedged.bankruptcy_price is None  # reported honestly: there is none
        assert hedged.settlement_price == hedged.mark_price == D(50000)
        assert statement.reconciliation_error == 0 and statement.fully_liquidated


# --- immediate-or-cancel orders --------------------------------------------------------------


def test_ioc_fills_only_what_trades_at_or_above_the_bankruptcy_price(usdm):
    """The shipped policy's IOC order: limit = bankruptcy price 54,000 (2 BTC long at 60,000,
    isolated 12,000, mark 54,200, depth 2,500,000).

    A sale of q BTC fills at floor_0.1(54,200 × (1 − q × 54,200 / 5,000,000)):
    q = 0.340 → 54,200 − 199.75952 = 54,000.24… → 54,000.2 ≥ 54,000 (fills);
    q = 0.341 → 54,200 − 200.34706 = 53,999.65… → 53,999.6 < 54,000 (would not).
    So 0.34 of the 1.078 requested fill and 0.738 are cancelled.
    """
    liquidation = erin(usdm)
    first, second = liquidation.statement.orders
    assert (first.quantity, first.requested, first.limit_price, first.cancelled) == (
        D("0.34"),
        D("1.078"),
        D("54000"),
        D("0.738"),
    )
    assert first.fill_price == first.settlement_price == D("54000.2")
    assert (second.quantity, second.requested, second.limit_price) == (D("1.66"), None, None)
    assert liquidation.steps[1].detail == "1 order, 0.34 contracts; 0.738 cancelled at the limit"
    data = first.as_dict()
    assert (data["requested_quantity"], data["cancelled_quantity"], data["limit_price"]) == (
        "1.078",
        "0.738",
        "54000",
    )
    assert second.as_dict()["cancelled_quantity"] == "0"


def test_ioc_buying_back_a_short_fills_at_or_below_the_limit(usdm):
    """2 BTC short at 60,000, isolated 12,000, mark 65,800: margin balance 12,000 − 2 × 5,800 =
    400 < maintenance 131,600 × 0.5 % − 50 = 608, bankruptcy 60,000 + 12,000 / 2 = 66,000.

    Requested 2 − 50,000 / 65,800 = 1.24012… → 1.241. A purchase of q BTC fills at
    ceil_0.1(65,800 × (1 + q × 65,800 / 5,000,000)): q = 0.230 → 65,999.16… → 65,999.2 ≤ 66,000;
    q = 0.231 → 66,000.03… → 66,000.1 > 66,000. So 0.23 fill and 1.011 are cancelled.
    """
    short = pos(side="short", margin="12000")
    market = {"BTCUSDT": {**ERIN_MARKET, "mark_price": "65800"}}
    [liquidation] = run(usdm, [short], market).liquidations
    first = liquidation.statement.orders[0]
    assert (first.quantity, first.requested, first.cancelled, first.fill_price) == (
        D("0.23"),
        D("1.241"),
        D("1.011"),
        D("65999.2"),
    )
    assert first.limit_price == D("66000")


def test_ioc_that_fills_nothing_places_no_order(variant):
    """A limit no fill reaches (twice the mark for a long being sold): nothing fills, the step
    has no effect and the closing step takes the whole position."""
    policy = variant(
        "unreachable-limit",
        """\
        liquidation:
          steps:
            - name: reduce at an unreachable limit
              kind: reduce
              quantity: reduce_to_lower_bracket
              limit_price: market.mark_price * 2
            - {name: close, kind: close}
        """,
    )
    liquidation = erin(policy)
    [order] = liquidation.statement.orders
    assert (order.step, order.quantity) == ("close", D("2"))
    assert statuses(liquidation)[0] == ("reduce at an unreachable limit", "no effect")
    assert liquidation.steps[0].detail == (
        "nothing filled at or better than the limit; 1.078 cancelled at the limit"
    )


def test_ioc_fills_everything_when_the_whole_order_is_within_the_limit(variant):
    """A limit below any fill a long's sale can reach: the whole requested quantity fills."""
    policy = variant(
        "loose-limit",
        """\
        liquidation:
          steps:
            - name: reduce
              kind: reduce
              quantity: reduce_to_lower_bracket
              limit_price: market.mark_price / 2
            - {name: close, kind: close}
        """,
    )
    first = erin(policy).statement.orders[0]
    assert (first.quantity, first.requested, first.cancelled) == (D("1.078"), D("1.078"), 0)
