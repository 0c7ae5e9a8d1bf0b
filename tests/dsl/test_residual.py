"""Residuals of liquidation conditions: a number whose sign agrees with the condition.

The price solver (engine/mechanics/prices.py) looks for the price where `liquidation.trigger`
starts to hold with the help of `liquidation.trigger#residual`, a number that
engine/dsl/residual.py derives from the condition's tree.  The solver takes secant steps on the
residual. If the residual's sign disagrees with the condition anywhere other than a tie, those
steps go toward the wrong boundary.  A rewrite that changes the residual's value (for
example, dropping the linear `x - c*y` form of a ratio, or picking the wrong fallback outside
its guard) goes unnoticed unless the values are checked too.

Each test loads a tiny policy whose trigger is the condition under test. It evaluates both
compiled expressions on one frame, the way the engine does: the values are checked exactly, and
property tests check that the signs agree (a positive residual means the condition holds, a
negative one means it does not).
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.dsl import frame
from engine.numbers import DECIMAL_CONTEXT, ZERO
from engine.policy.load import load_policy
from engine.policy.model import Policy
from engine.policy.procedure import RESIDUAL

D = Decimal
STEP = D("1e30")
TRIGGER = "liquidation.trigger"

# Input names, shortened in the conditions below (`a`, `b`, `c`, `d`):
A = "account.wallet_balance"
B = "market.mark_price"
C = "market.index_price"
T = "market.last_price"  # a threshold that moves, so ratio tests see both signs of it

HEAD = """\
id: residual
title: Residual
markets:
  BTCUSDT: {kind: linear, contract_size: 1, tick_size: 0.1, assumption: test numbers}
"""

Load = Callable[..., Policy]


@pytest.fixture(scope="module")
def load(tmp_path_factory: pytest.TempPathFactory) -> Load:
    """`load(trigger, *definitions)`: a policy with that trigger, loaded once per module."""
    folder: Path = tmp_path_factory.mktemp("residual")
    cache: dict[tuple[str, ...], Policy] = {}

    def make(trigger: str, *definitions: str) -> Policy:
        key = (trigger, *definitions)
        if key not in cache:
            text = HEAD
            if definitions:
                text += "definitions:\n" + "".join(f"  {line}\n" for line in definitions)
            text += f"liquidation:\n  trigger: '{trigger}'\n"
            path = folder / f"policy{len(cache)}.yaml"
            path.write_text(text, encoding="utf-8")
            cache[key] = load_policy(path)
            assert TRIGGER + RESIDUAL in cache[key].expressions
        return cache[key]

    return make


def evaluate(
    policy: Policy,
    *,
    a: Decimal = ZERO,
    b: Decimal = ZERO,
    c: Decimal = ZERO,
    t: Decimal = ZERO,
    side: str = "long",
) -> tuple[bool, Decimal]:
    """(condition, residual) on one frame, in the engine's decimal context."""
    position = {"symbol": "BTCUSDT", "side": side, "size": D(1), "margin_mode": "cross"}
    account = {"wallet_balance": a, "positions": [position]}
    record = policy.markets["BTCUSDT"].record
    market = {**record, "mark_price": b, "index_price": c, "last_price": t}
    with decimal.localcontext(DECIMAL_CONTEXT):
        inputs = frame(position, account, market)
        condition = policy.expressions[TRIGGER](inputs)
        residual = policy.expressions[TRIGGER + RESIDUAL](inputs)
    assert isinstance(condition, bool)
    assert isinstance(residual, Decimal)
    return condition, residual


def agrees(condition: bool, residual: Decimal) -> bool:
    """Away from ties, the residual's sign is the condition: > 0 holds, < 0 does not."""
    return (residual <= 0 or condition) and (residual >= 0 or not condition)


# Decimals from integers (never floats): small integers make ties (a == b, x == c*y) common,
# the wide scaled range reaches cents and large magnitudes.
amounts = st.one_of(
    st.integers(-3, 3).map(Decimal),
    st.integers(-(10**6), 10**6).map(lambda n: Decimal(n).scaleb(-2)),
)
sides = st.sampled_from(["long", "short"])


