"""Liquidation and bankruptcy prices, solved from the policy's own conditions.

For any policy: move the price inputs (`liquidation.price_inputs`, e.g. mark and last price) of
the position's market, hold everything else fixed, and find where the condition (the trigger, or
the bankruptcy condition) starts to hold.  Tiers follow the notional at each candidate price (the
bracket is chosen at the liquidation price, not at entry).  A secant search on a numeric residual
derived from the condition gets close; the answer is then confirmed on the tick grid with the
condition itself (bisection when the residual does not help), so it is exact on that grid; other
rounding modes refine the boundary within one tick first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.dsl.runtime import EvaluationContext, Frame
from engine.errors import EngineError
from engine.mechanics.market_records import MarketRecords
from engine.mechanics.state import AccountState, Evaluator
from engine.numbers import ZERO, quantize_to_step
from engine.policy.procedure import RESIDUAL, PriceRule

MAX_DOUBLINGS = 60
REFINE_STEPS = 64


@dataclass(frozen=True, slots=True)
class SolvedPrice:
    price: Decimal | None  # as reported (rounded per the policy's rule)
    boundary_tick: Decimal | None  # first tick where the condition holds


def danger_direction(
    position: Mapping[str, Any], positions: Iterable[Mapping[str, Any]] = ()
) -> int:
    """-1 when falling prices hurt, +1 when rising prices hurt: the position's own side decides.

    Except for a cross position whose account (`positions`) also holds the other side of its
    symbol (hedge mode): the account is liquidated, not the leg, so the net size of the
    symbol's cross positions decides, and both legs get the account's liquidation price.
    """
    own = -1 if position["side"] == "long" else 1
    if position["margin_mode"] != "cross":
        return own
    net = ZERO
    hedged = False
    for other in positions:
        if other["margin_mode"] == "cross" and other["symbol"] == position["symbol"]:
            net += other["size"] if other["side"] == "long" else -other["size"]
            hedged = hedged or other["side"] != position["side"]
    if not hedged or net == 0:
        return own
    return -1 if net > 0 else 1


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


def _secant_boundary(
    residual: Callable[[Decimal], Decimal | None],
    start: Decimal,
    direction: int,
    tick: Decimal,
    first: Decimal | None = None,
) -> Decimal | None:
    """Approximate price where `residual` turns >= 0 moving from `start` in `direction`.

    Bracket by secant-guided jumps (at most halving or doubling the price per jump), then a
    safeguarded secant: whenever a secant step fails to halve the bracket, the next step
    bisects.  `first`, when on the way, is the first price tried after `start`.  Every price
    tried after `start` lies on the tick grid, so the caller's confirmation on the grid begins
    at a price already evaluated.  Returns None when no sign change is found; the caller
    confirms with the condition itself, or falls back to plain bisection.
    """

    def on_grid(price: Decimal) -> Decimal:
        return max((price / tick).to_integral_value() * tick, tick)

    f_start = residual(start)
    if f_start is None:
        return None
    toward = direction if f_start < 0 else -direction
    inside = f_start >= 0

    def limit(candidate: Decimal, origin: Decimal) -> Decimal:
        low, high = origin / 2, origin * 2
        return min(max(candidate, low), high)

    a, fa = start, f_start
    b = on_grid(limit(a + toward * max(tick, start / 50), a))
    if first is not None and (first - a) * toward > 0:
        b = on_grid(first)  # e.g. the scenario's worst price, or the liquidation price
    for _ in range(MAX_DOUBLINGS):
        if b == a:
            return b
        fb = residual(b)
        if fb is None:
            return None
        if (fb >= 0) != inside:
            break
        if b <= tick:
            return None
        guess = b - fb * (b - a) / (fb - fa) if fb != fa else b + toward * abs(b - a)
        if abs(guess - b) <= tick:  # the secant says the boundary is within a tick of b
            return b
        if (guess - b) * toward <= 0:
            guess = b + toward * abs(b - a) * 2
        a, fa = b, fb
        # The secant points at or below the lowest price: look there at once (a long that no
        # falling price liquidates is then found in one step, not by halving down to a tick).
        b = tick if toward < 0 and guess <= tick else on_grid(limit(guess, a))
    else:
        return None
    if fb == 0:
        return b
    side = 0
    previous: Decimal | None = None
    bisect = False
    for _ in range(REFINE_STEPS):
        width = abs(b - a)
        if width <= 4 * tick:  # close enough: the caller confirms on the tick grid
            break
        # A secant through a point of a step (a residual like 1e6 once the margin is gone)
        # barely moves, and so does one whose step failed to halve the bracket: bisect
        # instead.  Otherwise Illinois: halve the weight of an end that stays, so the secant
        # does not creep towards the root from one side.
        c = (a + b) / 2
        secant = b - fb * (b - a) / (fb - fa) if fb != fa else c
        for end in (b, a):
            if abs(secant - end) <= tick:  # the secant lands within a tick of an end
                return end  # the caller's walk on the grid confirms
        if not bisect and fa != 0 and abs(fb / fa) <= 100 and min(a, b) < secant < max(a, b):
            c = secant
        c = on_grid(c)
        if c in (a, b):  # the bracket spans about a tick
            return b
        fc = residual(c)
        if fc is None:
            return None
        if fc == 0 or (previous is not None and abs(c - previous) <= tick):
            return c
        previous = c
        if (fc >= 0) == (fb >= 0):
            b, fb = c, fc
            if side == -1:
                fa /= 2
            side = -1
        else:
            a, fa = c, fc
            if side == 1:
                fb /= 2
            side = 1
        bisect = not bisect and abs(b - a) > width / 2
    return b if (fb >= 0) else a


class PriceFrames:
    """One position's frames with its market's price inputs moved to a price, by price.

    The residual and the condition evaluated at one price share a frame (and so their
    definitions), and so do the solves for one position (liquidation, then bankruptcy).
    `frame`, when given, is the position's frame at the current market: reused at that price.
    """

    __slots__ = ("_account", "_frames", "_inputs", "_markets", "_symbol", "_target")

    def __init__(
        self,
        evaluator: Evaluator,
        state: AccountState,
        position: Mapping[str, Any],
        frame: Frame | None = None,
    ) -> None:
        base = frame.context if frame is not None else evaluator.context(state)
        self._symbol = symbol = position["symbol"]
        self._inputs = inputs = evaluator.policy.procedure.price_inputs
        self._markets = base.markets
        self._account = base.account
        self._target = next((p for p in state.positions if p is position), position)
        self._frames: dict[Decimal, Frame] = {}
        current = state.market.get(symbol, {}).get("mark_price")
        if (
            current is not None
            and frame is not None
            and all(base.markets[symbol].get(n) == current for n in inputs)
        ):
            self._frames[current] = frame

    def at(self, price: Decimal) -> Frame:
        found = self._frames.get(price)
        if found is None:
            fields = dict.fromkeys(self._inputs, price)
            base = self._markets
            if isinstance(base, MarketRecords):  # shares the other markets' records
                markets: Mapping[str, Any] = base.with_overrides({self._symbol: fields})
            else:
                markets = {**base, self._symbol: {**base[self._symbol], **fields}}
            context = EvaluationContext(self._account, markets)
            found = self._frames[price] = context.frame_for(self._target)
        return found

    def evaluated(self, price: Decimal) -> bool:
        return price in self._frames


def solve_price(
    evaluator: Evaluator,
    state: AccountState,
    position: Mapping[str, Any],
    condition_key: str,
    rule: PriceRule,
    hint: Decimal | None = None,
    frames: PriceFrames | None = None,
    probe: Decimal | None = None,
) -> SolvedPrice:
    """Solve the price of `position`'s market at which `condition_key` starts to hold.

    `hint`, when given, is a price at which the condition is known to hold: it brackets the
    search from the start.  `frames` shares evaluations with other solves for the position;
    `probe` is a price worth trying first (e.g. the liquidation price, already evaluated, when
    solving the bankruptcy price).
    """
    policy = evaluator.policy
    symbol = position["symbol"]
    market = policy.markets[symbol]
    tick = market.tick_size
    current = state.market.get(symbol, {}).get("mark_price")
    if current is None:
        return SolvedPrice(None, None)
    compiled = policy.expressions[condition_key]
    residual_expr = policy.expressions.get(condition_key + RESIDUAL)
    if frames is None:
        frames = PriceFrames(evaluator, state, position)
    frame_at = frames.at

    def holds_at(price: Decimal) -> bool:
        try:
            return bool(compiled.run(frame_at(price)))
        except EngineError:
            return False

    def residual_at(price: Decimal) -> Decimal | None:
        if residual_expr is None:
            return None
        try:
            value: Decimal = residual_expr.run(frame_at(price))
        except EngineError:
            return None
        return value

    direction = danger_direction(position, state.positions)
    k: int | None = None
    guess: Decimal | None = None
    formula = policy.expressions.get(rule.formula) if rule.formula else None
    if formula is not None:  # a declared closed form: confirmed on the tick grid below
        try:
            guess = formula.run(frame_at(current))
        except EngineError:
            guess = None
        if guess is not None and guess > 0:
            k = _confirm_tick(lambda n: holds_at(tick * n), max(1, int(guess / tick)), direction)
    if k is None:
        guess = (
            _secant_boundary(residual_at, current, direction, tick, hint or probe)
            if residual_expr
            else None
        )
    if k is None and guess is not None and guess > 0:
        k = _confirm_tick(lambda n: holds_at(tick * n), max(1, int(guess / tick)), direction)
    reached_lowest = guess is None and direction < 0 and frames.evaluated(tick)
    if k is None and reached_lowest and not holds_at(tick):
        return SolvedPrice(None, None)  # not even at the lowest price: no boundary
    if k is None:
        start = max(1, int(current / tick))
        k = _tick_search(lambda n: holds_at(tick * n), start, direction)
    if k is None:
        return SolvedPrice(None, None)
    boundary = tick * k
    if rule.rounding == "trigger":
        return SolvedPrice(boundary, boundary)
    step = rule.step or tick
    outside = boundary - direction * tick
    exact = _refine(holds_at, boundary, max(outside, ZERO)) if outside > 0 else boundary
    return SolvedPrice(quantize_to_step(exact, step, rule.rounding), boundary)


def _confirm_tick(
    holds: Callable[[int], bool], guess: int, direction: int, limit: int = 8
) -> int | None:
    """From a guessed tick near the boundary, walk to k with holds(k) and not holds(k - direction).

    `direction` is the danger direction: holding ticks lie on that side.  Returns None when the
    walk does not settle within `limit` ticks (the caller falls back to bisection).
    """
    k = guess
    if holds(k):
        for _ in range(limit):
            previous = k - direction
            if previous <= 0 or not holds(previous):
                return k
            k = previous
        return None
    for _ in range(limit):
        k += direction
        if k <= 0:
            return None
        if holds(k):
            return k
    return None


def liquidation_price(
    evaluator: Evaluator,
    state: AccountState,
    position: Mapping[str, Any],
    hint: Decimal | None = None,
    frames: PriceFrames | None = None,
) -> SolvedPrice:
    if "liquidation.trigger" not in evaluator.policy.expressions:
        return SolvedPrice(None, None)
    return solve_price(
        evaluator,
        state,
        position,
        "liquidation.trigger",
        evaluator.policy.procedure.liquidation_price,
        hint,
        frames,
    )


def bankruptcy_price(
    evaluator: Evaluator,
    state: AccountState,
    position: Mapping[str, Any],
    frames: PriceFrames | None = None,
    probe: Decimal | None = None,
) -> SolvedPrice:
    if "liquidation.bankruptcy" not in evaluator.policy.expressions:
        return SolvedPrice(None, None)
    return solve_price(
        evaluator,
        state,
        position,
        "liquidation.bankruptcy",
        evaluator.policy.procedure.bankruptcy_price,
        frames=frames,
        probe=probe,
    )
