"""The HTX (Huobi) USDT-margined swap policy: its worked examples, and hand-computed golden values.

Section numbers (§2.x) refer to /work/shared/research/exchanges.md, "Huobi / HTX futures and swaps".
Every expected number below is worked out by hand (closed forms in exact decimals), never read
back from the engine.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.mechanics.accounts import parse_account
from engine.mechanics.evaluate import AccountResult, evaluate_account
from engine.mechanics.examples import run_examples
from engine.policy.load import check_policy, load_policy
from engine.policy.model import Policy

POLICY_PATH = Path(__file__).resolve().parent.parent / "policies" / "huobi-linear-swap.yaml"
TICK = Decimal("0.1")
SYMBOL = "BTC-USDT"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICY_PATH)


def position(side: str, size: int, entry: int, **extra: Any) -> dict[str, Any]:
    return {
        "symbol": SYMBOL,
        "side": side,
        "size": size,
        "entry_price": entry,
        "margin_mode": extra.pop("margin_mode", "isolated"),
        "leverage": extra.pop("leverage", 125),
        **extra,
    }


def evaluate(
    policy: Policy,
    positions: list[dict[str, Any]],
    *,
    mark: str,
    last: str | None = None,
    depth: str = "100000000",
    wallet: str = "0",
) -> AccountResult:
    market = {"mark_price": mark, "last_price": last or mark, "book_depth": depth}
    account = {
        "id": "t",
        "wallet_balance": wallet,
        "positions": positions,
        "market": {SYMBOL: market},
    }
    return evaluate_account(policy, parse_account(account, policy))


def tick(value: Decimal, rounding: str) -> Decimal:
    return (value / TICK).to_integral_value(rounding=rounding) * TICK


# -- the policy file ----------------------------------------------------------------------------


def test_policy_is_valid_and_cites_every_number():
    loaded, diagnostics = check_policy(POLICY_PATH)
    assert loaded is not None
    assert [(d.code, d.message) for d in diagnostics] == []
    assert loaded.id == "huobi-linear-swap"


def test_every_worked_example_passes(policy: Policy):
    results = run_examples(policy)
    assert len(results) >= 5
    failed = [r.as_dict() for r in results if not r.passed]
    assert failed == []


# -- golden values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "size", "entry", "margin"),
    [
        ("long", 1000, 50000, None),
        ("short", 2000, 40000, 1000),
        ("long", 20000, 50000, None),
        ("short", 95000, 60000, 60000),
    ],
)
def test_isolated_liquidation_and_bankruptcy_prices_follow_the_derived_formulas(
    policy: Policy, side: str, size: int, entry: int, margin: int | None
):
    """§2.5 (derived from §2.1 with MMR = AF / leverage, position margin at the current price):
    long LP = (Q·EP - M) / (Q·(1 - MMR)), short LP = (Q·EP + M) / (Q·(1 + MMR)),
    BP = EP ∓ M / Q; AF from the 125x ladder of §2.3. The solver reports the first tick at which
    the condition holds: rounded down for a long, up for a short."""
    q = Decimal(size) * Decimal("0.001")
    m = Decimal(margin) if margin is not None else q * entry / 125
    net = Decimal(size)
    af = Decimal("0.65") if net < 9000 else Decimal("0.80") if net < 90000 else Decimal("0.85")
    mmr = af / 125
    if side == "long":
        lp, bp, rounding = (q * entry - m) / (q * (1 - mmr)), entry - m / q, ROUND_FLOOR
    else:
        lp, bp, rounding = (q * entry + m) / (q * (1 + mmr)), entry + m / q, ROUND_CEILING
    extra = {"isolated_margin": margin} if margin is not None else {}
    result = evaluate(policy, [position(side, size, entry, **extra)], mark=str(entry))
    (found,) = result.positions
    assert found.figure("adjustment_factor") == af
    assert found.liquidation_price == tick(lp, rounding)
    assert found.bankruptcy_price == tick(bp, rounding)


@pytest.mark.parametrize(
    ("contracts", "factor", "tier"),
    [(1, "0.65", 1), (8999, "0.65", 1), (9000, "0.80", 2), (89999, "0.80", 2), (90000, "0.85", 3)],
)
def test_adjustment_factor_ladder_boundaries(
    policy: Policy, contracts: int, factor: str, tier: int
):
    """§2.3: the API's inclusive BTC-USDT 125x ladders 0-8,999 / 9,000-89,999 / 90,000- (AF 0.65,
    0.80, 0.85) are the half-open net-position intervals [0, 9,000), [9,000, 90,000), [90,000, ∞);
    MMR = AF / 125 (§2.1), maintenance margin = AF * position margin (§2.2)."""
    result = evaluate(policy, [position("long", contracts, 50000)], mark="50000")
    (found,) = result.positions
    position_margin = Decimal(contracts) * Decimal("0.001") * 50000 / 125
    assert found.figure("adjustment_factor") == Decimal(factor)
    assert found.tiers["adjustment"]["tier"] == tier
    assert found.figure("maintenance_margin_rate") == Decimal(factor) / 125
    assert found.figure("maintenance_margin") == Decimal(factor) * position_margin


def test_net_position_of_long_and_short_picks_the_tier(policy: Policy):
    """§2.3 (HTX's own example): long 12,000 + short 30,000 conts → net 18,000. At 125x that is
    ladder 1 (AF 0.80); HTX's 12.5 % is for 10x (next test). Locked-margin optimisation (launch
    notice): occupied = 12,000 + 4,800 - min(12,000, 4,800) = 12,000."""
    result = evaluate(
        policy,
        [
            position("short", 30000, 50000, margin_mode="cross"),
            position("long", 12000, 50000, margin_mode="cross"),
        ],
        mark="50000",
        wallet="20000",
    )
    short, long = result.positions
    for found in (short, long):
        assert found.figure("net_contracts") == 18000
        assert found.figure("adjustment_factor") == Decimal("0.80")
        assert found.figure("cross_maintenance_margin") == Decimal("0.80") * 12000
    # Classic cross ratio (§2.1) 20,000 / 9,600 - 1 > 0 and new ratio (§2.2) 0.48 < 1: both safe.
    assert short.figure("margin_ratio") == Decimal("0.48")
    classic = short.figure("classic_margin_ratio")
    assert abs(classic - (Decimal(20000) / 9600 - 1)) < Decimal("1e-20")
    assert not result.triggered


@pytest.mark.parametrize(
    ("mark", "last", "triggered"),
    [
        ("49800", "49900", False),
        ("49900", "49800", False),
        ("49800", "49800", True),
        ("49859.2", "49859.2", True),
        ("49859.3", "49859.3", False),
    ],
)
def test_trigger_needs_both_last_and_mark_price(
    policy: Policy, mark: str, last: str, triggered: bool
):
    """§2.4: liquidation only when the margin ratio breaches at the last price AND the mark price.
    1 BTC long at 50,000, margin 400, AF 0.65: the ratio reaches 100 % below
    49,600 / 0.9948 = 49,859.268... (§2.5), so 49,859.2 breaches and 49,859.3 does not. The classic
    ratio (§2.1) agrees with the new one (§2.2) at every price."""
    result = evaluate(policy, [position("long", 1000, 50000)], mark=mark, last=last)
    (found,) = result.positions
    assert found.triggered is triggered
    for suffix in ("", "_last"):
        new = found.figure("margin_ratio" + suffix)
        classic = found.figure("classic_margin_ratio" + suffix)
        assert (new >= 1) is (classic <= 0)


def test_stepped_liquidation_reduces_to_the_top_of_tier_one_without_fee(policy: Policy):
    """§2.6: tier > 1 → reduce the net position to the upper limit of a lower tier, here
    20,000 - 8,999 = 11,001 conts; §2.7: no charge for partial liquidation. 20 BTC long at 50,000
    (margin 8,000), mark 49,900, depth 137,237,475: slippage 548,949.9 / 137,237,475 / 2 = 0.2 %,
    fill 49,800.2, margin left 8,000 - 11.001 * 199.8 = 5,802.0002; then equity 4,902.1002 >
    0.65 * 8.999 * 399.2, so it stops."""
    result = evaluate(policy, [position("long", 20000, 50000)], mark="49900", depth="137237475")
    (liquidation,) = result.liquidations
    (order,) = liquidation.statement.orders
    assert (order.quantity, order.is_partial) == (Decimal(11001), True)
    assert order.fill_price == order.settlement_price == Decimal("49800.2")
    assert order.fees == ()
    assert order.pnl_at_mark + order.slippage == Decimal("-11.001") * Decimal("199.8")
    assert order.margin_after == Decimal("5802.0002")
    assert not liquidation.statement.fully_liquidated
    (left,) = result.after.positions
    assert (left["size"], left["isolated_margin"]) == (8999, Decimal("5802.0002"))


def test_full_liquidation_is_taken_over_at_bankruptcy_and_profit_goes_to_insurance_fund(
    policy: Policy,
):
    """§2.6 tier 1: liquidate all at once; §2.7: "Any profit generated from the liquidation process
    is added to the corresponding insurance fund". 1 BTC long at 50,000, margin 400, mark = last
    = 49,859.2 (first liquidation tick): taken over at BP 50,000 - 400 = 49,600, the trader keeps
    nothing, the fund sells at 49,859.2 * (1 - 49,859.2 / 10^8 / 2) and keeps fill - 49,600 (the fill rounded down to the 0.1 tick)."""
    result = evaluate(policy, [position("long", 1000, 50000)], mark="49859.2")
    (liquidation,) = result.liquidations
    (order,) = liquidation.statement.orders
    raw = Decimal("49859.2") * (1 - Decimal("49859.2") / 100_000_000 / 2)  # 49,846.7703…
    fill = raw.quantize(Decimal("0.1"), rounding="ROUND_FLOOR")  # fills round to the tick
    assert order.settlement_price == order.bankruptcy_price == 49600
    assert order.fill_price == fill
    assert liquidation.takeover_result == fill - 49600
    assert liquidation.statement.shortfall == 0
    assert liquidation.statement.final_balance == 0
    assert liquidation.statement.fees_collected == 0


def test_htx_10x_example_net_18000_contracts_gives_twelve_and_a_half_percent(policy: Policy):
    """§2.3: "When using 10x leverage, Tom holds a long position of 12,000 conts BTC/USDT swaps
    and a short position of 30,000 conts ..., then the net positions shall be 18,000 conts, and
    the corresponding adjustment factor is 12.5%." The policy's assumed rows (10 × 1.25 % in
    [4,000, 40,000)) must give exactly HTX's number, and MMR = AF / leverage = 1.25 % (§2.1)."""
    result = evaluate(
        policy,
        [
            position("short", 30000, 50000, margin_mode="cross", leverage=10),
            position("long", 12000, 50000, margin_mode="cross", leverage=10),
        ],
        mark="50000",
        wallet="200000",
    )
    for found in result.positions:
        assert found.figure("adjustment_factor") == Decimal("0.125")
        assert found.figure("maintenance_margin_rate") == Decimal("0.0125")


