"""A working copy of an account and the evaluator that runs the policy against it.

Liquidation changes the account (positions shrink, margin moves), so each change builds a fresh
evaluation context: definitions are memoized per context, never across changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from engine.dsl.compile import in_engine_context
from engine.dsl.reference import evaluate_definition_reference, evaluate_reference
from engine.dsl.runtime import EvaluationContext, Frame, Value
from engine.mechanics.accounts import Account
from engine.mechanics.market_records import MarketRecords
from engine.mechanics.trace import Trace, subject_of
from engine.policy.model import Policy


class AccountState:
    """Mutable state of one account during an evaluation or a liquidation."""

    __slots__ = ("debt", "debt_age", "fields", "id", "market", "positions", "wallet_balance")

    def __init__(
        self, account: Account, market: dict[str, dict[str, Decimal]] | None = None
    ) -> None:
        self.id = account.id
        self.wallet_balance = account.wallet_balance
        self.positions: list[dict[str, Any]] = [dict(p) for p in account.positions]
        # A simulation passes one shared market dict, updated in place each step.
        self.market: dict[str, dict[str, Decimal]] = (
            market if market is not None else {s: dict(m) for s, m in account.market.items()}
        )
        self.debt = Decimal(0)
        self.debt_age = Decimal(0)
        self.fields: dict[str, Decimal] = dict(account.fields)  # the policy's account_fields

    def balance(self) -> Decimal:
        """Money the account holds: the wallet plus every isolated margin (debt is negative wallet)."""
        isolated = sum(
            (p["isolated_margin"] for p in self.positions if p["margin_mode"] == "isolated"),
            Decimal(0),
        )
        return self.wallet_balance + isolated

    def snapshot(self) -> Account:
        return Account(
            self.id,
            self.wallet_balance,
            tuple(dict(p) for p in self.positions),
            {s: dict(m) for s, m in self.market.items()},
            fields=dict(self.fields),
        )


class Evaluator:
    """Evaluates a policy's definitions and expressions for an account state.

    Compiled code by default; with a :class:`Trace`, the reference evaluator runs instead and
    records every definition with the values it read.  Create and use it inside the engine's
    decimal context (``decimal.localcontext(DECIMAL_CONTEXT)``), entered once per evaluation.
    """

    def __init__(self, policy: Policy, trace: Trace | None = None) -> None:
        if not in_engine_context():
            raise RuntimeError("an Evaluator runs inside decimal.localcontext(DECIMAL_CONTEXT)")
        self.policy = policy
        self.trace = trace
        if trace is not None:
            trace.definition_spans.update({n: d.span for n, d in policy.definitions.items()})
        self._markets_cache: tuple[Mapping[str, Any], MarketRecords] | None = None

    def context(
        self, state: AccountState, overrides: Mapping[str, Mapping[str, Decimal]] | None = None
    ) -> EvaluationContext:
        """A fresh context over the state's current positions, with optional market overrides."""
        markets = self.markets(state.market)
        if overrides:
            markets = markets.with_overrides(overrides)
        account = {
            **state.fields,
            "id": state.id,
            "wallet_balance": state.wallet_balance,
            "positions": state.positions,
            "debt": state.debt,
            "debt_age": state.debt_age,
        }
        return EvaluationContext(account, markets)

    def markets(self, data: Mapping[str, Mapping[str, Decimal]]) -> MarketRecords:
        """Market records (specification + data) for `data`, one set per market data object
        (each record merged when first read).

        A simulation shares one market data object across accounts and calls
        :meth:`market_changed` after updating it in place each step.
        """
        cached = self._markets_cache
        if cached is not None and cached[0] is data:
            return cached[1]
        records = MarketRecords(self.policy.markets, data)
        self._markets_cache = (data, records)
        return records

    def market_changed(self) -> None:
        self._markets_cache = None

    def frame(
        self,
        context: EvaluationContext,
        position: Mapping[str, Any],
        order: Mapping[str, Any] | None = None,
    ) -> Frame:
        frame = context.frame_for(position)
        if order is not None:
            frame = Frame(position, context.account, frame.market, context, order)
        return frame

    def definition(self, name: str, frame: Frame) -> Value:
        if self.trace is None:
            return self.policy.program.definitions[name].run(frame)
        compiled = self.policy.program.definitions[name]
        return evaluate_definition_reference(
            name, frame, compiled.definitions, tracer=self.trace.definition
        )

    def expression(self, key: str, frame: Frame, what: str = "expression") -> Value:
        compiled = self.policy.expressions[key]
        if self.trace is None:
            return compiled.run(frame)
        value = evaluate_reference(
            compiled.expr, frame, compiled.definitions, tracer=self.trace.definition
        )
        self.trace.add(
            "condition" if isinstance(value, bool) else what,
            key,
            value,
            compiled.expr.span,
            subject_of(frame),
        )
        return value

    def note(self, kind: str, name: str, text: str, subject: str | None = None) -> None:
        if self.trace is not None:
            self.trace.add(kind, name, text, None, subject)
