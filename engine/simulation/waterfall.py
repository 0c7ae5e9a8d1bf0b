"""The loss waterfall: who pays a shortfall past bankruptcy, in the policy's order.

A liquidation statement credits the trader with the shortfall it could not cover (so the
trader ends at zero); the stages here fund that credit, exactly, from the cross wallet, the
insurance fund, ADL counterparties, a clawback receivable, the trader's debt, or the exchange.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.dsl.runtime import Frame
from engine.errors import EngineError
from engine.mechanics.liquidate import Liquidation
from engine.mechanics.state import AccountState, Evaluator
from engine.numbers import ZERO, format_decimal, quantize_to_step
from engine.simulation.ledger import Ledger


@dataclass(frozen=True, slots=True)
class Allocation:
    stage: str
    amount: Decimal
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "amount": format_decimal(self.amount), "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Deleverage:
    """One counterparty position deleveraged by ADL."""

    time: int
    account_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    haircut: Decimal  # profit given up against the mark: the loss this counterparty absorbed
    notional: Decimal = ZERO  # quantity valued at the mark, comparable across contract sizes

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "account": self.account_id,
            "symbol": self.symbol,
            "side": self.side,
            "quantity": format_decimal(self.quantity),
            "price": format_decimal(self.price),
            "haircut": format_decimal(self.haircut),
            "notional": format_decimal(self.notional),
        }


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
        self.touched = touched
        self.deleverages: list[Deleverage] = []
        self._ranked: dict[
            tuple[str, str], list[tuple[Decimal, str, AccountState, dict[str, Any]]]
        ] = {}
        self._ranked_at = 0

    def new_step(self, time: int = 0) -> None:
        """Forget the ADL ranking once it is older than the policy's refresh interval.

        The ranking is a snapshot: computed at most once per step and side, and kept for
        `adl.refresh_seconds` of scenario time when the policy sets it.
        """
        refresh = self.spec.adl_refresh_seconds
        if refresh <= 0 or time - self._ranked_at >= refresh:
            self._ranked.clear()
            self._ranked_at = time

    def settle(
        self, time: int, state: AccountState, liquidation: Liquidation
    ) -> tuple[Allocation, ...]:
        """Book the liquidation's money and cover its shortfall; return the allocations."""
        statement = liquidation.statement
        ledger = self.ledger
        symbol = statement.orders[0].symbol if statement.orders else ""
        pool = self.pool_of(symbol)
        ledger.add_flow(
            "liquidated_margin",
            statement.starting_margin - statement.final_balance - statement.remaining_margin,
        )
        ledger.add_flow("traders_to_counterparties", -statement.shortfall)
        for order in statement.orders:
            realized = order.pnl_at_mark + order.slippage
            ledger.market -= realized
            ledger.add_flow("traders_to_counterparties", -realized)
            ledger.market -= order.takeover_result
            ledger.insurance_funds[pool] += order.takeover_result
            ledger.add_flow("insurance_fund_takeover", order.takeover_result)
            for _name, kind, _charged, collected, to in order.fees:
                if to == "exchange":
                    ledger.fee_revenue += collected
                else:
                    ledger.insurance_funds[pool] += collected
                ledger.add_flow(f"fees_{kind}", collected)
        ledger.insurance_funds[pool] += statement.surplus_to_insurance_fund
        ledger.add_flow("insurance_fund_surplus", statement.surplus_to_insurance_fund)
        claim = statement.shortfall
        if ledger.insurance_funds[pool] < 0:  # a takeover cost more than the fund held
            claim += -ledger.insurance_funds[pool]
            ledger.insurance_funds[pool] = ZERO
        takeover = sum((o.takeover_result for o in statement.orders), ZERO)
        if takeover < 0:  # what the fund itself bore of takeover losses (the rest is in `claim`)
            ledger.add_flow(
                "insurance_fund_takeover_loss", -takeover - (claim - statement.shortfall)
            )
        if claim <= 0:
            return ()
        ledger.add_flow("claims", claim)
        return self.cover(time, state, liquidation, claim, pool)

    def cover(
        self, time: int, state: AccountState, liquidation: Liquidation, claim: Decimal, pool: str
    ) -> tuple[Allocation, ...]:
        allocations: list[Allocation] = []
        remaining = claim
        for stage in self.spec.order:
            if remaining <= 0:
                break
            paid = self.stage(stage, time, state, liquidation, remaining, pool)
            if paid > 0:
                allocations.append(Allocation(stage, paid))
                self.ledger.add_flow(stage, paid)
                remaining -= paid
        if remaining > 0:  # schema and loader guarantee a final debt/write_off stage
            raise AssertionError(f"waterfall left {remaining} uncovered")
        return tuple(allocations)

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
            paid = min(remaining, ledger.insurance_funds[pool])
            ledger.insurance_funds[pool] -= paid
            return paid
        if stage == "adl":
            return self.deleverage(time, liquidation, remaining)
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

    # -- ADL ---------------------------------------------------------------------------------
    def _pnl(
        self, state: AccountState, position: Mapping[str, Any], quantity: Decimal, price: Decimal
    ) -> Decimal:
        context = self.evaluator.context(state)
        frame = context.frame_for(position)
        market = {**(frame.market or {}), "mark_price": price}
        probe = Frame({**position, "size": quantity}, context.account, market, context)
        value: Decimal = self.policy.program.definitions["unrealized_pnl"](probe)
        return value

    def deleverage(self, time: int, liquidation: Liquidation, remaining: Decimal) -> Decimal:
        """Deleverage ranked profitable opposite positions at the bankruptcy price."""
        orders = liquidation.statement.orders
        if not orders or self.spec.adl_ranking is None:
            return ZERO
        last = orders[-1]
        price = (
            last.bankruptcy_price if last.bankruptcy_price is not None else last.settlement_price
        )
        opposite = "short" if last.side == "long" else "long"
        quantity_left = sum((o.quantity for o in orders if o.symbol == last.symbol), ZERO)
        candidates = self._ranked.get((last.symbol, opposite))
        if candidates is None:
            candidates = self._rank(last.symbol, opposite)
            self._ranked[(last.symbol, opposite)] = candidates
        paid = ZERO
        for _rank, account_id, state, position in candidates:
            if position["size"] <= 0 or not any(p is position for p in state.positions):
                continue
            if paid >= remaining or quantity_left <= 0:
                break
            mark = state.market[position["symbol"]]["mark_price"]
            per_contract = self._pnl(state, position, Decimal(1), mark) - self._pnl(
                state, position, Decimal(1), price
            )
            if per_contract <= 0:
                continue
            need = remaining - paid
            most = min(position["size"], quantity_left)
            if most * per_contract >= need:
                # The haircut is exactly what is needed; the quantity rounds up to the market's
                # step so sizes (and every later PnL) stay exact decimals.
                quantity, haircut = need / per_contract, need
                step = self.policy.markets[position["symbol"]].quantity_step
                if step is not None:
                    quantity = min(most, quantize_to_step(quantity, step, "up"))
            else:
                quantity, haircut = most, most * per_contract
            at_mark = self._pnl(state, position, quantity, mark)
            realized = at_mark - haircut
            self.ledger.market -= at_mark
            self._close(state, position, quantity, realized)
            paid += haircut
            quantity_left -= quantity
            self.touched(account_id)
            contract = self.policy.markets[position["symbol"]].contract_size
            self.deleverages.append(
                Deleverage(
                    time,
                    account_id,
                    position["symbol"],
                    position["side"],
                    quantity,
                    price,
                    haircut,
                    quantity * contract * mark,
                )
            )
        return paid

    def _rank(
        self, symbol: str, side: str
    ) -> list[tuple[Decimal, str, AccountState, dict[str, Any]]]:
        """Eligible positions on `side` of `symbol`, best ranked first (ties by account id)."""
        assert self.spec.adl_ranking is not None
        candidates: list[tuple[Decimal, str, AccountState, dict[str, Any]]] = []
        for account_id in sorted(self.states):
            state = self.states[account_id]
            for position in state.positions:
                if position["symbol"] != symbol or position["side"] != side:
                    continue
                frame = self.evaluator.context(state).frame_for(position)
                try:
                    eligible = (
                        self.evaluator.expression(self.spec.adl_eligible, frame)
                        if self.spec.adl_eligible
                        else self.evaluator.definition("unrealized_pnl", frame) > 0
                    )
                    if not eligible:
                        continue
                    rank = self.evaluator.expression(self.spec.adl_ranking, frame)
                except EngineError:
                    continue
                candidates.append((rank, account_id, state, position))
        candidates.sort(key=lambda item: (-item[0], item[1], item[3]["side"]))
        return candidates

    @staticmethod
    def _close(
        state: AccountState, position: dict[str, Any], quantity: Decimal, realized: Decimal
    ) -> None:
        if position["margin_mode"] == "isolated":
            position["isolated_margin"] += realized
        else:
            state.wallet_balance += realized
        position["size"] -= quantity
        if position["size"] <= 0:
            if position["margin_mode"] == "isolated":
                state.wallet_balance += position["isolated_margin"]
            state.positions.remove(position)
