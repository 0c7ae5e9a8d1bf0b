"""The structure pass: a policy against its JSON Schema, quickly, and without hiding later errors.

Two things make it more than one `jsonschema` call:

- Speed. A policy covering hundreds of markets has thousands of table rows, and validating them
  with `jsonschema` costs far more than the rest of loading.  Tables and markets that a quick
  check (mirroring the schema, derived from it) finds plainly valid skip the validator; anything
  unusual still goes through it, which also writes the located messages.
- Completeness. A schema error used to stop the load, hiding every expression and waterfall
  error behind it.  Now the parts a schema error is in are pruned from a copy of the data, and
  the later passes run on what is left; :class:`Pruned` remembers what was dropped so that later
  passes do not report consequences ("unknown table") of an error already reported.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.policy.packaged import load_schema
from engine.policy.schema import Locate, Pointer, schema_problems
from engine.source import Diagnostic

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_DECIMAL_TEXT = re.compile(r"[+-]?[0-9][0-9_]*(\.[0-9][0-9_]*)?([eE][+-]?[0-9]+)?")


@functools.cache
def _market_rules() -> tuple[frozenset[str], frozenset[str], re.Pattern[str], re.Pattern[str]]:
    """Market keys, kinds, and the symbol and settlement-currency patterns, from the schema."""
    schema = load_schema("policy.schema.json")
    market = schema["$defs"]["market"]["properties"]
    symbol = schema["properties"]["markets"]["propertyNames"]["pattern"]
    currency = market["settlement_currency"]["pattern"]
    return (
        frozenset(market),
        frozenset(market["kind"]["enum"]),
        re.compile(symbol),
        re.compile(currency),
    )


@functools.cache
def _table_keys() -> frozenset[str]:
    return frozenset(load_schema("policy.schema.json")["$defs"]["table"]["properties"])


def _decimal(value: object) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite()
    return isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value) is not None


def _identifier(value: object) -> bool:
    return isinstance(value, str) and _IDENTIFIER.fullmatch(value) is not None


def plain_market(symbol: object, spec: object) -> bool:
    """True only when `spec` certainly satisfies the schema's `market` (any doubt: False)."""
    keys, kinds, symbol_pattern, currency_pattern = _market_rules()
    if not isinstance(symbol, str) or symbol_pattern.search(symbol) is None:
        return False
    if not isinstance(spec, dict) or not spec.keys() <= keys:
        return False
    for key, value in spec.items():
        if key == "kind":
            ok = value in kinds
        elif key in ("contract_size", "tick_size", "quantity_step"):
            ok = _decimal(value)
        elif key == "tiers":
            ok = _identifier(value)
        elif key == "instrument":
            ok = isinstance(value, str) and value != ""
        elif key == "settlement_currency":
            ok = isinstance(value, str) and currency_pattern.search(value) is not None
        elif key == "parameters":
            ok = isinstance(value, dict) and all(
                _identifier(k) and _decimal(v) for k, v in value.items()
            )
        else:  # source, assumption
            ok = isinstance(value, str)
        if not ok:
            return False
    return True


def plain_table(name: object, spec: object) -> bool:
    """True only when `spec` certainly satisfies the schema's `table` (any doubt: False)."""
    if not _identifier(name) or not isinstance(spec, dict) or not spec.keys() <= _table_keys():
        return False
    if not {"keys", "rows"} <= spec.keys():
        return False
    for key in ("description", "source", "assumption"):
        if key in spec and not isinstance(spec[key], str):
            return False
    keys, rows = spec["keys"], spec["rows"]
    if not isinstance(keys, list) or not keys:
        return False
    for item in keys:
        if not isinstance(item, dict) or item.keys() != {"name", "kind"}:
            return False
        if not _identifier(item["name"]) or item["kind"] not in ("interval", "exact"):
            return False
    deduction = spec.get("deduction")
    if deduction is not None and not (
        isinstance(deduction, dict)
        and deduction.keys() == {"rate", "amount"}
        and all(_identifier(v) for v in deduction.values())
    ):
        return False
    if not isinstance(rows, list) or not rows or not all(type(row) is dict for row in rows):
        return False
    names: set[str] = set().union(*rows)
    if not all(_identifier(name) for name in names):
        return False
    return all(type(v) in _CELL_TYPES for row in rows for v in row.values())


_CELL_TYPES = frozenset({Decimal, str, bool, type(None)})  # a reader's Decimal is always finite


