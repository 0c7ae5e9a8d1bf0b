"""Hand-computed simulations of the stages ADL does not cover: the cross wallet, the insurance
fund paying a money claim, the trader's debt and its waiver, write-off, and periodic charges.

Every case starts from the toy policy (tests/simulation/policies/toy-linear.yaml: 1 unit per
contract, tick 1, maintenance 5 % of the notional, a long of q contracts fills at mark − 10 q)
with the variant's own settlement and waterfall. Each number is derived in the docstring; the
simulator's conservation check runs at every step as well.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

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


def variant(folder: Path, name: str, body: str) -> Policy:
    """The toy policy with `body` merged in, extending a copy beside it (parents stay in the
    child's folder, E431)."""
    (folder / TOY.name).write_text(TOY.read_text(encoding="utf-8"), encoding="utf-8")
    path = folder / f"{name}.yaml"
    path.write_text(f"id: {name}\ntitle: {name}\nextends: {TOY.name}\n{body}", encoding="utf-8")
    return load_policy(path)


def path_of(marks: tuple[str, ...], fund: str) -> Scenario:
    points = tuple(PricePoint(60 * t, D(m), D(m), D(m)) for t, m in enumerate(marks))
    return Scenario(
        "oracle", "oracle", "hand-derived", 60, {"TOY/USD": InstrumentPath("TOY/USD", points)},
        {"shared": D(fund)},
    )  # fmt: skip


def isolated_long(wallet: str, margin: str, quantity: str = "10") -> BookAccount:
    position = BookPosition("TOY/USD", "long", D(quantity), D(1000), "isolated", D(10), D(margin))
    return BookAccount("b", D(wallet), (position,))


# A market sale settled at its own fill (no takeover): the loss past the margin is a money claim
# that goes through every stage of the waterfall.
SOLD_AT_THE_FILL = """\
liquidation:
  fill:
    price: 'if position.side == "long" then market.mark_price - 10 * order.quantity else market.mark_price + 10 * order.quantity'
    settlement_price: order.fill_price
"""


def stages(tmp_path: Path, waive_below: str) -> Policy:
    return variant(
        tmp_path,
        "toy-stages",
        SOLD_AT_THE_FILL + "waterfall:\n"
        "  order: [cross_wallet, insurance_fund, debt, write_off]\n"
        f"  debt: {{waive_below: {waive_below}}}\n",
    )


def crash(policy: Policy, wallet: str, fund: str) -> SimulationResult:
    """B: long 10 at 1,000 with 1,000 isolated margin and `wallet` in its cross wallet; the mark
    gaps to 880, where B's isolated balance is 1,000 − 1,200 < 0: liquidated, all 10 sold at
    880 − 100 = 780. Loss 10 × (1,000 − 780) = 2,200 against a margin of 1,000: a claim of
    1,200."""
    book = Book((isolated_long(wallet, "1000"),))
    return simulate(policy, book, path_of(("1000", "880"), fund))


def test_the_claim_goes_cross_wallet_then_fund_then_a_waived_debt_to_write_off(tmp_path):
    """Claim 1,200: the cross wallet pays its 300, the fund its 500, 400 is left for `debt`;
    `waive_below: 400` waives debts *at or below* 400, so the next stage (write-off) takes it and
    B owes nothing."""
    result = crash(stages(tmp_path, "400"), wallet="300", fund="500")
    [event] = result.events
    assert event.liquidation.statement.shortfall == 1200
    assert [(a.stage, a.amount) for a in event.allocations] == [
        ("cross_wallet", 300),
        ("insurance_fund", 500),
        ("write_off", 400),
    ]
    assert result.write_offs == 400 and result.debt_outstanding == 0
    assert result.pools["shared"]["end"] == 0
    fate = result.fates["b"]
    assert (fate.start_equity, fate.end_equity, fate.debt) == (1300, 0, 0)
    assert result.conservation_error == 0


def test_a_debt_above_the_waiver_is_owed_by_the_trader(tmp_path):
    """The same crash with `waive_below: 399.99`: the 400 left is above it, so B's wallet goes
    to −400 and B owes 400; nothing is written off."""
    result = crash(stages(tmp_path, "399.99"), wallet="300", fund="500")
    [event] = result.events
    assert [(a.stage, a.amount) for a in event.allocations] == [
        ("cross_wallet", 300),
        ("insurance_fund", 500),
        ("debt", 400),
    ]
    assert result.write_offs == 0 and result.debt_outstanding == 400
    assert result.fates["b"].debt == 400 and result.fates["b"].end_equity == -400
    assert result.conservation_error == 0


def test_a_cross_wallet_that_covers_the_claim_leaves_the_fund_untouched(tmp_path):
    """Cross wallet 2,000 pays the whole 1,200 and keeps 800; the fund keeps its 500."""
    result = crash(stages(tmp_path, "0"), wallet="2000", fund="500")
    [event] = result.events
    assert [(a.stage, a.amount) for a in event.allocations] == [("cross_wallet", 1200)]
    assert result.pools["shared"]["end"] == 500 and result.write_offs == 0
    assert result.fates["b"].end_equity == 800
    assert result.conservation_error == 0


def test_a_periodic_charge_drains_an_isolated_margin_into_liquidation(tmp_path):
    """Interest of 30 per minute on B's one contract (long at 1,000, isolated margin 100), the
    mark flat at 1,000. Maintenance is 5 % of 1,000 = 50. Charges fall at t = 60, 120 (not at 0):
    margin 70, then 40 < 50, so B is liquidated at t = 120, in the step the charge lands, and
    no later (t = 180 would find it at 10). Settled at its bankruptcy price 960 (40 + P − 1,000 =
    0), the fund takes the contract over and sells it at 1,000 − 10 = 990: a gain of 30 for the
    fund. Charges collected: 60, to the exchange."""
    policy = variant(
        tmp_path,
        "toy-interest",
        "charges:\n"
        "  - {name: interest, at: interval, every_seconds: 60, scope: position,"
        " amount: '30', to: exchange}\n",
    )
    book = Book((isolated_long("0", "100", quantity="1"),))
    result = simulate(policy, book, path_of(("1000", "1000", "1000", "1000"), "0"))
    [event] = result.events
    assert event.time == 120
    [takeover] = event.takeovers
    assert (takeover.settlement_price, takeover.fund_price, takeover.fund_result) == (960, 990, 30)
    assert result.charges == {"interest": D(60)}
    assert result.pools["shared"]["end"] == 30
    assert result.fates["b"].end_equity == 0 and result.fates["b"].first_liquidation_time == 120
    assert result.conservation_error == 0


def counterparty(account_id: str, quantity: str) -> BookAccount:
    """A cross short at 1,000 with a 10,000 wallet: +120 per contract at a mark of 880."""
    position = BookPosition("TOY/USD", "short", D(quantity), D(1000), "cross", D(10))
    return BookAccount(account_id, D(10_000), (position,))


def test_a_clawback_is_capped_and_the_rest_written_off(tmp_path):
    """The crash's claim of 1,200 with an empty fund goes to the clawback at the end. Profits
    over the period (equity change from t = 0, when the mark was 1,000): C1 short 10 at 1,000
    gained 10 × 120 = 1,200, C2 short 5 gained 600, total 1,800. The rate would be 1,200 / 1,800
    = 2/3, capped at 50 %: C1 pays 600, C2 (the last payer) 300, collected 900 and the other
    300 written off. B's equity fell: B pays nothing."""
    policy = variant(
        tmp_path,
        "toy-clawback",
        SOLD_AT_THE_FILL + "waterfall:\n"
        "  order: [insurance_fund, clawback, write_off]\n"
        "  clawback: {cap: 0.5, step: 0.01}\n",
    )
    book = Book((isolated_long("0", "1000"), counterparty("c1", "10"), counterparty("c2", "5")))
    result = simulate(policy, book, path_of(("1000", "880"), "0"))
    [clawback] = result.clawbacks
    assert (clawback.uncovered, clawback.total_profit, clawback.rate) == (1200, 1800, D("0.5"))
    assert (clawback.collected, clawback.written_off, clawback.payers) == (900, 300, 2)
    assert result.fates["c1"].clawback_paid == 600 and result.fates["c2"].clawback_paid == 300
    assert result.fates["b"].clawback_paid == 0
    assert result.write_offs == 300
    assert result.conservation_error == 0


def test_after_market_sale_adl_rounds_contracts_up_and_takes_exactly_the_claim(tmp_path):
    """`after_market_sale`, fund 1,070: it takes over B's 10 (settled at 900) and sells them at
    880 − 100 = 780, a loss of 1,200 of which it bears its 1,070; 130 goes to ADL. C1 (short 10
    at 1,000) gives up per contract its PnL at the mark (880) less at the ADL price (900): 20.
    130 / 20 = 6.5 contracts, rounded up to the step: 7 closed, and exactly 130 taken."""
    policy = variant(
        tmp_path,
        "toy-after-round",
        "waterfall:\n  adl: {ranking: unrealized_pnl, mode: after_market_sale}\n",
    )
    book = Book((isolated_long("0", "1000"), counterparty("c1", "10")))
    result = simulate(policy, book, path_of(("1000", "880"), "1070"))
    fills = [(d.account_id, d.quantity, d.haircut, d.kind) for d in result.deleverages]
    assert fills == [("c1", 7, 130, "after_sale")]
    assert result.write_offs == 0 and result.pools["shared"]["end"] == 0
    assert result.conservation_error == 0


def test_a_leak_of_one_cent_is_refused(monkeypatch):
    """A mechanic that pays the exchange 0.01 out of nowhere at every charge step: the
    simulator must refuse to report (ConservationError, an internal error, not a user one)."""
    from engine.errors import ConservationError, EngineError
    from engine.simulation import simulate as simulate_module

    original = simulate_module._Simulation.apply_charges

    def leaky(self, time, funding):  # type: ignore[no-untyped-def]
        original(self, time, funding)
        self.ledger.fee_revenue += D("0.01")

    monkeypatch.setattr(simulate_module._Simulation, "apply_charges", leaky)
    book = Book((counterparty("c1", "1"),))
    with pytest.raises(ConservationError) as raised:
        simulate(load_policy(TOY), book, path_of(("1000", "990"), "0"))
    assert not isinstance(raised.value, EngineError)
    assert "0.01" in str(raised.value)
