"""Liquidation and bankruptcy prices: FAQ goldens, closed forms, tick convention, properties.

Tick convention (policy `rounding: trigger`, the default): for a long the reported price is the
HIGHEST tick at which the condition holds (the exact boundary rounded down to the tick); for a
short the LOWEST (rounded up).  Other rounding modes refine within one tick, then round.
"""

from __future__ import annotations

import decimal
import textwrap
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.mechanics.accounts import parse_account
from engine.mechanics.evaluate import PositionResult, evaluate_account
from engine.mechanics.quote import quote_prices
from engine.numbers import DECIMAL_CONTEXT
from engine.policy.load import load_policy

D = Decimal
TICK = D("0.1")  # BTCUSDT on binance-usdm


def position(
    symbol="BTCUSDT",
    side="long",
    size="1",
    entry="60000",
    *,
    mode="isolated",
    margin=None,
    leverage="10",
) -> dict[str, Any]:
    p = {
        "symbol": symbol,
        "side": side,
        "size": str(size),
        "entry_price": str(entry),
        "margin_mode": mode,
        "leverage": str(leverage),
    }
    if margin is not None:
        p["isolated_margin"] = str(margin)
    return p


def evaluate(policy, positions, marks, wallet="0") -> tuple[PositionResult, ...]:
    account = parse_account(
        {
            "id": "t",
            "wallet_balance": str(wallet),
            "positions": positions,
            "market": {s: {"mark_price": str(m)} for s, m in marks.items()},
        },
        policy,
    )
    return evaluate_account(policy, account, run_liquidation=False).positions


def one(policy, p, mark=None) -> PositionResult:
    return evaluate(policy, [p], {p["symbol"]: mark if mark is not None else p["entry_price"]})[0]


def on_tick(value: Decimal, side: str, tick: Decimal = TICK) -> Decimal:
    """The reported price for an exact boundary: highest tick below (long), lowest above (short)."""
    rounding = ROUND_FLOOR if side == "long" else ROUND_CEILING
    return (value / tick).quantize(D(1), rounding=rounding) * tick


# --- Binance FAQ goldens ---------------------------------------------------------------------

FAQ_WALLET = D("1535443.01")
BTC = {
    "q": D("109.488"),
    "entry": D("32481.98"),
    "mark": D("31967.27"),
    "rate": D("0.025"),
    "amount": D(16300),
}
ETH = {
    "q": D("3683.979"),
    "entry": D("1456.84"),
    "mark": D("1335.18"),
    "rate": D("0.10"),
    "amount": D(135365),
}


def _isolated_long(q, entry, margin, rate, amount) -> Decimal:
    """M + Q(P - EP) = Q·P·MMR - amount  →  P = (Q·EP - M - amount) / (Q·(1 - MMR))."""
    return (q * entry - margin - amount) / (q * (1 - rate))


def _isolated_short(q, entry, margin, rate, amount) -> Decimal:
    """M + Q(EP - P) = Q·P·MMR - amount  →  P = (Q·EP + M + amount) / (Q·(1 + MMR))."""
    return (q * entry + margin + amount) / (q * (1 + rate))


def _cross_long(this, other, wallet) -> Decimal:
    """WB + UPnL_other + Q(P - EP) = MM_other + Q·P·MMR - amount, the other leg held at its mark."""
    upnl_other = other["q"] * (other["mark"] - other["entry"])
    mm_other = other["q"] * other["mark"] * other["rate"] - other["amount"]
    q = this["q"]
    numerator = q * this["entry"] + mm_other - this["amount"] - wallet - upnl_other
    return numerator / (q * (1 - this["rate"]))


def _faq_pair() -> list[dict[str, Any]]:
    return [
        position("BTCUSDT", size=BTC["q"], entry=BTC["entry"], mode="cross", leverage=20),
        position("ETHUSDT", size=ETH["q"], entry=ETH["entry"], mode="cross", leverage=10),
    ]


def test_faq_isolated(faq):
    """Binance FAQ b3c689c1… "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts",
    reproduced in freqtrade tests/exchange/test_binance.py::test_liquidation_price_binance
    ("From calc example"): isolated wallet 1,535,443.01 → BTCUSDT 18,778.73, ETHUSDT 1,114.78.
    The policy reports prices to 0.01 rounded half up, as the FAQ prints them.
    """
    cases = (("BTCUSDT", BTC, 20, "18778.73"), ("ETHUSDT", ETH, 10, "1114.78"))
    for symbol, leg, leverage, expected in cases:
        p = position(
            symbol, size=leg["q"], entry=leg["entry"], margin=FAQ_WALLET, leverage=leverage
        )
        result = one(faq, p, leg["mark"])
        assert result.liquidation_price == D(expected)
        exact = _isolated_long(leg["q"], leg["entry"], FAQ_WALLET, leg["rate"], leg["amount"])
        assert exact.quantize(D("0.01"), rounding=ROUND_HALF_UP) == D(expected)