@pytest.mark.parametrize(
    ("leverage", "contracts", "factor", "ladder"),
    [
        # published: the official 125x isolated ladder and the official 1x cross ladder
        (125, 8999, "0.65", "125x"),
        (1, 3999, "0.005", "1x"),
        (1, 4000, "0.01", "1x"),
        (1, 120000, "0.025", "1x"),
        # assumed: leverage × 0.75 / 1.25 / 1.5 / 2 / 2.5 % on the 1x ladder's bounds
        (10, 3999, "0.075", "assumed"),
        (10, 4000, "0.125", "assumed"),
        (20, 3000, "0.15", "assumed"),  # HTX's 20x example (futures): 15 %
        (20, 5000, "0.25", "assumed"),  # HTX's 20x example (futures): 25 %
        (100, 39999, "1.25", "assumed"),
        (5, 40000, "0.075", "assumed"),
        (3, 80000, "0.06", "assumed"),
        (2, 120000, "0.05", "assumed"),
        (124, 1000, "0.93", "assumed"),
    ],
)
def test_each_leverage_uses_its_published_ladder_or_the_assumed_rates(
    policy: Policy, leverage: int, contracts: int, factor: str, ladder: str
):
    """§2.3: only the 125x (isolated, 2020) and 1x (cross, 2021) BTC-USDT ladders are published
    (API documentation examples); every other leverage uses the file's marked assumption, factor =
    leverage × rate with rates 0.75 / 1.25 / 1.5 / 2 / 2.5 % at net-position bounds 4,000 /
    40,000 / 80,000 / 120,000. A leverage without a published ladder no longer scales the 125x
    ladder (0.65 × 10 / 125 = 0.052 at 10x, which HTX's 10x example contradicts)."""
    result = evaluate(policy, [position("long", contracts, 50000, leverage=leverage)], mark="50000")
    (found,) = result.positions
    assert found.figure("ladder") == ladder
    assert found.figure("adjustment_factor") == Decimal(factor)
    assert found.figure("maintenance_margin_rate") == Decimal(factor) / leverage