@dataclass(slots=True)
class Pruned:
    """The data the later passes see, and what the structure pass took out of it.

    A list item taken out is left as None, so every other item keeps the index its diagnostics
    are located by; the later passes skip None items.
    """

    data: dict[str, Any]
    diagnostics: list[Diagnostic]
    dropped: set[Pointer] = field(default_factory=set)
    usable: bool = True
    reported: set[Pointer] = field(
        default_factory=set
    )  # units with a schema problem in them  # False: the data cannot be pruned into shape; stop after this pass

    def was_dropped(self, *pointer: str | int) -> bool:
        return tuple(pointer) in self.dropped


# Where to cut, per top-level key: how deep the unit that an error takes out lies.
_UNIT_DEPTH = {
    "sources": 2,
    "markets": 2,
    "tables": 2,
    "definitions": 2,
    "examples": 2,
    "charges": 2,
    "liquidation": 2,
    "waterfall": 2,
    "market_defaults": 1,
    "include": 1,
}
_ITEM_LISTS = {("liquidation", "steps"), ("liquidation", "fees")}


def _unit(pointer: Pointer) -> Pointer:
    """The part of the policy an error at `pointer` makes unusable."""
    if not pointer:
        return ()
    depth = _UNIT_DEPTH.get(str(pointer[0]), 1)
    if tuple(pointer[:2]) in _ITEM_LISTS:
        depth = 3
    return tuple(pointer[:depth])


def _drop(data: dict[str, Any], pointer: Pointer) -> None:
    node: Any = data
    for part in pointer[:-1]:
        node = node[part]
    last = pointer[-1]
    if isinstance(node, list) and isinstance(last, int):
        node[last] = None  # kept in place so the other items keep their index
    elif isinstance(node, dict):
        node.pop(last, None)


def _copy(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_copy(v) for v in node]
    return node


def _compacted(data: dict[str, Any]) -> dict[str, Any]:
    """A copy without the placeholders `_drop` leaves in lists, for validating what is left."""
    compact = dict(data)
    for key in ("sources", "examples", "charges"):
        if isinstance(data.get(key), list):
            compact[key] = [item for item in data[key] if item is not None]
    liquidation = data.get("liquidation")
    if isinstance(liquidation, dict):
        liquidation = compact["liquidation"] = dict(liquidation)
        for key in ("steps", "fees"):
            if isinstance(liquidation.get(key), list):
                liquidation[key] = [item for item in liquidation[key] if item is not None]
                if not liquidation[key]:
                    del liquidation[key]
    return compact


def _light(data: dict[str, Any]) -> dict[str, Any]:
    """`data` without the tables and markets the quick checks vouch for."""
    light = dict(data)
    for key, plain in (("tables", plain_table), ("markets", plain_market)):
        section = data.get(key)
        if isinstance(section, dict):
            light[key] = {k: v for k, v in section.items() if not plain(k, v)}
    return light


def check_structure(data: dict[str, Any], locate: Locate) -> Pruned:
    """Validate `data` against the policy schema; prune what is broken for the later passes."""
    problems = schema_problems(_light(data), "policy.schema.json", locate)
    diagnostics = [diagnostic for _, diagnostic in problems]
    if not problems:
        return Pruned(data, diagnostics)
    pruned: dict[str, Any] = _copy(data)
    dropped: set[Pointer] = set()
    reported: set[Pointer] = set()
    for pointer, diagnostic in problems:
        # an unknown key goes alone (`pointer` is the key's); any other error takes its unit
        unit = pointer if diagnostic.code == "E102" else _unit(pointer)
        reported.add(_unit(pointer))
        if not unit:  # the document itself, or a required top-level key: nothing to cut
            continue
        if _node(pruned, unit) is not None:
            _drop(pruned, unit)
            dropped.add(unit)
    usable = not schema_problems(_light(_compacted(pruned)), "policy.schema.json", locate)
    return Pruned(pruned, diagnostics, dropped, usable, reported)


def _node(data: Any, pointer: Pointer) -> Any:
    node = data
    for part in pointer:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]  # the two branches index different types
        else:
            return None
    return node


def dropped_names(pruned: Pruned, section: str) -> set[str]:
    """Names (keys) of the `section` entries the structure pass took out."""
    return {str(p[1]) for p in pruned.dropped if len(p) == 2 and p[0] == section}


def dropped_source_ids(original: Mapping[str, Any], pruned: Pruned) -> set[str]:
    """Ids of the sources the structure pass took out (to not report citations of them)."""
    sources = original.get("sources")
    ids: set[str] = set()
    if not isinstance(sources, list):
        return ids
    for pointer in pruned.dropped:
        if len(pointer) == 2 and pointer[0] == "sources" and isinstance(pointer[1], int):
            item = sources[pointer[1]] if pointer[1] < len(sources) else None
            if isinstance(item, Mapping) and isinstance(item.get("id"), str):
                ids.add(item["id"])
    return ids
