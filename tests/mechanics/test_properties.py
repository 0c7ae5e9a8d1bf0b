"""Properties of evaluation and liquidation on binance-usdm over random isolated and cross accounts.

Marks range from deep crashes to spikes, so most accounts liquidate something.  Every statement
must reconcile to the last unit, money must be conserved, results must be deterministic, and the
trace must point into the policy file without changing the result.
"""

from __future__ import annotations

import copy
import functools
import itertools
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.mechanics.accounts import parse_account
from engine.mechanics.evaluate import AccountResult, evaluate_account
from engine.mechanics.quote import quote_prices
from engine.mechanics.statement import Statement
from engine.numbers import ZERO
from engine.policy.load import load_policy
from engine.policy.model import Policy

D = Decimal
MARKETS = {  # symbol: (size step, size range in steps, tick, entry range in ticks)
    "BTCUSDT": (D("0.001"), (1, 50_000), D("0.1"), (10_000, 2_000_000)),  # ≤ 50 BTC, 1k-200k
    "ETHUSDT": (D("0.01"), (1, 50_000), D("0.01"), (10_000, 1_000_000)),  # ≤ 500 ETH, 100-10k
}
FACTORS = [
    "0.1",
    "0.3",
    "0.5",
    "0.8",
    "0.9",
    "0.95",
    "0.98",
    "0.99",
    "1",
    "1.01",
    "1.02",
    "1.05",
    "1.1",
    "1.3",
    "2",
    "5",
]
DEPTHS = ["1000000000", "50000000", "2500000", "100000"]  # deep first: solvent fills


@st.composite
def accounts(draw: st.DrawFn) -> dict[str, Any]:
    pairs = [(s, side) for s in MARKETS for side in ("long", "short")]
    keys = draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=3, unique=True))
    positions: list[dict[str, Any]] = []
    entries: dict[str, Decimal] = {}
    cross_margin = ZERO
    for symbol, side in keys:
        step, sizes, tick, prices = MARKETS[symbol]
        size = draw(st.integers(*sizes)) * step
        entry = entries.setdefault(symbol, draw(st.integers(*prices)) * tick)
        leverage = draw(st.integers(1, 125))
        mode = draw(st.sampled_from(["isolated", "cross"]))
        position = {
            "symbol": symbol,
            "side": side,
            "size": str(size),
            "entry_price": str(entry),
            "margin_mode": mode,
            "leverage": str(leverage),
        }
        if mode == "isolated" and draw(st.booleans()):  # an explicit margin, else the default
            share = D(draw(st.sampled_from(["0.01", "0.1", "0.5", "1", "1.5"])))
            position["isolated_margin"] = str((size * entry * share).quantize(D("0.01")))
        if mode == "cross":
            cross_margin += size * entry / leverage
        positions.append(position)
    wallet = (cross_margin * D(draw(st.sampled_from(["0", "0.5", "1", "2"])))).quantize(D("0.01"))
    market: dict[str, dict[str, str]] = {}
    for symbol, entry in entries.items():
        tick = MARKETS[symbol][2]
        first = next(p for p in positions if p["symbol"] == symbol)
        loss = -1 if first["side"] == "long" else 1
        where = draw(st.sampled_from(["just past", "near", "anywhere"]))
        if where == "anywhere":  # from a crash to a spike
            factor = D(draw(st.sampled_from(FACTORS)))
        elif where == "near":  # around where the first position of the symbol liquidates
            factor = 1 + loss * D(draw(st.integers(40, 120))) / 100 / D(first["leverage"])
        price = None
        if where == "just past":  # a few ticks past its liquidation price (as if it were isolated)
            price = _isolated_liquidation_price(first)
        if price is not None:
            mark = max(tick, price + loss * tick * draw(st.sampled_from([0, 1, 3, 10, 100, 1000])))
        else:
            factor = factor if where != "just past" else D("0.5") if loss < 0 else D(2)
            mark = max(tick, (entry * factor / tick).quantize(D(1), ROUND_FLOOR) * tick)
        depth = draw(st.sampled_from(DEPTHS))
        market[symbol] = {
            "mark_price": str(mark),
            "previous_mark_price": str(entry),
            "book_depth": depth,
            "average_book_depth": str(D(depth) * 2),
        }
    return {"id": "random", "wallet_balance": str(wallet), "positions": positions, "market": market}


@functools.cache
def usdm() -> Policy:
    """Not a fixture: Hypothesis would print the multi-megabyte Policy repr on a failure."""
    return load_policy("binance-usdm")


