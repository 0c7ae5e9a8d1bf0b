"""The loss waterfall: who takes a bankrupt order's contracts, and who pays a loss past bankruptcy.

A liquidation statement settles the trader (a bankrupt one at the bankruptcy price) and credits
the **shortfall** the margin could not cover, so the trader ends at zero.  Two things are left:

- **contracts** of takeover orders (settled away from their fill): the insurance fund takes them
  over and sells them into the market.  Under `adl.mode: replace_market_sale` the fund takes over
  only the contracts whose market sale it can afford; ranked counterparties take the rest at the
  ADL price instead of a sale, and only when none is left does the fund sell the rest, its loss
  becoming a claim for the stages after `adl`.  Under `after_market_sale` (and without ADL) the
  fund takes everything and what it cannot bear becomes a claim.
- **money claims** (the shortfall; takeover losses passed on): the policy's stages pay them in
  order, exactly, from the cross wallet, the insurance fund, ADL counterparties, a clawback
  receivable, the trader's debt, or the exchange.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from engine.mechanics.liquidate import Liquidation
from engine.mechanics.state import AccountState, Evaluator
from engine.mechanics.statement import Order
from engine.mechanics.takeover import Sale, largest_quantity
from engine.numbers import ZERO, format_decimal
from engine.simulation.adl import Counterparties, Deleverage
from engine.simulation.ledger import Ledger

__all__ = ["Allocation", "Deleverage", "Exhaustion", "Settlement", "Takeover", "Waterfall"]


def after(order: tuple[str, ...], stage: str) -> tuple[str, ...]:
    """The stages after `stage` (all of them when the policy has no such stage)."""
    return order[order.index(stage) + 1 :] if stage in order else order


def _show(value: Decimal | None) -> str | None:
    return format_decimal(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class Allocation:
    stage: str
    amount: Decimal
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "amount": format_decimal(self.amount), "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Takeover:
    """Where one takeover order's contracts went: the fund, ADL counterparties, the market."""

    order: int
    symbol: str
    side: str
    quantity: Decimal
    settlement_price: Decimal  # where the bankrupt trader was settled
    fund_quantity: Decimal  # taken over and sold into the market by the insurance fund
    fund_price: Decimal | None
    fund_result: Decimal  # what the fund made (negative: lost) on them
    adl_quantity: Decimal  # closed against counterparties instead of a sale
    adl_price: Decimal | None
    adl_result: Decimal  # to the fund: the ADL price against the settlement price (usually 0)
    market_quantity: Decimal  # sold after ADL ran out of counterparties
    market_price: Decimal | None
    market_result: Decimal  # that sale's result; a loss is passed on to the stages after ADL
    passed_on: Decimal  # loss the fund did not bear, handed to the later stages as a claim

    @property
    def result(self) -> Decimal:
        return self.fund_result + self.adl_result + self.market_result

    def as_dict(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "symbol": self.symbol,
            "side": self.side,
            "quantity": format_decimal(self.quantity),
            "settlement_price": format_decimal(self.settlement_price),
            "insurance_fund": {
                "quantity": format_decimal(self.fund_quantity),
                "price": _show(self.fund_price),
                "result": format_decimal(self.fund_result),
            },
            "adl": {
                "quantity": format_decimal(self.adl_quantity),
                "price": _show(self.adl_price),
                "result": format_decimal(self.adl_result),
            },
            "market_after_adl": {
                "quantity": format_decimal(self.market_quantity),
                "price": _show(self.market_price),
                "result": format_decimal(self.market_result),
            },
            "result": format_decimal(self.result),
            "passed_on": format_decimal(self.passed_on),
        }


@dataclass(frozen=True, slots=True)
class Exhaustion:
    """ADL found no counterparty left: contracts sold into the market, or a claim passed on."""

    time: int
    account_id: str  # the bankrupt account
    symbol: str
    contracts: Decimal  # sold into the market after ADL ran out (0 for a money claim)
    amount: Decimal  # the loss handed to the stages after ADL

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "account": self.account_id,
            "symbol": self.symbol,
            "contracts": format_decimal(self.contracts),
            "amount": format_decimal(self.amount),
        }