# --- values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "a", "b", "expected"),
    [
        (f"{A} >= {B}", D(10), D(3), (True, D(7))),
        (f"{A} >= {B}", D(3), D(10), (False, D(-7))),
        (f"{A} >= {B}", D("2.5"), D("2.5"), (True, D(0))),
        (f"{A} > {B}", D("2.5"), D("2.5"), (False, D(0))),  # a tie: residual 0, condition false
        (f"{A} <= {B}", D(10), D(3), (False, D(-7))),
        (f"{A} < {B}", D("0.25"), D(1), (True, D("0.75"))),
        (f"2 * {A} - 1 >= {B} / 4", D(3), D(8), (True, D(3))),
    ],
)
def test_residual_comparison_is_difference(
    load: Load, trigger: str, a: Decimal, b: Decimal, expected: tuple[bool, Decimal]
) -> None:
    assert evaluate(load(trigger), a=a, b=b) == expected


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        # a - b = 7, c - t = 1, t - c = -1
        (f"{A} >= {B} and {C} >= {T}", (True, D(1))),  # min(7, 1)
        (f"{A} >= {B} and {C} <= {T}", (False, D(-1))),  # min(7, -1)
        (f"{A} <= {B} or {C} >= {T}", (True, D(1))),  # max(-7, 1)
        (f"{A} <= {B} or {C} <= {T}", (False, D(-1))),  # max(-7, -1)
        (f"not ({A} >= {B})", (False, D(-7))),
        (f"not ({A} <= {B} or {C} <= {T})", (True, D(1))),  # -max(-7, -1)
        (f"not not ({A} >= {B})", (True, D(7))),
    ],
)
def test_residual_and_or_not_are_min_max_negation(
    load: Load, trigger: str, expected: tuple[bool, Decimal]
) -> None:
    assert evaluate(load(trigger), a=D(10), b=D(3), c=D(5), t=D(4)) == expected


def test_residual_follows_boolean_definitions(load: Load) -> None:
    policy = load("breach and healthy", f"breach: {A} < {B}", f"healthy: not ({C} > {T})")
    # min(b - a, -(c - t)) = min(2, 1)
    assert evaluate(policy, a=D(1), b=D(3), c=D(4), t=D(5)) == (True, D(1))
    assert evaluate(policy, a=D(4), b=D(3), c=D(4), t=D(5)) == (False, D(-1))


LONG_CROSS = 'long_cross: position.side == "long" and position.margin_mode == "cross"'


@pytest.mark.parametrize(
    ("trigger", "definitions", "side", "expected"),
    [
        ('position.side == "long"', (), "long", (True, STEP)),
        ('position.side == "long"', (), "short", (False, -STEP)),
        ('position.margin_mode != "cross"', (), "long", (False, -STEP)),
        ('not (position.side == "long")', (), "long", (False, -STEP)),
        ("is_long", ('is_long: position.side == "long"',), "short", (False, -STEP)),
        ("flag", ("flag: 'true'",), "short", (True, STEP)),
        ("long_cross", (LONG_CROSS,), "short", (False, -STEP)),
        ("long_cross", (LONG_CROSS,), "long", (True, STEP)),
        (f'{A} >= {B} and position.side == "long"', (), "long", (True, D(7))),
        (f'{A} >= {B} and position.side == "long"', (), "short", (False, -STEP)),
        (f'{A} <= {B} or position.side == "short"', (), "short", (True, STEP)),
    ],
)
def test_residual_of_non_comparison_is_step(
    load: Load,
    trigger: str,
    definitions: tuple[str, ...],
    side: str,
    expected: tuple[bool, Decimal],
) -> None:
    policy = load(trigger, *definitions)
    assert evaluate(policy, a=D(10), b=D(3), side=side) == expected


GUARDED_HIGH = f"ratio: if {C} > 0 then {A} / {C} else 999999"
GUARDED_ZERO = f"ratio: if {C} > 0 then {A} / {C} else 0"