def _isolated_liquidation_price(position: dict[str, Any]) -> Decimal | None:
    margin = position.get("isolated_margin")
    quote = quote_prices(
        usdm(),
        symbol=position["symbol"],
        side=position["side"],
        size=D(position["size"]),
        entry_price=D(position["entry_price"]),
        leverage=D(position["leverage"]),
        margin=D(margin) if margin is not None else None,
    )
    return quote.liquidation_price


def evaluate(policy, data: dict[str, Any], **options: Any) -> AccountResult:
    return evaluate_account(policy, parse_account(data, policy), **options)


def _positive(value: Decimal) -> Decimal:
    return max(ZERO, value)


def check_money(statement: Statement) -> None:
    """Starting margin + gains + shortfall = fees collected + losses + surplus + what is left."""
    orders = statement.orders
    gains = sum((_positive(o.pnl_at_mark) + _positive(o.slippage) for o in orders), ZERO)
    losses = sum((_positive(-o.pnl_at_mark) + _positive(-o.slippage) for o in orders), ZERO)
    consumed = sum((amount for o in orders for name, amount in o.consumed if name != "fees"), ZERO)
    fees = statement.fees_collected
    paid_fees = (amount for o in orders for name, amount in o.consumed if name == "fees")
    assert fees == sum(paid_fees, ZERO)
    left = (
        statement.final_balance + statement.remaining_margin + statement.surplus_to_insurance_fund
    )
    # margin consumed (by losses and fees) + what is left = what the unit had, plus its gains
    assert fees + consumed + left == statement.starting_margin + gains
    # losses are paid from the margin or become shortfall, nothing else
    assert consumed + statement.shortfall == losses
    # the money identity, all in one line
    assert fees + losses + left == statement.starting_margin + gains + statement.shortfall


@settings(max_examples=100)
@given(data=accounts())
def test_statements_reconcile_and_conserve_money(data):
    policy = usdm()
    result = evaluate(policy, data)
    for liquidation in result.liquidations:
        statement = liquidation.statement
        assert statement.reconciliation_error == 0 and statement.reconciles
        check_money(statement)
        # a cross wallet left open may stay below zero while open positions' profit backs it
        assert statement.final_balance >= 0 or (
            statement.unit == "cross" and not statement.fully_liquidated
        )
        assert statement.shortfall >= 0
        assert statement.remaining_margin >= 0
        assert statement.surplus_to_insurance_fund >= 0
        assert statement.orders, "a triggered unit is liquidated with at least one order"
        for order in statement.orders:
            assert order.shortfall >= 0
            # a cross wallet may dip below zero while other open positions' profit backs it
            assert order.margin_after >= 0 or statement.unit == "cross"
            assert all(amount >= 0 for _, amount in order.consumed)
            for _, _, charged, collected, _ in order.fees:
                assert 0 <= collected <= charged
        if statement.fully_liquidated or statement.unit == "cross":
            assert statement.remaining_margin == 0  # the cross wallet is the final balance
        else:  # a partial isolated liquidation keeps its margin in the position
            assert statement.final_balance == 0
            [kept] = [
                p
                for p in result.after.positions
                if statement.unit == f"{p['symbol']} {p['side']} isolated"
            ]
            assert kept["isolated_margin"] == statement.remaining_margin
        assert sum(liquidation.fees_to.values(), ZERO) == statement.fees_collected
    # every triggered isolated position and a triggered cross group each got exactly one unit
    units = [item.statement.unit for item in result.liquidations]
    assert len(units) == len(set(units))
    expected = {
        f"{p.symbol} {p.side} isolated"
        for p in result.positions
        if p.triggered and p.margin_mode == "isolated"
    }
    if any(p.triggered for p in result.positions if p.margin_mode == "cross"):
        expected.add("cross")
    assert set(units) == expected
    # the account after: cross wallet is what the cross statement left; sizes never grow
    cross = [item.statement for item in result.liquidations if item.statement.unit == "cross"]
    if cross:
        assert result.after.wallet_balance == cross[0].final_balance
    before = {(p["symbol"], p["side"]): D(p["size"]) for p in data["positions"]}
    for position in result.after.positions:
        assert 0 < position["size"] <= before[(position["symbol"], position["side"])]


