"""Policy tables: rows checked column by column, typed, and numbered into tiers.

A table is checked on its own (its keys, its columns, its interval rows), so its problems are
all found before any market or expression refers to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from engine.dsl.table import Table, interval_problems
from engine.dsl.types import BOOL, NUMBER, STRING, RecordType, TableKey, TableType, Type
from engine.policy.yaml_reader import Pointer
from engine.source import Diagnostic, Span


def _type_of_value(value: object) -> Type:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, Decimal):
        return NUMBER
    return STRING


def build_table(
    name: str, spec: Mapping[str, Any], locate: Callable[[Pointer, bool], Span]
) -> tuple[Table | None, list[Diagnostic]]:
    """The table `name` of the policy, or None; with every problem, located by `locate`."""
    diagnostics: list[Diagnostic] = []

    def error(code: str, message: str, span: Span, hint: str | None = None) -> None:
        diagnostics.append(Diagnostic(code, message, span, hint))

    def at(pointer: Pointer, key: bool = False) -> Span:
        return locate(pointer, key)

    pointer: Pointer = ("tables", name)
    keys: list[TableKey] = []
    ok = True
    rows: list[Mapping[str, Any]] = spec["rows"]
    interval_keys = [k for k in spec["keys"] if k["kind"] == "interval"]
    if len(interval_keys) > 1:
        error(
            "E406",
            f"table '{name}' has {len(interval_keys)} interval keys, at most one is allowed",
            at((*pointer, "keys")),
        )
        return None, diagnostics
    required: list[str] = []
    for key in spec["keys"]:
        if key["kind"] == "interval":
            required.append(f"min_{key['name']}")
        else:
            required.append(key["name"])
    optional = {f"max_{k['name']}" for k in interval_keys}
    first = rows[0]
    columns = {c for c in first if c not in optional} | set(required)
    column_types: dict[str, Type] = {}
    for index, row in enumerate(rows):
        row_pointer = (*pointer, "rows", index)
        for column in required:
            if row.get(column) is None:
                error(
                    "E406",
                    f"row {index + 1} of table '{name}' lacks key column '{column}'",
                    at(row_pointer),
                )
                ok = False
        present = {c for c in row if c not in optional}
        for column in sorted(columns - present - set(required)):
            error(
                "E406",
                f"row {index + 1} of table '{name}' lacks column '{column}'",
                at(row_pointer),
                "every row has the same columns",
            )
            ok = False
        for column in sorted(present - columns):
            error(
                "E406",
                f"row {index + 1} of table '{name}' has column '{column}' that row 1 lacks",
                at((*row_pointer, column), True),
            )
            ok = False
        for column, value in row.items():
            if column == "tier":
                error(
                    "E406",
                    "'tier' is reserved: lookups add each row's position as `tier`",
                    at((*row_pointer, column), True),
                )
                ok = False
                continue
            if value is None:
                continue
            found = _type_of_value(value)
            expected = column_types.setdefault(column, found)
            if expected != found:
                error(
                    "E406",
                    f"column '{column}' of table '{name}' mixes {expected} and {found}",
                    at((*row_pointer, column)),
                )
                ok = False
    for key in spec["keys"]:
        column = key["name"] if key["kind"] == "exact" else f"min_{key['name']}"
        key_type = column_types.get(column, NUMBER)
        if key["kind"] == "interval" and key_type != NUMBER:
            error(
                "E406",
                f"interval key '{key['name']}' needs numbers in '{column}'",
                at((*pointer, "keys")),
            )
            ok = False
        keys.append(TableKey(key["name"], key["kind"], key_type))
    for interval in interval_keys:
        column_types.setdefault(f"max_{interval['name']}", NUMBER)
    if not ok:
        return None, diagnostics
    row_type = RecordType(f"row of table {name}", {**column_types, "tier": NUMBER})
    table_type = TableType(name, tuple(keys), row_type)
    for index, code, message in interval_problems(table_type, rows):
        error(code, f"table '{name}': {message}", at((*pointer, "rows", index)))
        ok = False
    if not ok:
        return None, diagnostics
    numbered: list[dict[str, Any]] = []
    counters: dict[tuple[object, ...], int] = {}
    for row in rows:
        group = tuple(row.get(k.name) for k in keys if k.kind == "exact")
        counters[group] = counters.get(group, 0) + 1
        numbered.append({**row, "tier": Decimal(counters[group])})
    return Table(table_type, tuple(MappingProxyType(r) for r in numbered)), diagnostics