@pytest.mark.parametrize(
    ("trigger", "definition", "a", "c", "expected"),
    [
        # inside the guard: the linear a - 2c (2), not the ratio's difference (0.5)
        ("ratio >= 2", GUARDED_HIGH, D(10), D(4), (True, D(2))),
        ("ratio >= 2", GUARDED_HIGH, D(6), D(4), (False, D(-2))),
        ("ratio > 2", GUARDED_HIGH, D(8), D(4), (False, D(0))),  # a tie
        # outside, the sentinel: linear 5 + 2 = 7 has the sign of 999999 - 2, so it is kept
        ("ratio >= 2", GUARDED_HIGH, D(5), D(-1), (True, D(7))),
        # outside, linear -5 + 2 = -3 has the wrong sign: the plain 999999 - 2 instead
        ("ratio >= 2", GUARDED_HIGH, D(-5), D(-1), (True, D(999997))),
        ("ratio >= 2", GUARDED_HIGH, D(-5), D(0), (True, D(999997))),
        # `else 0`: outside, the linear 5 - 0 is positive but the condition 0 >= 2 is false
        ("ratio >= 2", GUARDED_ZERO, D(5), D(0), (False, D(-2))),
        ("ratio >= 2", GUARDED_ZERO, D(-5), D(-1), (False, D(-3))),  # same sign: linear
        ("ratio >= 2", GUARDED_ZERO, D(10), D(4), (True, D(2))),
        # `<=`: c*y - x
        ("ratio <= 2", GUARDED_ZERO, D(10), D(4), (False, D(-2))),
        ("ratio <= 2", GUARDED_ZERO, D(4), D(4), (True, D(4))),
        ("ratio <= 2", GUARDED_ZERO, D(5), D(0), (True, D(2))),  # outside: plain 2 - 0
        ("ratio < 2", GUARDED_ZERO, D(8), D(4), (False, D(0))),  # a tie
    ],
)
def test_residual_of_guarded_ratio_is_linear(
    load: Load,
    trigger: str,
    definition: str,
    a: Decimal,
    c: Decimal,
    expected: tuple[bool, Decimal],
) -> None:
    assert evaluate(load(trigger, definition), a=a, c=c) == expected


def test_residual_of_direct_ratio_is_linear_where_divisor_positive(load: Load) -> None:
    policy = load(f"{A} / {C} >= 2")
    assert evaluate(policy, a=D(10), c=D(4)) == (True, D(2))
    # c < 0: linear 10 + 8 = 18 is positive, but the ratio -2.5 is below 2: plain -4.5
    assert evaluate(policy, a=D(10), c=D(-4)) == (False, D("-4.5"))
    # c < 0 with the same sign: linear -10 + 8 = -2 and plain 2.5 - 2 > 0 disagree: plain
    assert evaluate(policy, a=D(-10), c=D(-4)) == (True, D("0.5"))


# --- signs --------------------------------------------------------------------------------------

# (trigger, definitions, exact): `exact` conditions use only `>=`/`<=` under `and`/`or`, so
# even a zero residual decides them (residual >= 0 exactly where the condition holds).
COMBINATIONS = [
    (f"{A} >= {B}", (), True),
    (f"{A} > {B}", (), False),
    (f"{A} <= {B}", (), True),
    (f"{A} < {B}", (), False),
    (f"{A} >= {B} and {C} <= {T}", (), True),
    (f"{A} >= {B} or {C} <= {T}", (), True),
    (f"{A} > {B} or {C} < {T}", (), False),
    (f"({A} >= {B} or {C} >= 2 * {T}) and {A} + {C} <= {T}", (), True),
    (f"not ({A} >= {B})", (), False),
    (f"not ({A} > {B} and {C} >= {T})", (), False),
    (f"not ({A} <= {B}) or not ({C} < {T} or {T} >= 1)", (), False),
    (f'{A} >= {B} and position.side == "long"', (), True),
    (f'{A} - {B} * 3 > {C} or not (position.side == "short")', (), False),
    ("breach or not calm", (f"breach: {A} >= {B}", f"calm: {C} < {T} and {T} > 0"), False),
    ("breach and wide", (f"breach: {A} <= {B}", f"wide: {C} >= {T} or breach"), True),
]


@pytest.mark.parametrize(("trigger", "definitions", "exact"), COMBINATIONS)
@given(a=amounts, b=amounts, c=amounts, t=amounts, side=sides)
def test_residual_sign_agrees_with_condition(
    load: Load,
    trigger: str,
    definitions: tuple[str, ...],
    exact: bool,
    a: Decimal,
    b: Decimal,
    c: Decimal,
    t: Decimal,
    side: str,
) -> None:
    condition, residual = evaluate(load(trigger, *definitions), a=a, b=b, c=c, t=t, side=side)
    assert agrees(condition, residual), (condition, residual)
    if exact:
        assert (residual >= 0) == condition, (condition, residual)