def test_faq_cross(faq):
    """Binance FAQ b3c689c1…, reproduced in freqtrade
    tests/exchange/test_binance.py::test_liquidation_price_binance: both legs cross on the
    1,535,443.01 wallet, the other leg held at its mark → BTCUSDT 26,316.89, ETHUSDT 1,153.26.
    """
    marks = {"BTCUSDT": BTC["mark"], "ETHUSDT": ETH["mark"]}
    btc, eth = evaluate(faq, _faq_pair(), marks, FAQ_WALLET)
    assert btc.liquidation_price == D("26316.89")
    assert eth.liquidation_price == D("1153.26")
    assert btc.figure("maintenance_margin") == D("71200.811444")
    assert eth.figure("unrealized_pnl") == D("-448192.88514")
    for leg, other, result in ((BTC, ETH, btc), (ETH, BTC, eth)):
        exact = _cross_long(leg, other, FAQ_WALLET)
        assert exact.quantize(D("0.01"), rounding=ROUND_HALF_UP) == result.liquidation_price


# --- closed forms on binance-usdm (brackets fixed between the mark and the price) -------------

# (symbol, side, size, entry, margin, tick, bracket rate, bracket amount)
CLOSED_FORM_CASES = [
    ("BTCUSDT", "long", "2", "60000", "12000", "0.1", "0.005", "50"),  # alice: 54,246.23… → .2
    ("BTCUSDT", "short", "1", "60000", "6000", "0.1", "0.005", "50"),  # bob: 65,721.39… → 65,721.4
    ("BTCUSDT", "long", "0.5", "40000", "1000", "0.1", "0.004", "0"),  # dave: 38,152.61… → 38,152.6
    ("ETHUSDT", "long", "10", "3000", "3000", "0.01", "0.004", "0"),  # 2,710.843… → 2,710.84
    ("ETHUSDT", "short", "100", "3000", "30000", "0.01", "0.005", "50"),  # 3,284.079… → 3,284.08
    ("BTCUSDT", "long", "1", "50000", "10160", "0.1", "0.004", "0"),  # exactly 40,000.0, a tick
]


@pytest.mark.parametrize(
    ("symbol", "side", "size", "entry", "margin", "tick", "rate", "amount"), CLOSED_FORM_CASES
)
def test_isolated_closed_form(usdm, *, symbol, side, size, entry, margin, tick, rate, amount):
    q, ep, m, tick, rate, amount = D(size), D(entry), D(margin), D(tick), D(rate), D(amount)
    closed = _isolated_long if side == "long" else _isolated_short
    exact = closed(q, ep, m, rate, amount)
    result = one(usdm, position(symbol, side, size, entry, margin=margin))
    assert result.liquidation_price == on_tick(exact, side, tick)
    # the reported tick is on the loss side of the exact boundary, less than one tick away
    assert 0 <= (exact - result.liquidation_price) * (1 if side == "long" else -1) < tick
    # bankruptcy: M + Q(P - EP) = 0 (long) → EP - M/Q; short EP + M/Q
    bankrupt = ep - m / q if side == "long" else ep + m / q
    assert result.bankruptcy_price == on_tick(bankrupt, side, tick)


def test_boundary_exactly_on_a_tick_is_reported_itself(usdm):
    """1 BTC long at 50,000 with 10,160: (50,000 - 10,160) / 0.996 = 40,000 exactly."""
    p = position(size="1", entry="50000", margin="10160")
    assert _isolated_long(D(1), D(50000), D(10160), D("0.004"), D(0)) == 40000
    assert one(usdm, p).liquidation_price == D("40000.0")
    at, safer = one(usdm, p, "40000"), one(usdm, p, "40000.1")
    assert at.triggered and at.figure("margin_ratio") == 1  # ratio ≥ 100 % holds at equality
    assert not safer.triggered


