"""Run the worked examples kept in policy files (`liqpolicy test`)."""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.errors import EngineError
from engine.mechanics.accounts import parse_account
from engine.mechanics.evaluate import AccountResult, PositionResult, evaluate_account
from engine.mechanics.state import AccountState, Evaluator
from engine.numbers import DECIMAL_CONTEXT, ZERO, format_decimal
from engine.policy.model import Example, Policy
from engine.source import Span


@dataclass(frozen=True, slots=True)
class Mismatch:
    what: str
    expected: str
    actual: str

    def as_dict(self) -> dict[str, str]:
        return {"what": self.what, "expected": self.expected, "actual": self.actual}


@dataclass(frozen=True, slots=True)
class ExampleResult:
    """One worked example run: passed, or the expectations it missed (or the error)."""

    policy_id: str
    name: str
    span: Span
    mismatches: tuple[Mismatch, ...]
    error: str | None = None

    @property
    def passed(self) -> bool:
        return not self.mismatches and self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy_id,
            "example": self.name,
            "passed": self.passed,
            "location": f"{self.span.path}:{self.span.line}",
            "mismatches": [m.as_dict() for m in self.mismatches],
            "error": self.error,
        }


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format_decimal(value)
    return str(value)


def _same(expected: Any, actual: Any, tolerance: Decimal) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, Decimal) and isinstance(actual, Decimal):
        return abs(expected - actual) <= tolerance
    return bool(expected == actual)


def _position(result: AccountResult, symbol: str | None) -> PositionResult | None:
    for position in result.positions:
        if symbol is None or position.symbol == symbol:
            return position
    return None


def _outcome(result: AccountResult, position: PositionResult) -> Mapping[str, Any] | None:
    for liquidation in result.liquidations:
        statement = liquidation.statement
        if any(o.symbol == position.symbol for o in statement.orders) or (
            statement.unit == "cross" and position.margin_mode == "cross"
        ):
            consumed: dict[str, Decimal] = {}
            for order in statement.orders:
                for category, amount in order.consumed:
                    consumed[category] = consumed.get(category, ZERO) + amount
            return {
                "orders": Decimal(len(statement.orders)),
                "closed_quantity": statement.closed_quantity,
                "fees": statement.fees_collected,
                "shortfall": statement.shortfall,
                "surplus_to_insurance_fund": statement.surplus_to_insurance_fund,
                "final_balance": statement.final_balance,
                "fully_liquidated": statement.fully_liquidated,
                "starting_margin": statement.starting_margin,
                "margin_consumed": consumed,
            }
    return None


def _decimal(value: Any) -> Any:
    """Whole numbers from the policy file as decimals (booleans stay booleans)."""
    return Decimal(value) if isinstance(value, int) and not isinstance(value, bool) else value


def run_example(policy: Policy, example: Example) -> ExampleResult:
    """Evaluate one example and compare every expectation it states."""
    tolerance = example.tolerance or ZERO
    try:
        account = parse_account(example.account, policy)
        result = evaluate_account(policy, account)
    except EngineError as error:
        return ExampleResult(policy.id, example.name, example.span, (), str(error))
    position = _position(result, example.symbol)
    if position is None:
        return ExampleResult(
            policy.id, example.name, example.span, (), "the account has no position"
        )
    mismatches: list[Mismatch] = []

    def compare(what: str, expected: Any, actual: Any) -> None:
        if not _same(expected, actual, tolerance):
            mismatches.append(Mismatch(what, _show(expected), _show(actual)))

    expect = example.expect
    for name, expected in expect.get("definitions", {}).items():
        compare(f"definitions.{name}", expected, position.figures.get(name))
    if "trigger" in expect:
        compare("trigger", expect["trigger"], position.triggered)
    if "liquidation_price" in expect:
        compare("liquidation_price", expect["liquidation_price"], position.liquidation_price)
    if "bankruptcy_price" in expect:
        compare("bankruptcy_price", expect["bankruptcy_price"], position.bankruptcy_price)
    if "outcome" in expect:
        outcome = _outcome(result, position)
        if outcome is None:
            mismatches.append(Mismatch("outcome", "a liquidation", "none"))
        else:
            for name, expected in expect["outcome"].items():
                if isinstance(expected, Mapping):  # margin_consumed: per category
                    for category, amount in expected.items():
                        actual = outcome[name].get(category, ZERO)
                        compare(f"outcome.{name}.{category}", _decimal(amount), actual)
                else:
                    compare(f"outcome.{name}", _decimal(expected), outcome[name])
    mismatches += _formula_checks(policy, account, position)
    return ExampleResult(policy.id, example.name, example.span, tuple(mismatches))


def _formula_checks(policy: Policy, account: Any, position: PositionResult) -> list[Mismatch]:
    """A closed-form price formula in the policy must agree with the solver within one step."""
    with decimal.localcontext(DECIMAL_CONTEXT):
        return _formula_mismatches(policy, account, position)


def _formula_mismatches(policy: Policy, account: Any, position: PositionResult) -> list[Mismatch]:
    found: list[Mismatch] = []
    state = AccountState(account)
    evaluator = Evaluator(policy)
    target = next((p for p in state.positions if p["symbol"] == position.symbol), None)
    if target is None:
        return found
    tick = policy.markets[position.symbol].tick_size
    for what, rule, solved in (
        ("liquidation_price", policy.procedure.liquidation_price, position.liquidation_price),
        ("bankruptcy_price", policy.procedure.bankruptcy_price, position.bankruptcy_price),
    ):
        if rule.formula is None or solved is None:
            continue
        try:
            value = evaluator.expression(rule.formula, evaluator.context(state).frame_for(target))
        except EngineError as error:
            found.append(Mismatch(f"{what} formula", "a value", str(error)))
            continue
        if abs(value - solved) > (rule.step or tick):
            found.append(Mismatch(f"{what} formula vs solver", _show(solved), _show(value)))
    return found


def run_examples(policy: Policy) -> list[ExampleResult]:
    return [run_example(policy, example) for example in policy.examples]
