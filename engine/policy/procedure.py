"""The liquidation procedure a policy declares, as plain values the mechanics read.

Expressions stay in :attr:`Policy.expressions`, keyed by their dotted location
(`liquidation.steps.0.quantity`); these records only say which key to evaluate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.dsl.types import BOOL, NUMBER, Type
from engine.numbers import parse_decimal

# Where expressions live outside `definitions`, the type each must have, and what to call it.
# `*` stands for any list index.
EXPRESSION_SLOTS: tuple[tuple[tuple[str, ...], Type, str], ...] = (
    (("liquidation", "trigger"), BOOL, "the liquidation trigger"),
    (("liquidation", "bankruptcy"), BOOL, "the bankruptcy condition"),
    (("liquidation", "liquidation_price", "formula"), NUMBER, "the liquidation price formula"),
    (("liquidation", "bankruptcy_price", "formula"), NUMBER, "the bankruptcy price formula"),
    (("liquidation", "steps", "*", "when"), BOOL, "a step's condition"),
    (("liquidation", "steps", "*", "quantity"), NUMBER, "a step's quantity"),
    (("liquidation", "steps", "*", "limit_price"), NUMBER, "a step's limit price"),
    (("liquidation", "fill", "price"), NUMBER, "the fill price"),
    (("liquidation", "fill", "settlement_price"), NUMBER, "the settlement price"),
    (("liquidation", "fees", "*", "amount"), NUMBER, "a fee amount"),
    (("liquidation", "fees", "*", "when"), BOOL, "a fee condition"),
    (("liquidation", "surplus_to_insurance_fund"), NUMBER, "the surplus rule"),
    (("waterfall", "adl", "ranking"), NUMBER, "the ADL ranking"),
    (("waterfall", "adl", "eligible"), BOOL, "the ADL eligibility"),
    (("waterfall", "adl", "price"), NUMBER, "the ADL price"),
    (("charges", "*", "amount"), NUMBER, "a charge amount"),
)

# The slots evaluated for one liquidation order, where `order` is in scope.  Everywhere else an
# expression reading `order`, directly or through definitions, could only fail at run time, so
# it is refused at load (E310).
ORDER_SLOTS: frozenset[tuple[str, ...]] = frozenset(
    {
        ("liquidation", "steps", "*", "limit_price"),
        ("liquidation", "fill", "price"),
        ("liquidation", "fill", "settlement_price"),
        ("liquidation", "fees", "*", "amount"),
        ("liquidation", "fees", "*", "when"),
        ("liquidation", "surplus_to_insurance_fund"),
        ("waterfall", "adl", "price"),
    }
)


def has_order(pointer: tuple[str | int, ...]) -> bool:
    """Whether the expression at `pointer` is evaluated with an `order` in scope."""
    shape = tuple("*" if isinstance(part, int) else part for part in pointer)
    return shape in ORDER_SLOTS


REQUIRED_DEFINITIONS = (
    "notional",
    "unrealized_pnl",
    "maintenance_margin",
    "margin_balance",
    "margin_ratio",
)

DEFAULT_BANKRUPTCY = "margin_balance <= 0"

# Suffix of the compiled numeric residual of a condition (`liquidation.trigger#residual`).
RESIDUAL = "#residual"


def key_of(pointer: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in pointer)


def expression_locations(
    data: Mapping[str, Any],
) -> list[tuple[tuple[str | int, ...], str, Type, str]]:
    """Every expression outside `definitions`: (pointer, text, expected type, what)."""
    found: list[tuple[tuple[str | int, ...], str, Type, str]] = []
    for pattern, expected, what in EXPRESSION_SLOTS:
        nodes: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
        for part in pattern:
            following: list[tuple[tuple[str | int, ...], Any]] = []
            for pointer, node in nodes:
                if part == "*" and isinstance(node, list):
                    following += [((*pointer, i), item) for i, item in enumerate(node)]
                elif isinstance(node, Mapping) and part in node:
                    following.append(((*pointer, part), node[part]))
            nodes = following
        found += [
            (pointer, node, expected, what) for pointer, node in nodes if isinstance(node, str)
        ]
    return found


@dataclass(frozen=True, slots=True)
class PriceRule:
    rounding: str = "trigger"
    step: Decimal | None = None
    formula: str | None = None  # expression key


@dataclass(frozen=True, slots=True)
class Step:
    index: int
    name: str
    kind: str
    repeat: int
    when: str | None  # expression keys
    quantity: str | None
    limit_price: str | None = None  # `reduce` only: an immediate-or-cancel limit


@dataclass(frozen=True, slots=True)
class Fee:
    index: int
    name: str
    kind: str
    to: str
    amount: str
    when: str | None


@dataclass(frozen=True, slots=True)
class Procedure:
    """What happens once the trigger fires; every field has a documented default."""

    trigger: str | None
    bankruptcy: str | None
    price_inputs: tuple[str, ...]
    liquidation_price: PriceRule
    bankruptcy_price: PriceRule
    steps: tuple[Step, ...]
    fill_price: str | None
    settlement_price: str | None
    fees: tuple[Fee, ...]
    consumption_order: tuple[str, ...]
    surplus_to_insurance_fund: str | None

    @property
    def has_procedure(self) -> bool:
        return bool(self.steps)


def _key_if(section: Mapping[str, Any], name: str, *prefix: str | int) -> str | None:
    return key_of((*prefix, name)) if isinstance(section.get(name), str) else None


def _price_rule(data: Mapping[str, Any], name: str) -> PriceRule:
    spec = data.get(name, {})
    step = spec.get("step")
    return PriceRule(
        rounding=spec.get("rounding", "trigger"),
        step=parse_decimal(str(step)) if step is not None else None,
        formula=_key_if(spec, "formula", "liquidation", name),
    )


def build_procedure(data: Mapping[str, Any]) -> Procedure:
    """Read the `liquidation` section (already schema-valid) into a :class:`Procedure`."""
    liquidation = data.get("liquidation", {})
    steps = tuple(
        Step(
            index=i,
            name=step["name"],
            kind=step["kind"],
            repeat=int(step.get("repeat", 1)),
            when=_key_if(step, "when", "liquidation", "steps", i),
            quantity=_key_if(step, "quantity", "liquidation", "steps", i),
            limit_price=_key_if(step, "limit_price", "liquidation", "steps", i),
        )
        for i, step in enumerate(liquidation.get("steps", []))
    )
    fees = tuple(
        Fee(
            index=i,
            name=fee["name"],
            kind=fee.get("kind", "base"),
            to=fee.get("to", "insurance_fund"),
            amount=key_of(("liquidation", "fees", i, "amount")),
            when=_key_if(fee, "when", "liquidation", "fees", i),
        )
        for i, fee in enumerate(liquidation.get("fees", []))
    )
    fill = liquidation.get("fill", {})
    return Procedure(
        trigger=_key_if(liquidation, "trigger", "liquidation"),
        bankruptcy=_key_if(liquidation, "bankruptcy", "liquidation"),
        price_inputs=tuple(liquidation.get("price_inputs", ["mark_price"])),
        liquidation_price=_price_rule(liquidation, "liquidation_price"),
        bankruptcy_price=_price_rule(liquidation, "bankruptcy_price"),
        steps=steps,
        fill_price=_key_if(fill, "price", "liquidation", "fill"),
        settlement_price=_key_if(fill, "settlement_price", "liquidation", "fill"),
        fees=fees,
        consumption_order=tuple(liquidation.get("consumption_order", ["fees", "loss", "slippage"])),
        surplus_to_insurance_fund=_key_if(liquidation, "surplus_to_insurance_fund", "liquidation"),
    )


@dataclass(frozen=True, slots=True)
class Charge:
    index: int
    name: str
    at: str  # funding | interval
    every_seconds: int | None
    scope: str  # position | account
    amount: str  # expression key
    to: str
    accrue_to: str | None = None  # an account field (or `debt`) the amount is also added to


@dataclass(frozen=True, slots=True)
class Waterfall:
    """The loss waterfall after a unit's own margin; defaults: insurance fund, then write-off."""

    order: tuple[str, ...]
    pool: str
    adl_ranking: str | None
    adl_eligible: str | None
    adl_mode: str  # replace_market_sale | after_market_sale
    adl_price: str | None  # expression key; None: the bankrupt order's bankruptcy price
    adl_refresh_seconds: int
    clawback_cap: Decimal
    clawback_base: str
    clawback_step: Decimal | None
    waive_below: Decimal | None
    charges: tuple[Charge, ...]


