"""Evaluate an account under a policy: per-position figures, the trigger, and any liquidation."""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.dsl.types import RecordType
from engine.errors import EngineError
from engine.mechanics.account_frames import positions_frame
from engine.mechanics.accounts import Account
from engine.mechanics.liquidate import Liquidation, liquidate
from engine.mechanics.prices import (
    PriceFrames,
    bankruptcy_price,
    danger_direction,
    liquidation_price,
)
from engine.mechanics.state import AccountState, Evaluator
from engine.mechanics.trace import Trace, TraceEntry
from engine.numbers import DECIMAL_CONTEXT, format_decimal
from engine.policy.model import Policy

if TYPE_CHECKING:
    import pandas as pd


def _show(value: Any) -> Any:
    kind = type(value)
    if kind is Decimal:
        return format_decimal(value)
    if kind is bool or kind is str or value is None:
        return value
    if isinstance(value, Mapping):
        return {k: _show(v) for k, v in value.items() if k != "tiers"}
    return value


@dataclass(frozen=True, slots=True)
class PositionResult:
    """What a policy says about one position at the given market."""

    symbol: str
    side: str
    margin_mode: str
    size: Decimal
    figures: Mapping[str, Any]  # every definition of a scalar type, by name
    tiers: Mapping[str, Mapping[str, Any]]  # row-valued definitions (the tier rows used)
    effective_leverage: Decimal | None
    liquidation_price: Decimal | None
    bankruptcy_price: Decimal | None
    distance_to_liquidation: Decimal | None
    triggered: bool

    def figure(self, name: str) -> Any:
        return self.figures.get(name)

    def as_dict(self) -> dict[str, Any]:
        shown = {name: _show(value) for name, value in self.figures.items()}
        return {
            "symbol": self.symbol,
            "side": self.side,
            "margin_mode": self.margin_mode,
            "size": format_decimal(self.size),
            "notional": shown.get("notional"),
            "unrealized_pnl": shown.get("unrealized_pnl"),
            "maintenance_margin": shown.get("maintenance_margin"),
            "margin_balance": shown.get("margin_balance"),
            "margin_ratio": shown.get("margin_ratio"),
            "effective_leverage": _show(self.effective_leverage),
            "tiers": {name: _show(row) for name, row in self.tiers.items()},
            "liquidation_price": _show(self.liquidation_price),
            "bankruptcy_price": _show(self.bankruptcy_price),
            "distance_to_liquidation": _show(self.distance_to_liquidation),
            "triggered": self.triggered,
            "definitions": shown,
        }


@dataclass(frozen=True, slots=True)
class AccountResult:
    """The full answer for one account: figures, trigger, liquidations, trace."""

    policy_id: str
    policy_digest: str
    account_id: str
    positions: tuple[PositionResult, ...]
    liquidations: tuple[Liquidation, ...]
    after: Account
    trace: tuple[TraceEntry, ...] = field(default=())

    @property
    def triggered(self) -> bool:
        return any(p.triggered for p in self.positions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": {"id": self.policy_id, "digest": self.policy_digest},
            "account": self.account_id,
            "triggered": self.triggered,
            "positions": [p.as_dict() for p in self.positions],
            "liquidations": [item.as_dict() for item in self.liquidations],
            "account_after": self.after.as_dict() if self.liquidations else None,
            "trace": [entry.as_dict() for entry in self.trace],
        }

    def to_pandas(self, *, decimals: str = "exact") -> pd.DataFrame:
        """The account's positions as a DataFrame, one row each (needs ``liqpolicy[analysis]``;
        many results at once: ``engine.to_pandas(results)``).  Exact Decimals unless
        `decimals` is ``"float"``."""
        return positions_frame([self], decimals)


def _position_result(
    evaluator: Evaluator, state: AccountState, position: dict[str, Any]
) -> PositionResult:
    policy = evaluator.policy
    frame = evaluator.context(state).frame_for(position)
    figures: dict[str, Any] = {}
    tiers: dict[str, Mapping[str, Any]] = {}
    for name, definition in policy.definitions.items():
        if "order" in definition.inputs:
            continue  # about a liquidation order, which an account at rest has not
        try:
            value = evaluator.definition(name, frame)
        except EngineError:
            continue  # inputs this policy cannot evaluate here (e.g. an order-only definition)
        if isinstance(definition.type, RecordType):
            tiers[name] = value
        else:
            figures[name] = value
    triggered = False
    if "liquidation.trigger" in policy.expressions:
        triggered = bool(evaluator.expression("liquidation.trigger", frame))
    notional = figures.get("notional")
    balance = figures.get("margin_balance")
    leverage = figures.get("effective_leverage")
    if (
        leverage is None
        and isinstance(notional, Decimal)
        and isinstance(balance, Decimal)
        and balance > 0
    ):
        leverage = notional / balance
    frames = PriceFrames(evaluator, state, position, frame)
    solved = liquidation_price(evaluator, state, position, frames=frames)
    liquidation = solved.price
    bankrupt = bankruptcy_price(evaluator, state, position, frames, solved.boundary_tick).price
    mark = state.market.get(position["symbol"], {}).get("mark_price")
    distance = None
    if liquidation is not None and mark:
        distance = -danger_direction(position, state.positions) * (mark - liquidation) / mark
    return PositionResult(
        position["symbol"],
        position["side"],
        position["margin_mode"],
        position["size"],
        figures,
        tiers,
        leverage,
        liquidation,
        bankrupt,
        distance,
        triggered,
    )


def evaluate_account(
    policy: Policy, account: Account, *, trace: bool = False, run_liquidation: bool = True
) -> AccountResult:
    """Evaluate every position; when the trigger holds and the policy has steps, liquidate."""
    with decimal.localcontext(DECIMAL_CONTEXT):
        return _evaluate(policy, account, trace=trace, run_liquidation=run_liquidation)


def _evaluate(
    policy: Policy, account: Account, *, trace: bool, run_liquidation: bool
) -> AccountResult:
    collected = Trace() if trace else None
    evaluator = Evaluator(policy, collected)
    state = AccountState(account)
    results = tuple(_position_result(evaluator, state, p) for p in state.positions)
    liquidations: list[Liquidation] = []
    if run_liquidation and policy.procedure.has_procedure:
        units: list[list[dict[str, Any]]] = []
        cross = [p for p in state.positions if p["margin_mode"] == "cross"]
        for result, position in zip(results, list(state.positions), strict=True):
            if result.triggered and position["margin_mode"] == "isolated":
                units.append([position])
        if cross and any(r.triggered for r in results if r.margin_mode == "cross"):
            units.append(cross)
        inputs = account.as_dict() if units else {}
        for unit in units:
            liquidations.append(liquidate(evaluator, state, unit, inputs))
    return AccountResult(
        policy.id,
        policy.digest,
        account.id,
        results,
        tuple(liquidations),
        state.snapshot(),
        tuple(collected.entries) if collected else (),
    )