def test_issue_command_ten_x_liquidation_price_follows_the_assumed_rate(policy: Policy):
    """The issue's command (`liq-price huobi-linear-swap --leverage 10`, 1,000 conts long at
    50,000): margin 5,000, AF 10 × 0.75 % = 0.075, so MMR 0.75 % and (§2.5)
    LP = (Q·EP − M) / (Q·(1 − MMR)) = 45,000 / 0.9925 = 45,340.05… → tick 45,340.0 (a long rounds
    down); BP = 50,000 − 5,000 = 45,000. It used to answer 45,235.2 (MMR 0.52 %)."""
    result = evaluate(policy, [position("long", 1000, 50000, leverage=10)], mark="50000")
    (found,) = result.positions
    assert found.liquidation_price == Decimal("45340.0")
    assert found.bankruptcy_price == Decimal("45000")


def test_waterfall_is_insurance_fund_then_adl_in_place_of_the_market_sale(policy: Policy):
    """§2.9: "When the ADL mechanism is adopted, the clawback mechanism will not be used"; HTX
    trades the liquidation orders with ranked counterparties "instead of matching these orders
    with market orders"; the shared USDT fund (§2.8) pays first."""
    waterfall = policy.waterfall
    assert waterfall.order == ("insurance_fund", "adl", "write_off")
    assert waterfall.pool == "shared"
    assert waterfall.adl_mode == "replace_market_sale"
    assert waterfall.adl_price is None  # the bankrupt order's bankruptcy price
    assert waterfall.adl_ranking is not None