@settings(max_examples=40)
@given(data=accounts())
def test_evaluation_is_deterministic(data):
    policy = usdm()
    first = evaluate(policy, data).as_dict()
    second = evaluate(policy, copy.deepcopy(data)).as_dict()
    assert first == second
    ids = [item["statement"]["event_id"] for item in first["liquidations"]]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("liq-") and len(i) == 4 + 24 for i in ids)


def _ids(result: AccountResult) -> dict[str, str]:
    return {item.statement.unit: item.statement.event_id for item in result.liquidations}


def _without_ids(result: AccountResult) -> list[dict[str, Any]]:
    items = [item.as_dict() for item in result.liquidations]
    for item in items:
        item["statement"].pop("event_id")
    return items


@settings(max_examples=40)
@given(data=accounts())
def test_event_id_changes_with_any_input_number(data):
    policy = usdm()
    original = evaluate(policy, data)
    # a number this policy does not read: same outcome, but a different event
    unused = copy.deepcopy(data)
    symbol = next(iter(unused["market"]))
    depth = unused["market"][symbol]["average_book_depth"]
    unused["market"][symbol]["average_book_depth"] = str(D(depth) + 1)
    changed = evaluate(policy, unused)
    assert _without_ids(changed) == _without_ids(original)
    assert set(_ids(changed)) == set(_ids(original))
    for unit, event in _ids(original).items():
        assert _ids(changed)[unit] != event
    # a number it does read: every unit liquidated in both runs gets a new id
    richer = copy.deepcopy(data)
    richer["wallet_balance"] = str(D(richer["wallet_balance"]) + D("0.01"))
    moved = _ids(evaluate(policy, richer))
    for unit, event in _ids(original).items():
        if unit in moved:
            assert moved[unit] != event


def _location(policy, location: str) -> tuple[Path, int]:
    path, line = location.rsplit(":", 1)
    assert Path(path).resolve() == Path(policy.path).resolve(), location
    return Path(policy.path), int(line)


@settings(max_examples=25)
@given(data=accounts())
def test_trace_locates_every_definition_and_changes_nothing(data):
    policy = usdm()
    plain = evaluate(policy, data)
    traced = evaluate(policy, data, trace=True)
    assert plain.trace == ()
    plain_dict, traced_dict = plain.as_dict(), traced.as_dict()
    assert traced_dict.pop("trace") and plain_dict.pop("trace") == []
    assert traced_dict == plain_dict

    lines = Path(policy.path).read_text(encoding="utf-8").splitlines()
    names: set[str] = set()
    for entry in traced.trace:
        if entry.location is not None:
            _, line = _location(policy, entry.location)
            assert 1 <= line <= len(lines)
        if entry.kind == "definition":
            assert entry.location is not None, entry
            _, line = _location(policy, entry.location)
            assert lines[line - 1].strip().startswith(f"{entry.name}:"), (entry.name, line)
            names.add(entry.name)
    has_orders = any(item.statement.orders for item in traced.liquidations)
    needs_an_order = set() if has_orders else {"slippage_rate"}
    expected = set(policy.definitions) - needs_an_order
    assert names == expected


VARIANT = """\
    liquidation:
      steps:
        - {name: offset hedges, kind: offset_opposite}
        - {name: trim, kind: reduce, quantity: 'round(position.size / 4, 0.001, "up")', repeat: 2}
      fill: {settlement_price: order.fill_price}
      consumption_order: [fees, loss, slippage]
      surplus_to_insurance_fund: order.remaining_margin / 2
    """


@settings(max_examples=80)
@given(data=accounts())
def test_money_is_conserved_with_offsets_surplus_and_fees_first(variant, data):
    """The same identities on a variant that offsets hedges, trims twice, closes the rest, takes
    fees first and keeps half of what is left: every term of the identity is exercised."""
    policy = variant("properties-variant", VARIANT)
    result = evaluate(policy, data)
    for liquidation in result.liquidations:
        statement = liquidation.statement
        assert statement.reconciliation_error == 0
        check_money(statement)
        assert statement.shortfall >= 0
        assert statement.final_balance >= 0 or (
            statement.unit == "cross" and not statement.fully_liquidated
        )
        if statement.fully_liquidated and statement.surplus_to_insurance_fund:
            assert statement.surplus_to_insurance_fund == statement.final_balance  # half each
        for first, second in itertools.pairwise(statement.orders):
            pair = first.step == second.step == "offset hedges" and first.symbol == second.symbol
            net = first.pnl_at_mark + first.slippage + second.pnl_at_mark + second.slippage
            if pair and net >= 0:
                assert first.shortfall == second.shortfall == 0  # a pair that nets a gain