def test_bracket_is_chosen_at_the_liquidation_price(usdm):
    """carol: bracket 2 at the mark (52,000 notional), bracket 1 at the liquidation price."""
    p = position(size="1", entry="52000", margin="5200")
    result = one(usdm, p)
    assert result.tiers["bracket"]["bracket"] == 2  # at the mark
    with_bracket_1 = on_tick(_isolated_long(D(1), D(52000), D(5200), D("0.004"), D(0)), "long")
    with_bracket_2 = on_tick(_isolated_long(D(1), D(52000), D(5200), D("0.005"), D(50)), "long")
    assert result.liquidation_price == with_bracket_1 == D("46987.9")
    assert with_bracket_2 != with_bracket_1
    assert one(usdm, p, result.liquidation_price).tiers["bracket"]["bracket"] == 1
    quote = quote_prices(
        usdm, symbol="BTCUSDT", side="long", size=D(1), entry_price=D(52000), margin=D(5200)
    )
    assert quote.liquidation_price == D("46987.9")
    assert quote.tier is not None and quote.tier["bracket"] == 1


def test_bracket_switch_upwards_for_a_short(usdm):
    """9.5 BTC short at 60,000 (570,000: bracket 2) liquidates above 600,000 notional: bracket 3."""
    p = position(side="short", size="9.5", entry="60000", margin="60000")
    result = one(usdm, p)
    exact = _isolated_short(D("9.5"), D(60000), D(60000), D("0.0065"), D(950))
    assert result.liquidation_price == on_tick(exact, "short")
    assert result.liquidation_price * D("9.5") >= 600_000
    assert one(usdm, p, result.liquidation_price).tiers["bracket"]["bracket"] == 3


@pytest.mark.parametrize("margin", ["60000", "75000"])
def test_over_collateralised_long_has_no_liquidation_price(usdm, margin):
    result = one(usdm, position(size="1", entry="60000", margin=margin, leverage="1"))
    assert result.liquidation_price is None
    assert result.bankruptcy_price is None
    assert result.distance_to_liquidation is None
    assert not result.triggered


@pytest.mark.parametrize(
    ("long_size", "short_size", "liquidation", "bankruptcy"),
    [
        # Net long 0.5: 5,000 + 0.5 (P - 100,000) = (0.005 P - 50) + 0.004 · 0.5 P at the boundary
        # (the short's 45,588 notional is bracket 1): P = 44,950 / 0.493 = 91,176.47…; bankrupt
        # at 5,000 + 0.5 (P - 100,000) = 0, P = 90,000.
        ("1", "0.5", D("91176.4"), D("90000.0")),
        # Net short 0.5: rising prices hurt. Both legs in bracket 2 at the boundary:
        # 0.005 · 0.5 P - 50 + 0.005 P - 50 = 5,000 - 0.5 (P - 100,000), P = 55,100 / 0.5075
        # = 108,571.43…, the lowest tick above is 108,571.5; bankrupt at P = 110,000.
        ("0.5", "1", D("108571.5"), D("110000.0")),
    ],
)
def test_hedged_cross_legs_share_the_account_liquidation_price(
    usdm, long_size, short_size, liquidation, bankruptcy
):
    """Hedge mode: the account, not the leg, is liquidated, so both legs report the price at
    which the account's trigger holds, found in the direction of the net exposure."""
    results = evaluate(
        usdm,
        [
            position(side="long", size=long_size, entry="100000", mode="cross", leverage="20"),
            position(side="short", size=short_size, entry="100000", mode="cross", leverage="20"),
        ],
        {"BTCUSDT": "100000"},
        wallet="5000",
    )
    for result in results:
        assert (result.liquidation_price, result.bankruptcy_price) == (liquidation, bankruptcy)
        assert result.distance_to_liquidation is not None
        assert result.distance_to_liquidation > 0


def test_triggered_short_far_above_its_price_still_reports_it(usdm):
    """Regression: a triggered short whose mark is over twice its liquidation price reported None
    (the solver's walk back towards safety gave up when it stepped below tick 1)."""
    p = position(side="short", size="1", entry="60000", margin="100", leverage="100")
    expected = one(usdm, p, "60000")
    for mark in ("150000", "200000", "1000000"):
        result = one(usdm, p, mark)
        assert result.triggered
        assert (
            (result.liquidation_price, result.bankruptcy_price)
            == (expected.liquidation_price, expected.bankruptcy_price)
            == (D("59850.8"), D("60100.0"))
        )


def test_triggered_long_far_below_its_price_still_reports_it(usdm):
    p = position(side="long", size="1", entry="60000", margin="6000")
    expected = one(usdm, p)
    for mark in ("50000", "1000", "0.1"):
        result = one(usdm, p, mark)
        assert result.triggered
        assert result.liquidation_price == expected.liquidation_price
        assert result.bankruptcy_price == expected.bankruptcy_price == D("54000")


# --- an inverse contract ---------------------------------------------------------------------

