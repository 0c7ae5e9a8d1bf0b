"""Imported tier tables written as a file a policy includes: YAML to read, or JSON to load fast.

Both are YAML (JSON is YAML), so a policy includes either the same way; JSON is read by the JSON
parser, which matters when a file holds hundreds of tables.  Numbers are written exactly as read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal

from engine.numbers import format_decimal
from engine.policy.tier_import import ImportedTable, TierImport

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def _number(value: Decimal, grouped: bool) -> str:
    text = format_decimal(value)
    if not grouped:
        return text
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, dot, fraction = digits.partition(".")
    if len(whole) > 4 and whole.isdigit():
        whole = f"{int(whole):_}"
    return sign + whole + dot + fraction


def _scalar(value: object, yaml: bool) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return _number(value, grouped=yaml)
    text = str(value)
    if (
        yaml
        and _PLAIN.fullmatch(text)
        and text.lower() not in ("null", "true", "false", "yes", "no")
    ):
        return text
    return json.dumps(text, ensure_ascii=False)


def _flow(mapping: Mapping[str, object], yaml: bool) -> str:
    if yaml:
        return "{" + ", ".join(f"{k}: {_scalar(v, yaml)}" for k, v in mapping.items()) + "}"
    return "{" + ", ".join(f"{json.dumps(k)}: {_scalar(v, yaml)}" for k, v in mapping.items()) + "}"


def _description(table: ImportedTable) -> str:
    key = table.keys[-1][0]
    return f"{table.symbol}, read with the {table.layout.name} tier fields; {key} in [min_{key}, max_{key})"


def _table_parts(
    table: ImportedTable, source: str | None
) -> tuple[dict[str, object], list[dict[str, object]], dict[str, str] | None]:
    head: dict[str, object] = {"description": _description(table)}
    if source:
        head["source"] = source
    rows: list[dict[str, object]] = [dict(row) for row in table.rows]
    deduction = dict(table.layout.deduction) if table.layout.deduction else None
    if deduction and any(deduction["amount"] not in row for row in rows):
        deduction = None
    return head, rows, deduction


def _market(table: ImportedTable, source: str | None) -> dict[str, object]:
    market: dict[str, object] = {
        k: v for k, v in table.market.items() if k in ("kind", "instrument")
    }
    market["tiers"] = table.name
    if source:
        market["source"] = source
    return market


def render_yaml(result: TierImport, *, command: str, source: str | None, markets: bool) -> str:
    """The tables (and markets) as a YAML file to include, with where they came from."""
    lines = [
        f"# Tier tables imported by `{command}`",
        f"# from {result.path}, read as: {result.format.title}.",
        "# Include this file from a policy: `include: [<path of this file>]` (docs/authoring.md).",
        "tables:",
    ]
    for table in result.tables:
        head, rows, deduction = _table_parts(table, source)
        lines.append(f"  {table.name}:")
        lines += [f"    {k}: {_scalar(v, True)}" for k, v in head.items()]
        lines.append("    keys:")
        lines += [f"      - {{name: {name}, kind: {kind}}}" for name, kind in table.keys]
        if deduction:
            lines.append(f"    deduction: {_flow(deduction, True)}")
        lines.append("    rows:")
        lines += [f"      - {_flow(row, True)}" for row in rows]
    if markets:
        lines.append("markets:")
        for table in result.tables:
            symbol = _scalar(table.market["symbol"], True)
            lines.append(f"  {symbol}: {_flow(_market(table, source), True)}")
    return "\n".join(lines) + "\n"


def render_json(result: TierImport, *, source: str | None, markets: bool) -> str:
    """The same content as JSON, one row per line (loads with the JSON parser, see include)."""
    blocks: list[str] = []
    for table in result.tables:
        head, rows, deduction = _table_parts(table, source)
        parts = [f"{json.dumps(k)}: {_scalar(v, False)}" for k, v in head.items()]
        keys = ", ".join(_flow({"name": n, "kind": k}, False) for n, k in table.keys)
        parts.append(f'"keys": [{keys}]')
        if deduction:
            parts.append(f'"deduction": {_flow(deduction, False)}')
        body = ",\n      ".join(_flow(row, False) for row in rows)
        blocks.append(
            f'    {json.dumps(table.name)}: {{{", ".join(parts)},\n     "rows": [\n      {body}]}}'
        )
    text = '{\n  "tables": {\n' + ",\n".join(blocks) + "\n  }"
    if markets:
        entries = [
            f"    {json.dumps(t.market['symbol'])}: {_flow(_market(t, source), False)}"
            for t in result.tables
        ]
        text += ',\n  "markets": {\n' + ",\n".join(entries) + "\n  }"
    return text + "\n}\n"
