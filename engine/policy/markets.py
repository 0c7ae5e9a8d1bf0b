"""The markets pass: `market_defaults` applied, each market's specification, tiers and parameters.

`market_defaults` saves repeating what most markets share (kind, contract size, a parameter):
each market is the defaults with its own keys merged over them (`parameters` key by key).
Every market's tier table must have the same shape and every market the same parameter names,
so that `market.tiers` and `market.<parameter>` have one type in expressions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from engine.dsl.check import did_you_mean
from engine.dsl.table import Table
from engine.dsl.types import ANY, NUMBER, TableType, Type
from engine.numbers import parse_decimal
from engine.policy.model import Market
from engine.policy.tables import BuiltTable
from engine.policy.yaml_reader import Pointer
from engine.source import Diagnostic, Span

REQUIRED_MARKET_KEYS = ("kind", "contract_size", "tick_size")

Locate = Callable[[Pointer, bool], Span]
Cite = Callable[[Pointer, Mapping[str, Any], str], None]


def default_settlement_currency(kind: str, instrument: str) -> str:
    """The quote of `BASE/QUOTE` for a linear contract, its base for an inverse one.

    A ccxt-style settle suffix (`BTC/USD:BTC`) wins; a name without `/` is its own currency.
    """
    name, _, settle = instrument.partition(":")
    if settle:
        return settle
    base, slash, quote = name.partition("/")
    if not slash:
        return name
    return base if kind == "inverse" else quote


def with_defaults(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every market with `market_defaults` merged under it (`parameters` key by key)."""
    defaults = data.get("market_defaults") or {}
    markets: dict[str, dict[str, Any]] = {}
    for symbol, spec in (data.get("markets") or {}).items():
        merged = {**defaults, **spec}
        if "parameters" in defaults and "parameters" in spec:
            merged["parameters"] = {**defaults["parameters"], **spec["parameters"]}
        markets[symbol] = merged
    return markets


@dataclass(frozen=True, slots=True)
class Markets:
    """The markets pass's result: markets by symbol and the types `market.*` adds."""

    markets: dict[str, Market]
    tier_type: Type | None  # `market.tiers`: a table type, ANY when only broken tables, or None
    parameters: dict[str, Type]
    diagnostics: list[Diagnostic]


def build_markets(
    data: Mapping[str, Any],
    tables: Mapping[str, BuiltTable],
    broken_tables: set[str],
    locate: Locate,
    cite: Cite,
    reported: set[str] | None = None,
) -> Markets:
    """Check and build the markets of merged, schema-valid policy data."""
    diagnostics: list[Diagnostic] = []
    markets: dict[str, Market] = {}
    tier_type: TableType | None = None
    tier_owner = ""
    broken_tiers = False
    parameter_names: set[str] | None = None
    has_defaults = "market_defaults" in data
    declared = {**(data.get("tables") or {}), **tables}
    for symbol, spec in with_defaults(data).items():
        pointer: Pointer = ("markets", symbol)
        cite(pointer, spec, f"market '{symbol}'")
        missing = [key for key in REQUIRED_MARKET_KEYS if key not in spec]
        if missing and symbol in (reported or set()):
            continue  # a misspelt key is already reported: not also as a missing one
        if missing:
            where = ", and `market_defaults` gives none" if has_defaults else ""
            diagnostics.append(
                Diagnostic(
                    "E101",
                    f"market '{symbol}' has no {' or '.join(f'`{k}`' for k in missing)}{where}",
                    locate(pointer, True),
                    "every market needs kind, contract_size and tick_size, or `market_defaults`"
                    " giving them",
                )
            )
            continue
        table: Table | None = None
        if "tiers" in spec:
            name = spec["tiers"]
            built = tables.get(name)
            if built is None or built.type is None:
                broken_tiers = True
                if name not in declared and name not in broken_tables:
                    diagnostics.append(
                        Diagnostic(
                            "E405",
                            f"unknown table '{name}'",
                            locate((*pointer, "tiers"), False),
                            did_you_mean(name, declared),
                        )
                    )
            else:
                table = built.table
                shape = (built.type.keys, dict(built.type.row.fields))
                if tier_type is None:
                    tier_type, tier_owner = built.type, symbol
                elif shape != (tier_type.keys, dict(tier_type.row.fields)):
                    diagnostics.append(
                        Diagnostic(
                            "E406",
                            f"the tier table of '{symbol}' differs in keys or columns from the"
                            f" one of '{tier_owner}'",
                            locate((*pointer, "tiers"), False),
                            "`market.tiers` must look the same in every market",
                        )
                    )
        parameters = {k: parse_decimal(str(v)) for k, v in spec.get("parameters", {}).items()}
        if parameter_names is None:
            parameter_names = set(parameters)
        elif set(parameters) != parameter_names:
            differ = sorted(set(parameters) ^ parameter_names)
            diagnostics.append(
                Diagnostic(
                    "E406",
                    f"market '{symbol}' parameters differ from the other markets' ({', '.join(differ)})",
                    locate((*pointer, "parameters"), True),
                    "every market declares the same parameter names",
                )
            )
        instrument = spec.get("instrument", symbol)
        quantity_step = (
            parse_decimal(str(spec["quantity_step"])) if "quantity_step" in spec else None
        )
        record: dict[str, Any] = {
            "symbol": symbol,
            "kind": spec["kind"],
            "contract_size": parse_decimal(str(spec["contract_size"])),
            "tick_size": parse_decimal(str(spec["tick_size"])),
            **parameters,
        }
        if quantity_step is not None:
            record["quantity_step"] = quantity_step
        if table is not None:
            record["tiers"] = table
        markets[symbol] = Market(
            symbol=symbol,
            kind=spec["kind"],
            contract_size=record["contract_size"],
            tick_size=record["tick_size"],
            tiers=table,
            parameters=MappingProxyType(parameters),
            record=MappingProxyType(record),
            instrument=instrument,
            quantity_step=quantity_step,
            settlement_currency=spec.get("settlement_currency")
            or default_settlement_currency(spec["kind"], instrument),
        )
    generic: Type | None = None
    if tier_type is not None:
        generic = TableType("tiers", tier_type.keys, tier_type.row)
    elif broken_tiers:
        generic = ANY  # the broken table is reported; do not also report `market.tiers`
    return Markets(markets, generic, dict.fromkeys(parameter_names or set(), NUMBER), diagnostics)