# (trigger, definition, guard, linear, exact): where `guard(c, b)` holds the residual is exactly
# `linear(a, c, t)`; elsewhere only its sign is checked.  A strict trigger (`exact` false) is
# checked with the sign rule, ties included: outside the guard a tie of the plain residual (0)
# must not fall back to a positive linear `x - c*y` (e.g. `ratio < t` with `else 0` at t = 0,
# x < 0), since the condition is false there.
RATIOS: list[
    tuple[
        str,
        str,
        Callable[[Decimal, Decimal], bool],
        Callable[[Decimal, Decimal, Decimal], Decimal] | None,
        bool,
    ]
] = [
    ("ratio >= 2", GUARDED_HIGH, lambda c, b: c > 0, lambda a, c, t: a - 2 * c, True),
    ("ratio >= 2", GUARDED_ZERO, lambda c, b: c > 0, lambda a, c, t: a - 2 * c, True),
    ("ratio > 2", GUARDED_ZERO, lambda c, b: c > 0, lambda a, c, t: a - 2 * c, False),
    (f"ratio >= {T}", GUARDED_ZERO, lambda c, b: c > 0, lambda a, c, t: a - t * c, True),
    ("ratio <= 2", GUARDED_ZERO, lambda c, b: c > 0, lambda a, c, t: 2 * c - a, True),
    ("ratio <= 2", GUARDED_HIGH, lambda c, b: c > 0, lambda a, c, t: 2 * c - a, True),
    (f"ratio < {T}", GUARDED_ZERO, lambda c, b: c > 0, lambda a, c, t: t * c - a, False),
    (f"ratio <= {T}", GUARDED_HIGH, lambda c, b: c > 0, lambda a, c, t: t * c - a, True),
    (
        f"ratio >= {T}",
        f"ratio: if {B} > 1 and {C} > 0 then {A} / {C} else 0",
        lambda c, b: b > 1 and c > 0,
        lambda a, c, t: a - t * c,
        True,
    ),
    # a guard that never makes the divisor positive: always the fallback
    ("ratio >= 2", f"ratio: if {C} < 0 then {A} / {C} else 0", lambda c, b: False, None, True),
    ("ratio <= 2", f"ratio: if {C} < 0 then {A} / {C} else 7", lambda c, b: False, None, True),
]


@pytest.mark.parametrize(("trigger", "definition", "guard", "linear", "exact"), RATIOS)
@given(a=amounts, b=amounts, c=amounts, t=amounts)
def test_residual_sign_agrees_with_ratio_condition(
    load: Load,
    trigger: str,
    definition: str,
    guard: Callable[[Decimal, Decimal], bool],
    linear: Callable[[Decimal, Decimal, Decimal], Decimal] | None,
    exact: bool,
    a: Decimal,
    b: Decimal,
    c: Decimal,
    t: Decimal,
) -> None:
    condition, residual = evaluate(load(trigger, definition), a=a, b=b, c=c, t=t)
    if exact:
        assert (residual >= 0) == condition, (condition, residual)
    else:
        assert agrees(condition, residual), (condition, residual)
    if linear is not None and guard(c, b):
        with decimal.localcontext(DECIMAL_CONTEXT):
            assert residual == linear(a, c, t)


@pytest.mark.parametrize(
    ("trigger", "linear"),
    [
        (f"{A} / {C} >= {T}", lambda a, c, t: a - t * c),
        (f"{A} / {C} <= {T}", lambda a, c, t: t * c - a),
        (f"{A} / {C} > 2", lambda a, c, t: a - 2 * c),
    ],
)
@given(a=amounts, c=amounts.filter(lambda v: v != 0), t=amounts)
def test_residual_sign_agrees_with_direct_ratio(
    load: Load,
    trigger: str,
    linear: Callable[[Decimal, Decimal, Decimal], Decimal],
    a: Decimal,
    c: Decimal,
    t: Decimal,
) -> None:
    condition, residual = evaluate(load(trigger), a=a, c=c, t=t)
    assert agrees(condition, residual), (condition, residual)
    if c > 0:
        with decimal.localcontext(DECIMAL_CONTEXT):
            assert residual == linear(a, c, t)
