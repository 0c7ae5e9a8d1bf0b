"""`liqpolicy new NAME --like POLICY`: a new policy to fill in, shaped like an existing one.

The scaffold keeps POLICY's rules (definitions, liquidation, waterfall, charges) so it loads and
runs from the first minute, and marks everything that must become the new venue's own: its
sources are one entry to fill in, every rule that cited POLICY's sources is marked as an
assumption to replace ("TODO"), one market and its tier table stand for the venue's markets,
and one example waits for the venue's published numbers.  Nothing of POLICY's is presented as
the new venue's: the markers say where each value was copied from.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from engine.numbers import format_decimal
from engine.policy.model import Policy

TOP_ORDER = (
    "id",
    "title",
    "description",
    "valid_from",
    "valid_until",
    "sources",
    "market_defaults",
    "markets",
    "tables",
    "definitions",
    "liquidation",
    "waterfall",
    "charges",
    "examples",
)
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_ ./()%<>=+*-]*")
_KEYWORDS = {"null", "true", "false", "yes", "no", "on", "off", "~"}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format_decimal(value)
    text = str(value)
    if (
        _PLAIN.fullmatch(text)
        and text.lower() not in _KEYWORDS
        and not text.endswith(" ")
        and ": " not in text
        and " #" not in text
    ):
        return text
    if "'" not in text:
        return f"'{text}'"
    return json.dumps(text, ensure_ascii=False)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, Mapping | list)


def _flow(mapping: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {_scalar(v)}" for k, v in mapping.items()) + "}"


def emit(value: Any, indent: int = 0) -> list[str]:
    """Block YAML for plain data (the YAML reader reads it back as the same data)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, str) and "\n" in item:
                lines.append(f"{pad}{key}: |")
                lines += [
                    f"{pad}  {line}" if line else "" for line in item.rstrip("\n").split("\n")
                ]
            elif _is_scalar(item):
                lines.append(f"{pad}{key}: {_scalar(item)}")
            elif isinstance(item, list) and all(_is_scalar(v) for v in item):
                lines.append(f"{pad}{key}: [{', '.join(_scalar(v) for v in item)}]")
            elif not item:
                lines.append(f"{pad}{key}: {'{}' if isinstance(item, Mapping) else '[]'}")
            else:
                lines.append(f"{pad}{key}:")
                lines += emit(item, indent + 2)
    else:
        for item in value:
            if isinstance(item, Mapping) and item and all(_is_scalar(v) for v in item.values()):
                lines.append(f"{pad}- {_flow(item)}")  # a table row, a key: one line each
                continue
            if _is_scalar(item):
                lines.append(f"{pad}- {_scalar(item)}")
                continue
            inner = emit(item, indent + 2)
            lines.append(f"{pad}- {inner[0].lstrip()}")
            lines += inner[1:]
    return lines


_NO_ASSUMPTION = ("liquidation_price", "bankruptcy_price")  # price rules cite, but assume nothing


def _uncited(node: Any, like: str, key: str = "") -> Any:
    """`node` with every `source:` replaced by an assumption saying where it was copied from."""
    if isinstance(node, list):
        return [_uncited(item, like) for item in node]
    if not isinstance(node, Mapping):
        return node
    result = {k: _uncited(v, like, str(k)) for k, v in node.items() if k != "source"}
    if "source" in node and key not in _NO_ASSUMPTION:
        before = f" Its assumption there: {node['assumption']}" if node.get("assumption") else ""
        result["assumption"] = (
            f"TODO: copied from {like} (which cites {node['source']}); cite this venue's own"
            f" rule or say why it applies.{before}"
        )
    return result


def scaffold(name: str, like: Policy, schema: str, *, command: str) -> str:
    """The text of a new policy `name` shaped like `like`, with its schema modeline."""
    data = dict(like.data)
    today = datetime.date.today().isoformat()
    traded = [p.get("symbol") for e in like.examples for p in e.account.get("positions", [])]
    symbol = next((s for s in traded if s in like.markets), next(iter(like.markets), None))
    new: dict[str, Any] = {
        "id": name,
        "title": f"TODO: the venue and contracts {name} models",
        "description": (
            f"TODO: what this policy models and what it leaves out. Scaffolded from {like.id}:"
            " every value marked TODO is still that policy's and must become this venue's own.\n"
        ),
        "sources": [
            {
                "id": f"{name}-rules",
                "url": "https://TODO",
                "title": "TODO: the venue's rules page",
                "retrieved": today,
                "note": "TODO: official / code / third-party, and what it supports",
            }
        ],
    }
    if symbol is not None:
        market = like.markets[symbol]
        spec = (data.get("markets") or {}).get(symbol, {})
        merged = {**(data.get("market_defaults") or {}), **spec}
        keep = ("kind", "instrument", "contract_size", "tick_size", "quantity_step", "tiers")
        entry: dict[str, Any] = {k: merged[k] for k in keep if k in merged}
        entry["instrument"] = market.instrument
        if market.parameters:
            entry["parameters"] = dict(market.parameters)
        entry["assumption"] = (
            f"TODO: the specification of {like.id}'s {symbol}; give this venue's own and cite it"
        )
        new["markets"] = {symbol: entry}
        tables: dict[str, Any] = {}
        if market.tiers is not None:
            table = market.tiers
            tables[table.name] = {
                "description": f"TODO: {like.id}'s {table.name}; replace with this venue's tiers"
                " (`liqpolicy tiers import` reads the venues' files)",
                "assumption": f"TODO: copied from {like.id}",
                "keys": [{"name": k.name, "kind": k.kind} for k in table.type.keys],
                "rows": [{k: v for k, v in row.items() if k != "tier"} for row in table.rows],
            }
        tier_tables = {m.tiers.name for m in like.markets.values() if m.tiers is not None}
        for other, spec_table in (data.get("tables") or {}).items():
            if other not in tier_tables:  # lookup tables the rules read, not per-market tiers
                tables[other] = _uncited(spec_table, like.id)
        if tables:
            new["tables"] = tables
    for key in ("definitions", "liquidation", "waterfall", "charges"):
        if key in data:
            new[key] = _uncited(data[key], like.id)
    if symbol is not None:
        example = next(
            (
                e
                for e in like.examples
                if all(p.get("symbol") == symbol for p in e.account.get("positions", []))
            ),
            None,
        )
        if example is not None:
            account = dict(example.account)
            new["examples"] = [
                {
                    "name": "TODO: the venue's published example",
                    "description": (
                        f"TODO: an account from the venue's own worked example (this one is"
                        f" {like.id}'s '{example.name}'), and the values it publishes"
                    ),
                    "account": account,
                    "expect": {"trigger": example.expect.get("trigger", False)}
                    if "trigger" in example.expect
                    else dict(example.expect),
                }
            ]
    ordered = {k: new[k] for k in TOP_ORDER if k in new}
    head = [
        f"# yaml-language-server: $schema={schema}",
        f"# Written by `{command}` on {today}, shaped like {like.id}.",
        "# Replace every TODO with the venue's own rule and its source; `liqpolicy validate` and",
        "# `liqpolicy test` check what you have so far. See docs/authoring.md.",
    ]
    return "\n".join([*head, *_spaced(emit(ordered))]) + "\n"


def _spaced(lines: list[str]) -> list[str]:
    """A blank line before each top-level section after the first few scalars."""
    result: list[str] = []
    for line in lines:
        if line and not line.startswith(" ") and line.endswith(":") and result:
            result.append("")
        result.append(line)
    return result
