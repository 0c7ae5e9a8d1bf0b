"""The liquidation procedure: run the policy's steps on one unit until the trigger stops holding.

A unit is an isolated position (its own margin) or all cross positions of an account (the cross
wallet).  Each order closes contracts at the policy's fill price, settles the trader at the
policy's settlement price, charges the policy's fees, and consumes margin in the policy's order;
what the margin cannot cover becomes the shortfall handed to the loss waterfall.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.dsl.runtime import Frame
from engine.mechanics.prices import bankruptcy_price
from engine.mechanics.state import AccountState, Evaluator
from engine.mechanics.statement import LineItem, Order, Statement
from engine.mechanics.takeover import (
    Sale,
    largest_quantity,
    no_worse,
    position_notional,
    position_pnl,
    quantity_grid,
    snapshot_sale,
)
from engine.mechanics.trace import subject_of
from engine.mechanics.unit import Unit, close_out
from engine.numbers import LEDGER_CONTEXT, ZERO, format_decimal
from engine.policy.procedure import Step


@dataclass(frozen=True, slots=True)
class StepRecord:
    name: str
    kind: str
    status: str  # executed | skipped | no effect | not reached
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "status": self.status, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Liquidation:
    statement: Statement
    steps: tuple[StepRecord, ...]
    takeover_result: Decimal  # to (positive) or from (negative) the insurance fund
    fees_to: Mapping[str, Decimal]  # recipient -> amount
    # Bankrupt orders for the loss waterfall (simulations only; see engine/mechanics/takeover.py)
    sales: tuple[Sale, ...] = field(default=(), compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "statement": self.statement.as_dict(),
            "steps": [s.as_dict() for s in self.steps],
            "takeover_result": format_decimal(self.takeover_result),
            "fees_to": {k: format_decimal(v) for k, v in sorted(self.fees_to.items())},
        }


class _Bankruptcy:
    """A position's bankruptcy price, solved on first call and shared by the orders that ask
    (an immediate-or-cancel order's probes and the order itself)."""

    def __init__(self, evaluator: Evaluator, state: AccountState, position: Mapping[str, Any]):
        self.evaluator, self.state, self.position = evaluator, state, position
        self.asked = False
        self.price: Decimal | None = None  # None: no price reaches bankruptcy

    def __call__(self) -> Decimal | None:
        if not self.asked:
            self.price = bankruptcy_price(self.evaluator, self.state, self.position).price
            self.asked = True
        return self.price


class _Order(dict[str, Any]):
    """The `order` record: `bankruptcy_price` is solved on first read (most orders never read it)."""

    solve: _Bankruptcy | None = None
    mark: Decimal | None = None

    def __missing__(self, key: str) -> Any:
        if key == "bankruptcy_price" and self.solve is not None:
            solved = self.solve()
            # No price of this market crosses the bankruptcy condition (e.g. a hedged cross
            # pair: the margin balance does not move with it): expressions read the mark.
            value = solved if solved is not None else self.mark
            self[key] = value
            return value
        raise KeyError(key)

    @property
    def solved(self) -> Decimal | None:
        """What the solver found, if anything asked (None otherwise)."""
        return self.solve.price if self.solve is not None and self.solve.asked else None


class _Run:
    def __init__(self, evaluator: Evaluator, state: AccountState, unit: Unit) -> None:
        self.evaluator = evaluator
        self.policy = evaluator.policy
        self.procedure = evaluator.policy.procedure
        self.state = state
        self.unit = unit
        self.orders: list[Order] = []
        self.items: list[LineItem] = []
        self.records: list[StepRecord] = []
        self.takeover = ZERO
        self.fees_to: dict[str, Decimal] = {}
        self.eager_bankruptcy = True
        self.want_sales = False
        self.sales: list[Sale] = []

    def frame(self, position: Mapping[str, Any], order: Mapping[str, Any] | None = None) -> Frame:
        context = self.evaluator.context(self.state)
        return self.evaluator.frame(context, position, order)

    def largest(self) -> dict[str, Any] | None:
        open_positions = self.unit.open_positions()
        if not open_positions:
            return None
        return max(
            open_positions, key=lambda p: self.evaluator.definition("notional", self.frame(p))
        )

    def triggered(self) -> bool:
        position = self.largest()
        if position is None:
            return False
        return bool(self.evaluator.expression("liquidation.trigger", self.frame(position)))

    def pnl(self, position: Mapping[str, Any], quantity: Decimal, price: Decimal) -> Decimal:
        return position_pnl(
            self.evaluator, self.evaluator.context(self.state), position, quantity, price
        )

    def notional(self, position: Mapping[str, Any], quantity: Decimal) -> Decimal:
        return position_notional(
            self.evaluator, self.evaluator.context(self.state), position, quantity
        )

    def solver(self, position: Mapping[str, Any]) -> _Bankruptcy:
        return _Bankruptcy(self.evaluator, self.state, position)

    def order_record(
        self,
        position: Mapping[str, Any],
        quantity: Decimal,
        number: int,
        margin_before: Decimal,
        solve: _Bankruptcy | None,
    ) -> _Order:
        order = _Order(
            {
                "kind": "liquidation" if solve is not None else "offset",
                "quantity": quantity,
                "notional": self.notional(position, quantity),
                "is_partial": quantity < position["size"],
                "step": Decimal(number),
                "margin_before": margin_before,
            }
        )
        if solve is not None:
            # Solved on first read: a simulation skips it for orders no rule prices with it.
            order.solve = solve
            order.mark = self.state.market[position["symbol"]]["mark_price"]
        return order

    def fill_limited(
        self, position: dict[str, Any], wanted: Decimal, step: Step
    ) -> tuple[Decimal, Decimal, _Bankruptcy]:
        """An immediate-or-cancel order: how much of `wanted` fills no worse than the limit.

        The policy's fill price is evaluated at each candidate quantity (untraced: only the
        limit, the outcome and the final order's fill appear in a trace).
        """
        assert step.limit_price is not None
        number = len(self.orders) + 1
        solve = self.solver(position)
        margin_before = self.evaluator.definition("margin_balance", self.frame(position))
        probe = self.order_record(position, wanted, number, margin_before, solve)
        limit: Decimal = self.evaluator.expression(
            step.limit_price, self.frame(position, probe), "limit price"
        )
        fill_rule = self.policy.expression(self.procedure.fill_price)
        mark = self.state.market[position["symbol"]]["mark_price"]

        def fills(quantity: Decimal) -> bool:
            if fill_rule is None:
                return no_worse(position["side"], mark, limit)
            order = self.order_record(position, quantity, number, margin_before, solve)
            price: Decimal = fill_rule.run(self.frame(position, order))
            return no_worse(position["side"], price, limit)

        grid = quantity_grid(self.policy, position["symbol"], wanted)
        filled = largest_quantity(wanted, grid, fills)
        self.evaluator.note(
            "order",
            step.name,
            f"immediate-or-cancel at limit {format_decimal(limit)}: filled "
            f"{format_decimal(filled)} of {format_decimal(wanted)}, cancelled "
            f"{format_decimal(wanted - filled)}",
            subject_of(self.frame(position)),
        )
        return filled, limit, solve

    def execute(
        self,
        position: dict[str, Any],
        quantity: Decimal,
        step: Step | None,
        label: str,
        *,
        offset: bool = False,
        solve: _Bankruptcy | None = None,
        requested: Decimal | None = None,
        limit: Decimal | None = None,
    ) -> None:
        """Close `quantity` of `position`: an offset leg trades at the mark without fees.

        `requested` and `limit` describe an immediate-or-cancel order that filled `quantity`.
        """
        number = len(self.orders) + 1
        symbol, side = position["symbol"], position["side"]
        mark: Decimal = self.state.market[symbol]["mark_price"]
        frame = self.frame(position)
        margin_before: Decimal = self.evaluator.definition("margin_balance", frame)
        is_partial = quantity < position["size"]
        if not offset and solve is None:
            solve = self.solver(position)
        order = self.order_record(
            position, quantity, number, margin_before, None if offset else solve
        )
        if not offset and self.eager_bankruptcy:
            order["bankruptcy_price"]  # reading solves it, for the statement
        fill = mark
        if self.procedure.fill_price and not offset:
            fill = self.evaluator.expression(
                self.procedure.fill_price, self.frame(position, order), "fill"
            )
        order["fill_price"] = fill
        settle = fill
        if self.procedure.settlement_price and not offset:
            settle = self.evaluator.expression(
                self.procedure.settlement_price, self.frame(position, order), "settlement"
            )
        pnl_mark = self.pnl(position, quantity, mark)
        pnl_settle = self.pnl(position, quantity, settle)
        pnl_fill = self.pnl(position, quantity, fill)
        charged: list[tuple[str, str, Decimal, str]] = []
        order_frame = self.frame(position, order)
        for fee in () if offset else self.procedure.fees:
            if fee.when and not self.evaluator.expression(fee.when, order_frame):
                continue
            amount = max(ZERO, self.evaluator.expression(fee.amount, order_frame, "fee"))
            charged.append((fee.name, fee.kind, amount, fee.to))
        backing = max(ZERO, self.other_cross_pnl(position)) if self.unit.cross else ZERO
        with decimal.localcontext(LEDGER_CONTEXT):  # money moves exactly (numbers.py says why)
            slippage = pnl_settle - pnl_mark
            takeover = pnl_fill - pnl_settle
            available, fees, consumed, shortfall = self.consume(
                charged, pnl_mark, slippage, backing
            )
            for _name, _, _, taken, to in fees:
                self.fees_to[to] = self.fees_to.get(to, ZERO) + taken
            self.takeover += takeover
        bankrupt = order.solved  # None when not solved (or no price reaches bankruptcy)
        record = Order(
            number,
            label,
            symbol,
            side,
            quantity,
            is_partial,
            mark,
            fill,
            settle,
            bankrupt,
            pnl_mark,
            slippage,
            fees,
            tuple(consumed),
            shortfall,
            takeover,
            margin_before,
            available,
            "offset" if offset else "liquidation",
            order["notional"],
            requested,
            limit,
        )
        self.orders.append(record)
        if self.want_sales and not offset and (settle != fill or shortfall > 0):
            self.sales.append(self.sale(position, order, record))
        balance = self.unit.balance_name
        self.items.append(
            LineItem(
                "pnl_at_mark",
                f"closed {format_decimal(quantity)} {symbol} {side} at mark",
                pnl_mark,
                balance,
                number,
            )
        )
        self.items.append(
            LineItem("slippage", "settlement price vs mark", slippage, balance, number)
        )
        for name, _, amount, taken, to in fees:
            waived = LEDGER_CONTEXT.subtract(amount, taken)
            detail = f"charged {format_decimal(amount)}" + (
                f", waived {format_decimal(waived)}" if waived else ""
            )
            self.items.append(
                LineItem("fee", name, taken.copy_negate(), balance, number, f"{detail}; to {to}")
            )
        if shortfall:
            self.items.append(
                LineItem(
                    "shortfall",
                    "loss past bankruptcy, to the loss waterfall",
                    shortfall,
                    balance,
                    number,
                )
            )
        position["size"] = LEDGER_CONTEXT.subtract(position["size"], quantity)
        self.unit.set_margin(available, position)
        if position["size"] == 0:
            self.state.positions.remove(position)
        self.evaluator.note(
            "order",
            label,
            f"closed {format_decimal(quantity)} at {format_decimal(fill)}",
            subject_of(frame),
        )

    def consume(
        self,
        charged: list[tuple[str, str, Decimal, str]],
        pnl_mark: Decimal,
        slippage: Decimal,
        backing: Decimal,
    ) -> tuple[
        Decimal,
        tuple[tuple[str, str, Decimal, Decimal, str], ...],
        list[tuple[str, Decimal]],
        Decimal,
    ]:
        """Consume margin in the policy's order; gains first add to what is available.

        In a cross unit the other open positions' unrealised PnL (`backing`) also backs the
        order: the wallet may dip below zero while they stay open, and only what nothing backs
        is a shortfall.  Returns the margin left, the fees with what was collected, what each
        category consumed, and the shortfall.
        """
        available = self.unit.margin + max(ZERO, pnl_mark) + max(ZERO, slippage)
        collected: dict[str, Decimal] = {}
        consumed: list[tuple[str, Decimal]] = []
        shortfall = ZERO
        for category in self.procedure.consumption_order:
            if category == "fees":
                total = ZERO
                for name, _, amount, _ in charged:
                    take = min(amount, max(available + backing, ZERO))
                    collected[name] = take
                    available -= take
                    total += take
                consumed.append(("fees", total))
            else:
                owed = max(ZERO, -pnl_mark) if category == "loss" else max(ZERO, -slippage)
                take = min(owed, max(available + backing, ZERO))  # nothing left pays nothing
                available -= take
                shortfall += owed - take
                consumed.append((category, take))
        fees = tuple((n, k, a, collected.get(n, ZERO), to) for n, k, a, to in charged)
        return available, fees, consumed, shortfall

    def sale(self, position: Mapping[str, Any], order: _Order, record: Order) -> Sale:
        """The bankrupt order for the loss waterfall, evaluated as the account is now."""
        waterfall = self.policy.waterfall
        adl_price: Decimal | None = None
        if "adl" in waterfall.order:
            if waterfall.adl_price is not None:
                adl_price = self.evaluator.expression(
                    waterfall.adl_price, self.frame(position, order), "ADL price"
                )
            else:
                adl_price = order["bankruptcy_price"]
        order["bankruptcy_price"]  # the snapshot keeps every field a later fill may read
        return snapshot_sale(self.evaluator, self.state, position, order, record, adl_price)

    def other_cross_pnl(self, position: Mapping[str, Any]) -> Decimal:
        """Unrealised PnL of the unit's other open cross positions, at the mark."""
        total = ZERO
        for other in self.unit.open_positions():
            if other is not position:
                total += self.evaluator.definition("unrealized_pnl", self.frame(other))
        return total

    def offset(self, step: Step) -> str:
        done = []
        for position in list(self.unit.open_positions()):
            if position["side"] != "long":
                continue
            other = next(
                (
                    p
                    for p in self.unit.open_positions()
                    if p["symbol"] == position["symbol"] and p["side"] == "short"
                ),
                None,
            )
            if other is None:
                continue
            quantity = min(position["size"], other["size"])
            mark = self.state.market[position["symbol"]]["mark_price"]
            # The gaining leg first: its gain pays the other leg's loss.  Loss first would book a
            # shortfall against the margin and then hand the gain back to the trader.
            for leg in sorted(
                (position, other), key=lambda p: self.pnl(p, quantity, mark), reverse=True
            ):
                self.execute(leg, quantity, step, step.name, offset=True)
            done.append(f"{position['symbol']} {format_decimal(quantity)}")
        return "offset " + ", ".join(done) if done else "no opposite positions to offset"

    def run_step(self, step: Step) -> StepRecord:
        position = self.largest()
        if position is None:
            return StepRecord(step.name, step.kind, "not reached", "nothing left to liquidate")
        if step.when and not self.evaluator.expression(step.when, self.frame(position)):
            return StepRecord(step.name, step.kind, "skipped", "condition is false")
        if step.kind == "cancel_orders":
            return StepRecord(step.name, step.kind, "no effect", "open orders are not modelled")
        if step.kind == "offset_opposite":
            detail = self.offset(step)
            return StepRecord(
                step.name,
                step.kind,
                "executed" if detail.startswith("offset ") else "no effect",
                detail,
            )
        closed = ZERO
        orders = 0
        cancelled = ZERO
        for _ in range(step.repeat if step.kind == "reduce" else 1_000):
            position = self.largest()
            if position is None or not self.triggered():
                break
            if step.kind == "reduce":
                assert step.quantity is not None
                wanted = self.evaluator.expression(step.quantity, self.frame(position), "quantity")
                quantity = min(max(ZERO, wanted), position["size"])
            else:
                quantity = position["size"]
            if quantity == 0:
                break
            if step.limit_price is None:
                self.execute(position, quantity, step, step.name)
            else:
                filled, limit, solve = self.fill_limited(position, quantity, step)
                cancelled += quantity - filled
                if filled:
                    self.execute(
                        position,
                        filled,
                        step,
                        step.name,
                        solve=solve,
                        requested=quantity,
                        limit=limit,
                    )
                quantity = filled
            closed += quantity
            orders += 1 if quantity else 0
            if cancelled:  # the book holds nothing more at the limit: the order's rest is gone
                break
        cancel_note = f"; {format_decimal(cancelled)} cancelled at the limit" if cancelled else ""
        if not orders:
            detail = (
                "nothing filled at or better than the limit" if cancelled else "nothing to close"
            )
            return StepRecord(step.name, step.kind, "no effect", detail + cancel_note)
        return StepRecord(
            step.name,
            step.kind,
            "executed",
            f"{orders} order{'s' if orders != 1 else ''}, "
            f"{format_decimal(closed)} contract{'s' if closed != 1 else ''}{cancel_note}",
        )


def liquidate(
    evaluator: Evaluator,
    state: AccountState,
    positions: list[dict[str, Any]],
    inputs: Any,
    *,
    report_bankruptcy: bool = True,
    sales: bool = False,
) -> Liquidation:
    """Liquidate one unit of `state` in place and return its statement.

    With `report_bankruptcy=False` (simulations) an order's bankruptcy price is solved only
    when one of the policy's rules reads it, and the statement reports it only then.  With
    `sales` (simulations) every bankrupt order is also described for the loss waterfall.
    """
    unit = Unit(state, positions)
    run = _Run(evaluator, state, unit)
    run.eager_bankruptcy = report_bankruptcy
    run.want_sales = sales
    starting = unit.margin
    run.items.append(
        LineItem("starting_margin", "margin before liquidation", starting, unit.balance_name)
    )
    for step in evaluator.policy.procedure.steps:
        if not run.triggered():
            run.records.append(
                StepRecord(step.name, step.kind, "not reached", "trigger no longer holds")
            )
            continue
        run.records.append(run.run_step(step))
        evaluator.note("step", step.name, run.records[-1].status)
    if run.triggered():
        closed = ZERO
        while (position := run.largest()) is not None and run.triggered():
            closed += position["size"]
            run.execute(position, position["size"], None, "close the rest")
        run.records.append(
            StepRecord(
                "close the rest",
                "close",
                "executed",
                f"trigger still held after the last step; closed {format_decimal(closed)}",
            )
        )
    statement = close_out(evaluator, state, unit, run.orders, run.items, starting, inputs)
    return Liquidation(
        statement, tuple(run.records), run.takeover, dict(run.fees_to), tuple(run.sales)
    )
