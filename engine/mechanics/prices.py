"""Liquidation and bankruptcy prices, solved from the policy's own conditions.

For any policy: move the price inputs (`liquidation.price_inputs`, e.g. mark and last price) of
the position's market, hold everything else fixed, and find where the condition (the trigger, or
the bankruptcy condition) starts to hold.  Tiers follow the notional at each candidate price (the
bracket is chosen at the liquidation price, not at entry).  The search runs on the tick grid by exponential bracketing and
bisection, so the answer is exact on that grid; other rounding modes refine the boundary within
one tick first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.errors import EngineError
from engine.mechanics.state import AccountState, Evaluator
from engine.numbers import ZERO, quantize_to_step
from engine.policy.procedure import PriceRule

MAX_DOUBLINGS = 60
REFINE_STEPS = 64


@dataclass(frozen=True, slots=True)
class SolvedPrice:
    price: Decimal | None  # as reported (rounded per the policy's rule)
    boundary_tick: Decimal | None  # first tick where the condition holds
    tier: Mapping[str, Any] | None = None  # tier row at that price, when the policy has `bracket`


def danger_direction(position: Mapping[str, Any]) -> int:
    """-1 when falling prices hurt (long), +1 when rising prices hurt (short)."""
    return -1 if position["side"] == "long" else 1


def _tick_search(holds: Callable[[int], bool], start: int, direction: int) -> int | None:
    """First integer k (moving from `start` in `direction`) where `holds(k)`, assuming monotone.

    Returns the boundary k* with holds(k*) and not holds(k* - direction), or None.
    """
    if holds(start):
        # Already holding: walk back towards safety until it stops holding.
        step, inside = 1, start
        while True:
            candidate = start - direction * step
            if candidate <= 0:
                if direction < 0 or holds(1):
                    return 1
                outside = 1  # the boundary lies between tick 1 and the last holding candidate
                break
            if not holds(candidate):
                outside = candidate
                break
            inside, step = candidate, step * 2
            if step > 2**MAX_DOUBLINGS:
                return None
    else:
        step, outside = 1, start
        while True:
            candidate = start + direction * step
            if candidate <= 0:
                if holds(1):
                    inside = 1
                    break
                return None
            if holds(candidate):
                inside = candidate
                break
            outside, step = candidate, step * 2
            if step > 2**MAX_DOUBLINGS:
                return None
    # Bisection between outside (not holding) and inside (holding).
    while abs(inside - outside) > 1:
        middle = (inside + outside) // 2
        if holds(middle):
            inside = middle
        else:
            outside = middle
    return inside


def _refine(holds: Callable[[Decimal], bool], inside: Decimal, outside: Decimal) -> Decimal:
    for _ in range(REFINE_STEPS):
        middle = (inside + outside) / 2
        if holds(middle):
            inside = middle
        else:
            outside = middle
    return inside


def solve_price(
    evaluator: Evaluator,
    state: AccountState,
    position: Mapping[str, Any],
    condition_key: str,
    rule: PriceRule,
) -> SolvedPrice:
    """Solve the price of `position`'s market at which `condition_key` starts to hold."""
    policy = evaluator.policy
    symbol = position["symbol"]
    market = policy.markets[symbol]
    tick = market.tick_size
    inputs = policy.procedure.price_inputs
    current = state.market.get(symbol, {}).get("mark_price")
    if current is None:
        return SolvedPrice(None, None)
    index = next((i for i, p in enumerate(state.positions) if p is position), None)
    compiled = policy.expressions[condition_key]
    bracket = policy.program.definitions.get("bracket")

    def frame_at(price: Decimal) -> Any:
        overrides = {symbol: {name: price for name in inputs}}
        context = evaluator.context(state, overrides)
        target = state.positions[index] if index is not None else position
        return context.frame_for(target)

    def holds_at(price: Decimal) -> bool:
        try:
            return bool(compiled(frame_at(price)))
        except EngineError:
            return False

    direction = danger_direction(position)
    start = max(1, int(current / tick))
    k = _tick_search(lambda n: holds_at(tick * n), start, direction)
    if k is None:
        return SolvedPrice(None, None)
    boundary = tick * k
    tier = None
    if bracket is not None:
        try:
            tier = dict(bracket(frame_at(boundary)))
        except EngineError:
            tier = None
    if rule.rounding == "trigger":
        return SolvedPrice(boundary, boundary, tier)
    step = rule.step or tick
    outside = boundary - direction * tick
    exact = _refine(holds_at, boundary, max(outside, ZERO)) if outside > 0 else boundary
    return SolvedPrice(quantize_to_step(exact, step, rule.rounding), boundary, tier)


def liquidation_price(evaluator: Evaluator, state: AccountState, position: Mapping[str, Any]) -> SolvedPrice:
    if "liquidation.trigger" not in evaluator.policy.expressions:
        return SolvedPrice(None, None)
    return solve_price(evaluator, state, position, "liquidation.trigger",
                       evaluator.policy.procedure.liquidation_price)


def bankruptcy_price(evaluator: Evaluator, state: AccountState, position: Mapping[str, Any]) -> SolvedPrice:
    if "liquidation.bankruptcy" not in evaluator.policy.expressions:
        return SolvedPrice(None, None)
    return solve_price(evaluator, state, position, "liquidation.bankruptcy",
                       evaluator.policy.procedure.bankruptcy_price)