INVERSE = """\
id: test-inverse
title: Inverse (coin-margined) contract for the solver tests
markets:
  BTCUSD: {kind: inverse, contract_size: 100, tick_size: 0.5, assumption: test contract}
definitions:
  direction: 'if position.side == "long" then 1 else -1'
  notional:
    expr: position.size * market.contract_size / market.mark_price
    unit: BTC
  unrealized_pnl:
    expr: |
      direction * position.size * market.contract_size
        * (1 / position.entry_price - 1 / market.mark_price)
    unit: BTC
  maintenance_margin: {expr: notional * 0.5%, assumption: test rate}
  margin_balance: position.isolated_margin + unrealized_pnl
  margin_ratio:
    expr: 'if margin_balance > 0 then maintenance_margin / margin_balance else 1_000_000'
    assumption: large ratio once the balance is gone
liquidation:
  trigger: margin_ratio >= 100%
"""


@pytest.fixture(scope="module")
def inverse(tmp_path_factory):
    path = tmp_path_factory.mktemp("inverse") / "inverse.yaml"
    path.write_text(textwrap.dedent(INVERSE), encoding="utf-8")
    policy = load_policy(path)
    assert policy.markets["BTCUSD"].kind == "inverse" and not policy.warnings
    return policy


def _inverse_closed_form(
    side: str, q: Decimal, entry: Decimal, margin: Decimal, rate: Decimal
) -> Decimal:
    """Coin margin M, contracts Q of CS = 100 USD.  Long: M + Q·CS(1/EP - 1/P) = rate·Q·CS/P →
    P = Q·CS(1 + rate) / (M + Q·CS/EP).  Short: M - Q·CS(1/EP - 1/P) = rate·Q·CS/P →
    P = Q·CS(1 - rate) / (Q·CS/EP - M)."""
    value = q * 100
    if side == "long":
        return value * (1 + rate) / (margin + value / entry)
    return value * (1 - rate) / (value / entry - margin)


@pytest.mark.parametrize(
    ("side", "size", "entry", "leverage"),
    [
        ("long", "1000", "50000", "10"),
        ("short", "1000", "50000", "10"),
        ("long", "37", "61234.5", "25"),
        ("short", "250", "20000", "4"),
        ("long", "5", "100000", "100"),
    ],
)
def test_inverse_contract_closed_form(inverse, side, size, entry, leverage):
    q, ep, lev = D(size), D(entry), D(leverage)
    p = position("BTCUSD", side, size, entry, leverage=leverage)
    result = one(inverse, p)
    with decimal.localcontext(DECIMAL_CONTEXT):  # the engine derives it at 50 digits
        margin = q * 100 / ep / lev  # margin in coin: notional at entry (coin) / leverage
    assert result.figure("margin_balance") == margin
    exact = _inverse_closed_form(side, q, ep, margin, D("0.005"))
    assert abs(result.liquidation_price - exact) < D("0.5")  # within one tick
    assert result.liquidation_price == on_tick(exact, side, D("0.5"))
    assert (result.liquidation_price < ep) if side == "long" else (result.liquidation_price > ep)
    bankrupt = _inverse_closed_form(side, q, ep, margin, D(0))
    assert result.bankruptcy_price == on_tick(bankrupt, side, D("0.5"))


def test_inverse_exact_tie_with_an_inexact_margin_is_within_one_tick(inverse):
    """250 contracts short at 20,000, 3x: margin 25,000/20,000/3 = 0.41666… BTC is carried at 50
    digits, so at the exact boundary (29,850, itself a tick) the trigger misses by 1e-50 and the
    solver reports the next tick.  Within one tick, as promised; not exact on the grid."""
    result = one(inverse, position("BTCUSD", "short", "250", "20000", leverage="3"))
    with decimal.localcontext(DECIMAL_CONTEXT):
        margin = D(250 * 100) / D(20000) / D(3)
    exact = _inverse_closed_form("short", D(250), D(20000), margin, D("0.005"))
    assert exact.quantize(D("1E-20")) == D(29850)
    assert result.liquidation_price == D("29850.5")
    assert abs(result.liquidation_price - exact) <= D("0.5")
    assert result.bankruptcy_price in (D("30000"), D("30000.5"))  # same tie: exact 30,000


def test_inverse_short_at_one_x_never_liquidates(inverse):
    """A 1x coin-margined short is fully hedged: Q·CS/EP - M = 0, no liquidation price."""
    result = one(inverse, position("BTCUSD", "short", "100", "40000", leverage="1"))
    assert result.liquidation_price is None and result.bankruptcy_price is None


# --- properties on binance-usdm --------------------------------------------------------------

