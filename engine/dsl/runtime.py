"""What expressions run against: frames of input records and a per-account evaluation context.

Records are plain mappings (`position`, `account`, `market`, table rows); a frame adds the memo
of definitions already evaluated for its position, so each definition runs at most once per
position per evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeAlias

from engine.numbers import format_decimal

Value: TypeAlias = Any  # Decimal | bool | str | record mapping | list of records | Table
Record: TypeAlias = Mapping[str, Any]

# Root names a frame carries; the policy layer decides their record types.
ROOTS = frozenset({"position", "account", "market", "order"})


class EvaluationContext:
    """One evaluation of one account: its positions' frames share this context."""

    __slots__ = ("account", "frames", "markets")

    def __init__(self, account: Record, markets: Mapping[str, Record]) -> None:
        self.account = account
        self.markets = markets
        self.frames: dict[int, Frame] = {}

    def frame_for(self, position: Record | None) -> Frame:
        """The frame of `position` (created once; its definition memo is shared)."""
        key = id(position)
        frame = self.frames.get(key)
        if frame is None:
            market = None if position is None else self.markets.get(position.get("symbol", ""))
            frame = Frame(position, self.account, market, self)
            self.frames[key] = frame
        return frame


class Frame:
    """Inputs visible to an expression, plus the memo of evaluated definitions."""

    __slots__ = ("account", "cache", "context", "market", "order", "position")

    def __init__(
        self,
        position: Record | None,
        account: Record,
        market: Record | None,
        context: EvaluationContext | None = None,
        order: Record | None = None,
    ) -> None:
        self.position = position
        self.account = account
        self.market = market
        self.order = order
        self.cache: dict[str, Value] = {}
        self.context = context if context is not None else EvaluationContext(account, {})

    def root(self, name: str) -> Value:
        if name == "position":
            return self.position
        if name == "account":
            return self.account
        if name == "market":
            return self.market
        return self.order


def frame(
    position: Record | None = None,
    account: Record | None = None,
    market: Record | None = None,
    markets: Mapping[str, Record] | None = None,
) -> Frame:
    """Build a standalone frame (tests, the `expr` command, one-off evaluations)."""
    account = account if account is not None else {}
    context = EvaluationContext(account, markets or {})
    result = Frame(position, account, market, context)
    if position is not None:
        context.frames[id(position)] = result
    return result


def show_value(value: Value) -> str:
    """Short text for a value in errors and traces."""

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, Mapping):
        return "{record}"
    if isinstance(value, list):
        return f"[{len(value)} records]"
    return type(value).__name__