def build_waterfall(data: Mapping[str, Any]) -> Waterfall:
    """Read `waterfall` and `charges` (already schema-valid) with their documented defaults."""
    spec = data.get("waterfall", {})
    adl = spec.get("adl", {})
    clawback = spec.get("clawback", {})
    debt = spec.get("debt", {})
    cap = clawback.get("cap")
    waive = debt.get("waive_below")
    charges = tuple(
        Charge(
            index=i,
            name=c["name"],
            at=c.get("at", "funding"),
            every_seconds=int(c["every_seconds"]) if "every_seconds" in c else None,
            scope=c.get("scope", "position"),
            amount=key_of(("charges", i, "amount")),
            to=c.get("to", "market"),
            accrue_to=c.get("accrue_to"),
        )
        for i, c in enumerate(data.get("charges", []))
    )
    return Waterfall(
        order=tuple(spec.get("order", ["insurance_fund", "write_off"])),
        pool=spec.get("insurance_fund", {}).get("pool", "shared"),
        adl_ranking=_key_if(adl, "ranking", "waterfall", "adl"),
        adl_eligible=_key_if(adl, "eligible", "waterfall", "adl"),
        adl_mode=adl.get("mode", "replace_market_sale"),
        adl_price=_key_if(adl, "price", "waterfall", "adl"),
        adl_refresh_seconds=int(adl.get("refresh_seconds", 0)),
        clawback_cap=parse_decimal(str(cap)) if cap is not None else Decimal(1),
        clawback_base=clawback.get("base", "equity"),
        clawback_step=parse_decimal(str(clawback["step"])) if "step" in clawback else None,
        waive_below=parse_decimal(str(waive)) if waive is not None else None,
        charges=charges,
    )