def quantity_step_problems(
    markets: Mapping[str, Market], reads: list[Span], locate: Locate
) -> list[Diagnostic]:
    """`market.quantity_step` is read by an expression: every market must declare one."""
    if not reads:
        return []
    lacking = [symbol for symbol, market in markets.items() if market.quantity_step is None]
    return [
        Diagnostic(
            "E427",
            f"market '{symbol}' has no `quantity_step`, which the policy's expressions read",
            locate(("markets", symbol), True),
            f"add `quantity_step:` to the market (or to `market_defaults`); it is read at"
            f" {reads[0].location()}",
        )
        for symbol in lacking
    ]


def missing_instrument_diagnostics(
    policy_id: str,
    markets: Mapping[str, Market],
    missing: Mapping[str, list[str]],
    path: str,
) -> list[Diagnostic]:
    """One E620 per instrument a book trades and the policy lacks, with the fix.

    `missing` maps each instrument to where it is traded ("account a1, position 1").  A market
    whose symbol spells the instrument without separators (`BTCUSDT` for `BTC/USDT`) most likely
    lacks `instrument:` (which defaults to the symbol): the hint names it and the line to add.
    """
    diagnostics: list[Diagnostic] = []
    for instrument, places in missing.items():
        letters = "".join(ch for ch in instrument.split(":")[0] if ch.isalnum()).upper()
        likely = [
            symbol
            for symbol, market in markets.items()
            if "".join(ch for ch in symbol if ch.isalnum()).upper() == letters
            and market.instrument != instrument
        ]
        if likely:
            hint = (
                f"market '{likely[0]}' has instrument '{markets[likely[0]].instrument}'"
                f" (a market without `instrument:` is named by its symbol): add"
                f" `instrument: {instrument}` to it"
            )
        else:
            known = ", ".join(sorted({m.instrument for m in markets.values()})[:10])
            hint = (
                f"add a market with `instrument: {instrument}`; the policy's instruments: {known}"
            )
        shown = "; ".join(places[:3]) + (f" and {len(places) - 3} more" if len(places) > 3 else "")
        diagnostics.append(
            Diagnostic(
                "E620",
                f"{policy_id} has no market for instrument '{instrument}', traded by"
                f" {len(places)} position{'s' if len(places) != 1 else ''} ({shown})",
                path=path,
                hint=hint,
            )
        )
    return diagnostics