def test_adl_ranking_is_pnl_ratio_over_the_classic_margin_ratio(policy: Policy):
    """§2.9 ranking, isolated gaining position: Leveraged PnL = PnL ratio / margin ratio. 1 BTC
    short at 50,000, 125x, margin 400, mark = last = 49,000: UPnL 1,000, PnL ratio 1,000 / 400 =
    2.5; position margin 49,000 / 125 = 392, classic ratio 1,400 / 392 − 0.65 = 2.921428…;
    ranking 2.5 / 2.921428… = 0.855745…; a losing one (mark 50,100, UPnL −100, ratio −0.25;
    classic 300 / 400.8 − 0.65 = 0.098502…) ranks −0.25 × 0.098502… < 0."""
    frame_result = evaluate(policy, [position("short", 1000, 50000)], mark="49000")
    (found,) = frame_result.positions
    classic = Decimal(1400) / Decimal(392) - Decimal("0.65")
    assert found.figure("pnl_ratio") == Decimal("2.5")
    assert abs(found.figure("adl_ranking") - Decimal("2.5") / classic) < Decimal("1e-25")
    losing = evaluate(policy, [position("short", 1000, 50000)], mark="50100").positions[0]
    classic_losing = Decimal(300) / Decimal("400.8") - Decimal("0.65")
    assert abs(losing.figure("adl_ranking") - Decimal("-0.25") * classic_losing) < Decimal("1e-25")


def test_self_trade_legs_of_a_hedged_cross_account_trade_at_the_mark(policy: Policy):
    """§2.6 step (2): self-trade long against short of the same contract. Cross, short 30,000 +
    long 12,000 at 50,000, wallet 20,000, mark 50,800 (past the 50,571.7 liquidation price): both
    12,000-contract legs should trade at the mark, without slippage."""
    result = evaluate(
        policy,
        [
            position("short", 30000, 50000, margin_mode="cross"),
            position("long", 12000, 50000, margin_mode="cross"),
        ],
        mark="50800",
        wallet="20000",
    )
    (liquidation,) = result.liquidations
    legs = liquidation.statement.orders[:2]
    assert [o.quantity for o in legs] == [12000, 12000]
    assert [o.fill_price for o in legs] == [50800, 50800]


def test_self_trade_that_flattens_the_account_returns_the_equity(policy: Policy):
    """§2.6: (2) self-trade long against short, (3) liquidate only if the margin ratio still
    breaches. Cross long 12,000 + short 12,000 at 50,000, wallet 100, mark 50,000: net 0, AF
    0.65, occupied margin 4,800 + 4,800 - 4,800 = 4,800, maintenance 3,120 > 100 -> triggered.
    The self-trade closes both legs at 50,000 with zero PnL: nothing is left to liquidate and
    the wallet keeps its 100."""
    result = evaluate(
        policy,
        [
            position("long", 12000, 50000, margin_mode="cross"),
            position("short", 12000, 50000, margin_mode="cross"),
        ],
        mark="50000",
        wallet="100",
    )
    assert result.triggered
    assert result.after.positions == ()
    assert result.after.wallet_balance == 100