sizes = st.integers(1, 50_000).map(lambda n: D(n) * D("0.001"))  # 0.001 … 50 BTC
entries = st.integers(10_000, 2_000_000).map(lambda n: D(n) * TICK)  # 1,000 … 200,000
leverages = st.integers(1, 125)
sides = st.sampled_from(["long", "short"])
LOSS = {"long": -1, "short": 1}  # direction in which prices hurt


def _at(usdm, side, size, entry, *, margin, mark) -> PositionResult:
    return one(usdm, position(side=side, size=size, entry=entry, margin=margin), mark)


@settings(max_examples=60)
@given(size=sizes, entry=entries, leverage=leverages, side=sides)
def test_liquidation_price_is_on_the_loss_side_of_entry(usdm, size, entry, leverage, side):
    result = one(usdm, position(side=side, size=size, entry=entry, leverage=leverage))
    margin = size * entry / leverage
    if margin > result.figure("maintenance_margin"):  # not already triggered at entry
        assert not result.triggered
        if side == "long":
            assert result.liquidation_price is None or result.liquidation_price < entry
            assert result.liquidation_price is not None or leverage == 1
        else:
            assert result.liquidation_price is not None and result.liquidation_price > entry


@settings(max_examples=40)
@given(size=sizes, entry=entries, leverage=leverages, side=sides)
def test_trigger_holds_at_the_price_and_not_one_tick_safer(usdm, size, entry, leverage, side):
    margin = size * entry / leverage

    def at(mark: Decimal) -> PositionResult:
        return _at(usdm, side, size, entry, margin=margin, mark=mark)

    result = at(entry)
    safe = -LOSS[side] * TICK
    if result.liquidation_price is not None:
        assert at(result.liquidation_price).triggered
        if result.liquidation_price + safe > 0:
            assert not at(result.liquidation_price + safe).triggered
    if result.bankruptcy_price is not None:
        assert at(result.bankruptcy_price).figure("margin_balance") <= 0
        if result.bankruptcy_price + safe > 0:
            assert at(result.bankruptcy_price + safe).figure("margin_balance") > 0


@settings(max_examples=40)
@given(size=sizes, entry=entries, low=leverages, high=leverages, side=sides)
def test_more_leverage_moves_the_price_towards_entry(usdm, *, size, entry, low, high, side):
    low, high = min(low, high), max(low, high)

    def price(leverage: int) -> Decimal | None:
        p = position(side=side, size=size, entry=entry, leverage=leverage)
        return one(usdm, p).liquidation_price

    safer, riskier = price(low), price(high)
    if side == "long":
        assert safer is None or (riskier is not None and riskier >= safer)
    else:
        assert safer is not None and riskier is not None and riskier <= safer


@settings(max_examples=40)
@given(size=sizes, entry=entries, leverage=leverages, extra=st.integers(0, 100_000), side=sides)
def test_more_margin_moves_the_price_away(usdm, *, size, entry, leverage, extra, side):
    margin = size * entry / leverage
    less = _at(usdm, side, size, entry, margin=margin, mark=entry).liquidation_price
    more = _at(usdm, side, size, entry, margin=margin + extra, mark=entry).liquidation_price
    if side == "long":
        assert more is None or (less is not None and more <= less)
    else:
        assert less is not None and more is not None and more >= less


@settings(max_examples=60)
@given(size=sizes, entry=entries, leverage=leverages, side=sides)
def test_bankruptcy_is_beyond_the_liquidation_price(usdm, size, entry, leverage, side):
    result = one(usdm, position(side=side, size=size, entry=entry, leverage=leverage))
    if result.liquidation_price is None:
        assert result.bankruptcy_price is None
        return
    assert result.bankruptcy_price is not None
    if side == "long":
        assert result.bankruptcy_price <= result.liquidation_price
    else:
        assert result.bankruptcy_price >= result.liquidation_price


@settings(max_examples=40)
@given(
    size=sizes,
    entry=entries,
    leverage=leverages,
    side=sides,
    factor=st.sampled_from(["0.001", "0.05", "0.3", "0.9", "1.1", "2.5", "10", "100"]),
)
def test_prices_do_not_depend_on_the_current_mark(usdm, *, size, entry, leverage, side, factor):
    """For an isolated position only the margin, size and entry matter: solving from a mark far
    on either side (triggered or not) gives the same ticks.  (Caught the short walking below 0.)"""
    margin = size * entry / leverage
    at_entry = _at(usdm, side, size, entry, margin=margin, mark=entry)
    mark = max(TICK, on_tick(entry * D(factor), "long"))
    elsewhere = _at(usdm, side, size, entry, margin=margin, mark=mark)
    assert elsewhere.liquidation_price == at_entry.liquidation_price
    assert elsewhere.bankruptcy_price == at_entry.bankruptcy_price
