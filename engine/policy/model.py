"""The loaded, checked and compiled policy: immutable values, safe to share between threads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.dsl import ast
from engine.dsl.check import Scope
from engine.dsl.compile import CompiledExpression, Program
from engine.dsl.table import Table
from engine.dsl.types import Type
from engine.policy.procedure import Procedure, Waterfall
from engine.source import Diagnostic, Span


@dataclass(frozen=True, slots=True)
class Source:
    url: str
    title: str
    retrieved: str
    id: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Market:
    """A contract: its specification, tier table and parameters, as `market.*` sees them."""

    symbol: str
    kind: str
    contract_size: Decimal
    tick_size: Decimal
    tiers: Table | None
    parameters: Mapping[str, Decimal]
    record: Mapping[str, Any] = field(repr=False)  # the static part of the `market` record
    instrument: str = ""  # venue-neutral name, e.g. "BTC/USDT" (defaults to the symbol)
    quantity_step: Decimal | None = None
    settlement_currency: str = ""  # what margin, PnL and fees are counted in, e.g. "USDT"


@dataclass(frozen=True, slots=True)
class AccountField:
    """A number the policy adds to every account (`account_fields`), read as `account.<name>`."""

    name: str
    default: Decimal
    description: str
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Definition:
    name: str
    expr: ast.Expr
    type: Type
    span: Span
    description: str | None = None
    unit: str | None = None
    source: str | None = None
    assumption: str | None = None
    inputs: frozenset[str] = frozenset()  # the input roots it reads, through other definitions too


@dataclass(frozen=True, slots=True)
class Example:
    """A worked example kept in the policy file, run by `liqpolicy test`."""

    name: str
    account: Mapping[str, Any]
    expect: Mapping[str, Any]
    span: Span
    symbol: str | None = None
    tolerance: Decimal | None = None
    description: str | None = None
    source: str | None = None
    index: int = 0


@dataclass(frozen=True, slots=True)
class Policy:
    """A policy ready to run: every expression parsed, checked and compiled once."""

    id: str
    title: str
    path: str
    digest: str
    description: str | None
    extends: str | None
    chain: tuple[str, ...]
    sources: tuple[Source, ...]
    markets: Mapping[str, Market]
    tables: Mapping[str, Table]
    definitions: Mapping[str, Definition]
    expressions: Mapping[str, CompiledExpression]
    program: Program = field(repr=False)
    scope: Scope = field(repr=False)
    examples: tuple[Example, ...] = field(repr=False)
    procedure: Procedure = field(repr=False)
    waterfall: Waterfall = field(repr=False)
    data: Mapping[str, Any] = field(repr=False)
    warnings: tuple[Diagnostic, ...] = field(default=(), repr=False)
    account_fields: Mapping[str, AccountField] = field(default_factory=dict, repr=False)
    valid_from: str | None = None  # first day the modelled rulebook was in force (YYYY-MM-DD)
    valid_until: str | None = None  # last day it was in force; None: still in force

    @property
    def trigger(self) -> CompiledExpression:
        return self.expressions["liquidation.trigger"]

    def expression(self, key: str | None) -> CompiledExpression | None:
        """The compiled expression at a dotted location, or None when the policy has none."""
        return self.expressions.get(key) if key is not None else None

    def definition(self, name: str) -> CompiledExpression:
        return self.program.definitions[name]
