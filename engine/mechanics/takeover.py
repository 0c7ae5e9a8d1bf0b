"""Splitting a liquidation order by quantity: IOC limits and the pieces of a takeover.

Two rules need "the largest part of an order that satisfies a condition": an immediate-or-cancel
order fills as many contracts as trade no worse than its limit, and an insurance fund takes over
only as many contracts as it can afford to sell into the market.  Both evaluate the policy's own
fill price at each candidate quantity (a smaller order slips less), so neither assumes a formula:
:func:`largest_quantity` binary-searches the market's quantity grid.

A :class:`Sale` is what the loss waterfall needs from a bankrupt order after the liquidation has
run: the price the policy's fill rule gives for selling part of it, the bankrupt position's PnL,
and the ADL price.  It is evaluated on a snapshot of the account taken before the order, so the
waterfall sees the order exactly as the liquidation did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.dsl.runtime import EvaluationContext, Frame
from engine.mechanics.state import AccountState, Evaluator
from engine.mechanics.statement import Order
from engine.numbers import ZERO
from engine.policy.model import Policy


def quantity_grid(policy: Policy, symbol: str, quantity: Decimal) -> Decimal:
    """The grid an order's quantity is split on: the market's `quantity_step`.

    Without one, the finest decimal digit the quantity already has, and never coarser than one
    contract (123 → 1, 0.25 → 0.01): splitting never invents digits the book did not have.
    """
    step = policy.markets[symbol].quantity_step
    if step is not None:
        return step
    exponent = quantity.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # quantities are finite
    return Decimal(1).scaleb(min(exponent, 0))


def largest_quantity(upper: Decimal, grid: Decimal, ok: Callable[[Decimal], bool]) -> Decimal:
    """The largest quantity, at most `upper`, on `grid` (or `upper` itself) for which `ok` holds.

    `ok(0)` is taken to hold and `ok` to be monotone (true up to some size, false beyond), as a
    fill price only worsens with size; about log2(upper / grid) evaluations.
    """
    if upper <= 0:
        return ZERO
    if ok(upper):
        return upper
    low, high = 0, int(upper // grid)
    if high * grid == upper:
        high -= 1  # `upper` itself was just refused
    while low < high:  # ok(low * grid) holds; the answer lies in [low, high]
        middle = (low + high + 1) // 2
        if ok(middle * grid):
            low = middle
        else:
            high = middle - 1
    return low * grid


def no_worse(side: str, fill: Decimal, limit: Decimal) -> bool:
    """Whether closing a `side` position at `fill` is no worse than `limit` for the trader.

    Closing a long sells (a higher price is better); closing a short buys (lower is better).
    """
    return fill >= limit if side == "long" else fill <= limit


@dataclass(frozen=True, slots=True)
class Sale:
    """A bankrupt order's contracts, for the loss waterfall to place.

    The trader was settled at `settlement_price`; the contracts go to the insurance fund, to ADL
    counterparties at `adl_price`, or into the market at `fill(quantity)`.  `pnl(quantity, price)`
    is the bankrupt position's PnL from the policy's `unrealized_pnl`.
    """

    order: int  # the order's number in its statement
    symbol: str
    side: str
    quantity: Decimal
    settlement_price: Decimal
    fill_price: Decimal  # what the whole order fills at in the market
    adl_price: Decimal | None  # None when the policy's waterfall has no ADL
    grid: Decimal
    takeover: bool  # settled away from its fill: the contracts passed to the insurance fund
    fill: Callable[[Decimal], Decimal] = field(compare=False, repr=False)
    pnl: Callable[[Decimal, Decimal], Decimal] = field(compare=False, repr=False)

    def result(self, quantity: Decimal, price: Decimal) -> Decimal:
        """What taking `quantity` at the settlement price and closing at `price` makes (or loses)."""
        if quantity == 0:
            return ZERO
        return self.pnl(quantity, price) - self.pnl(quantity, self.settlement_price)


def position_pnl(
    evaluator: Evaluator,
    context: EvaluationContext,
    position: Mapping[str, Any],
    quantity: Decimal,
    price: Decimal,
) -> Decimal:
    """The policy's `unrealized_pnl` of `quantity` contracts of `position` at `price`."""
    frame = context.frame_for(position)
    market = {**(frame.market or {}), "mark_price": price}
    probe = Frame({**position, "size": quantity}, context.account, market, context)
    value: Decimal = evaluator.policy.program.definitions["unrealized_pnl"](probe)
    return value


def position_notional(
    evaluator: Evaluator, context: EvaluationContext, position: Mapping[str, Any], quantity: Decimal
) -> Decimal:
    """The policy's `notional` of `quantity` contracts of `position` at the mark."""
    frame = context.frame_for(position)
    probe = Frame({**position, "size": quantity}, context.account, frame.market, context)
    value: Decimal = evaluator.policy.program.definitions["notional"](probe)
    return value


def snapshot_sale(
    evaluator: Evaluator,
    state: AccountState,
    position: Mapping[str, Any],
    order: Mapping[str, Any],
    record: Order,
    adl_price: Decimal | None,
) -> Sale:
    """A :class:`Sale` of `record`, priced later on a copy of the account as it is now."""
    positions = [dict(p) for p in state.positions]
    before = next(copy for p, copy in zip(state.positions, positions, strict=True) if p is position)
    account = {
        "id": state.id,
        "wallet_balance": state.wallet_balance,
        "positions": positions,
        "debt": state.debt,
        "debt_age": state.debt_age,
    }
    base = {k: v for k, v in order.items() if k != "fill_price"}
    market_data = state.market
    fill_rule = evaluator.policy.expression(evaluator.policy.procedure.fill_price)

    def context() -> EvaluationContext:
        return EvaluationContext(account, evaluator.markets(market_data))

    def fill(quantity: Decimal) -> Decimal:
        current = context()
        frame = current.frame_for(before)
        if fill_rule is None:
            mark: Decimal = frame.market["mark_price"] if frame.market else record.mark_price
            return mark
        probe = {
            **base,
            "quantity": quantity,
            "notional": position_notional(evaluator, current, before, quantity),
            "is_partial": quantity < before["size"],
        }
        price: Decimal = fill_rule.run(Frame(before, account, frame.market, current, probe))
        return price

    def pnl(quantity: Decimal, price: Decimal) -> Decimal:
        return position_pnl(evaluator, context(), before, quantity, price)

    return Sale(
        order=record.number,
        symbol=record.symbol,
        side=record.side,
        quantity=record.quantity,
        settlement_price=record.settlement_price,
        fill_price=record.fill_price,
        adl_price=adl_price,
        grid=quantity_grid(evaluator.policy, record.symbol, record.quantity),
        takeover=record.settlement_price != record.fill_price,
        fill=fill,
        pnl=pnl,
    )