@dataclass(frozen=True, slots=True)
class Settlement:
    """What the waterfall did with one liquidation."""

    liquidation: Liquidation  # takeover results replaced by what the fund actually made
    allocations: tuple[Allocation, ...]
    takeovers: tuple[Takeover, ...]


class Waterfall:
    """Runs the policy's stages against the simulation's accounts and ledger."""

    def __init__(
        self,
        evaluator: Evaluator,
        ledger: Ledger,
        states: Mapping[str, AccountState],
        pool_of: Callable[[str], str],
        touched: Callable[[str], None],
    ) -> None:
        self.evaluator = evaluator
        self.policy = evaluator.policy
        self.spec = evaluator.policy.waterfall
        self.ledger = ledger
        self.states = states
        self.pool_of = pool_of
        self.counterparties = Counterparties(evaluator, ledger, states, touched)
        self.exhaustions: list[Exhaustion] = []
        order = self.spec.order
        self.replace_sale = "adl" in order and self.spec.adl_mode == "replace_market_sale"
        # Under replace_market_sale the fund takes over only if it comes before ADL.
        self.fund_first = (
            "insurance_fund" in order
            and "adl" in order
            and order.index("insurance_fund") < order.index("adl")
        )
        # Takeover losses the fund cannot bear go to the stages after it (after ADL when the
        # fund sold what ADL could not place).
        self.after_fund = after(order, "insurance_fund")
        self.after_adl = after(order, "adl")

    @property
    def deleverages(self) -> list[Deleverage]:
        return self.counterparties.deleverages

    def new_step(self, time: int = 0) -> None:
        self.counterparties.new_step(time)

    # -- one liquidation ---------------------------------------------------------------------
    def settle(self, time: int, state: AccountState, liquidation: Liquidation) -> Settlement:
        """Book the liquidation's money, place its contracts, cover its claims."""
        statement = liquidation.statement
        ledger = self.ledger
        symbol = statement.orders[0].symbol if statement.orders else ""
        pool = self.pool_of(symbol)
        ledger.add_flow(
            "liquidated_margin",
            statement.starting_margin - statement.final_balance - statement.remaining_margin,
        )
        ledger.add_flow("traders_to_counterparties", -statement.shortfall)
        ledger.add_flow("shortfall", statement.shortfall)
        for order in statement.orders:
            realized = order.pnl_at_mark + order.slippage
            ledger.market -= realized
            ledger.add_flow("traders_to_counterparties", -realized)
            for _name, kind, _charged, collected, to in order.fees:
                if to == "exchange":
                    ledger.fee_revenue += collected
                else:
                    ledger.insurance_funds[self.pool_of(order.symbol)] += collected
                ledger.add_flow(f"fees_{kind}", collected)
        ledger.insurance_funds[pool] += statement.surplus_to_insurance_fund
        ledger.add_flow("insurance_fund_surplus", statement.surplus_to_insurance_fund)
        sales = {sale.order: sale for sale in liquidation.sales}
        takeovers: list[Takeover] = []
        orders: list[Order] = []
        beyond_fund = beyond_adl = ZERO  # takeover losses passed on, by who could not bear them
        for order in statement.orders:
            sale = sales.get(order.number)
            if sale is None or not sale.takeover:
                beyond_fund += self._book_takeover(order.symbol, order.takeover_result)
                orders.append(order)
                continue
            takeover = self._take_over(time, state.id, order, sale)
            if takeover.adl_price is None:
                beyond_fund += takeover.passed_on
            else:
                beyond_adl += takeover.passed_on
            takeovers.append(takeover)
            orders.append(replace(order, takeover_result=takeover.result))
        allocations: list[Allocation] = []
        if statement.shortfall > 0:
            allocations += self.cover(
                time, state, liquidation, statement.shortfall, pool, self.spec.order
            )
        for claim, stages in ((beyond_fund, self.after_fund), (beyond_adl, self.after_adl)):
            if claim > 0:
                allocations += self.cover(
                    time, state, liquidation, claim, pool, stages, "takeover loss"
                )
        settled = replace(
            liquidation,
            statement=replace(statement, orders=tuple(orders)),
            takeover_result=sum((o.takeover_result for o in orders), ZERO),
            sales=(),  # priced on this step's market: done with, and not kept in the results
        )
        return Settlement(settled, tuple(allocations), tuple(takeovers))

    def _book_takeover(self, symbol: str, result: Decimal) -> Decimal:
        """The fund books a takeover result; returns the loss it could not bear (0 if none)."""
        if result == 0:
            return ZERO
        ledger = self.ledger
        pool = self.pool_of(symbol)
        ledger.market -= result
        ledger.add_flow("insurance_fund_takeover", result)
        if result > 0:
            ledger.insurance_funds[pool] += result
            ledger.add_flow("insurance_fund_takeover_gain", result)
            return ZERO
        borne = min(-result, max(ZERO, ledger.insurance_funds[pool]))
        ledger.insurance_funds[pool] -= borne
        ledger.add_flow("insurance_fund_takeover_loss", borne)
        if borne < -result:
            ledger.add_flow("takeover_loss_passed_on", -result - borne)
        return -result - borne

    def _take_over(self, time: int, account_id: str, order: Order, sale: Sale) -> Takeover:
        """Place a takeover order's contracts: the fund, then (replace mode) ADL, then the market."""
        pool = self.pool_of(sale.symbol)
        result = order.takeover_result
        quantity = sale.quantity
        capacity = max(ZERO, self.ledger.insurance_funds[pool]) if self.fund_first else ZERO
        if not self.replace_sale or result >= 0 or -result <= capacity:
            passed_on = self._book_takeover(sale.symbol, result)
            return Takeover(
                order.number, sale.symbol, sale.side, quantity, sale.settlement_price,
                quantity, sale.fill_price, result,
                ZERO, None, ZERO, ZERO, None, ZERO, passed_on,
            )  # fmt: skip
        assert sale.adl_price is not None  # replace mode: the waterfall has ADL

        def affordable(part: Decimal) -> bool:
            return -sale.result(part, sale.fill(part)) <= capacity

        fund_quantity = largest_quantity(quantity, sale.grid, affordable)
        fund_price = sale.fill(fund_quantity) if fund_quantity else None
        fund_result = sale.result(fund_quantity, fund_price) if fund_price is not None else ZERO
        passed_on = self._book_takeover(sale.symbol, fund_result)
        rest = quantity - fund_quantity
        adl_quantity = self.counterparties.close(
            time, account_id, sale.symbol, sale.side, rest, sale.adl_price
        )
        adl_result = sale.result(adl_quantity, sale.adl_price)
        passed_on += self._book_takeover(sale.symbol, adl_result)
        market_quantity = rest - adl_quantity
        market_price: Decimal | None = None
        market_result = ZERO
        if market_quantity:  # no counterparty left: the fund sells the rest after all
            market_price = sale.fill(market_quantity)
            market_result = sale.result(market_quantity, market_price)
            self.ledger.market -= market_result
            self.ledger.add_flow("insurance_fund_takeover", market_result)
            if market_result > 0:
                self.ledger.insurance_funds[pool] += market_result
                self.ledger.add_flow("insurance_fund_takeover_gain", market_result)
            else:
                passed_on += -market_result
                self.ledger.add_flow("takeover_loss_passed_on", -market_result)
            self.exhaustions.append(
                Exhaustion(
                    time, account_id, sale.symbol, market_quantity, max(ZERO, -market_result)
                )
            )
        return Takeover(
            order.number, sale.symbol, sale.side, quantity, sale.settlement_price,
            fund_quantity, fund_price, fund_result,
            adl_quantity, sale.adl_price, adl_result,
            market_quantity, market_price, market_result, passed_on,
        )  # fmt: skip

    # -- money claims ------------------------------------------------------------------------
    def cover(
        self,
        time: int,
        state: AccountState,
        liquidation: Liquidation,
        claim: Decimal,
        pool: str,
        stages: tuple[str, ...],
        detail: str = "",
    ) -> list[Allocation]:
        """Pay `claim` through `stages` in order; the last stage (debt or write-off) takes the rest."""
        self.ledger.add_flow("claims", claim)
        allocations: list[Allocation] = []
        remaining = claim
        for stage in stages:
            if remaining <= 0:
                break
            paid = self.stage(stage, time, state, liquidation, remaining, pool)
            if paid > 0:
                allocations.append(Allocation(stage, paid, detail))
                self.ledger.add_flow(stage, paid)
                remaining -= paid
            if stage == "adl" and remaining > 0:
                symbol = self._bankrupt_order(liquidation).symbol
                self.exhaustions.append(Exhaustion(time, state.id, symbol, ZERO, remaining))
        if remaining > 0:  # schema and loader guarantee a final debt/write_off stage
            raise AssertionError(f"waterfall left {remaining} uncovered")
        return allocations

    @staticmethod
    def _bankrupt_order(liquidation: Liquidation) -> Order:
        orders = liquidation.statement.orders
        return next((o for o in reversed(orders) if o.kind == "liquidation"), orders[-1])

    def stage(
        self,
        stage: str,
        time: int,
        state: AccountState,
        liquidation: Liquidation,
        remaining: Decimal,
        pool: str,
    ) -> Decimal:
        ledger = self.ledger
        if stage == "cross_wallet":
            if liquidation.statement.unit == "cross":
                return ZERO
            paid = min(remaining, max(ZERO, state.wallet_balance))
            state.wallet_balance -= paid
            return paid
        if stage == "insurance_fund":
            paid = min(remaining, max(ZERO, ledger.insurance_funds[pool]))
            ledger.insurance_funds[pool] -= paid
            return paid
        if stage == "adl":
            return self.deleverage(time, state.id, liquidation, remaining)
        if stage == "clawback":
            ledger.clawback_receivable -= remaining
            return remaining
        if stage == "debt":
            waive = self.spec.waive_below
            if waive is not None and remaining <= waive:
                return ZERO  # waived: the write-off stage after it takes it
            state.wallet_balance -= remaining
            state.debt += remaining
            return remaining
        if stage == "write_off":
            ledger.exchange -= remaining
            return remaining
        raise AssertionError(f"unknown waterfall stage {stage}")

    def deleverage(
        self, time: int, account_id: str, liquidation: Liquidation, remaining: Decimal
    ) -> Decimal:
        """The `adl` stage for a money claim: a residual from counterparties' profit
        (`replace_market_sale`), or profit given up after the fund's sale (`after_market_sale`)."""
        orders = liquidation.statement.orders
        if not orders or self.spec.adl_ranking is None:
            return ZERO
        last = self._bankrupt_order(liquidation)
        if self.spec.adl_mode == "replace_market_sale":
            return self.counterparties.residual(time, account_id, last.symbol, last.side, remaining)
        # The contracts the bankrupt orders left to close: those sold at a loss past bankruptcy
        # (taken over, or with a shortfall); never the solvent orders before them.
        sales = [s for s in liquidation.sales if s.symbol == last.symbol]
        quantity = sum((s.quantity for s in sales), ZERO)
        price = next(
            (s.adl_price for s in reversed(sales) if s.adl_price is not None),
            last.bankruptcy_price if last.bankruptcy_price is not None else last.settlement_price,
        )
        return self.counterparties.after_sale(
            time, account_id, last.symbol, last.side, quantity, price, remaining
        )
