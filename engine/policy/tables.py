"""Policy tables: rows checked column by column, typed, and numbered into tiers.

A table is checked on its own (its keys, its columns, its interval rows, its declared deduction),
so its problems are all found before any market or expression refers to it.  Even a table with
problems gets its type when its columns can be told, so expressions reading it are still
checked instead of failing with a misleading "unknown field".

A column's type is the type most of its cells have (numbers win a tie): one mistyped cell is
reported at that cell, not the others at theirs.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from engine.dsl.table import Row, Table, interval_problems
from engine.dsl.types import BOOL, NUMBER, STRING, RecordType, TableKey, TableType, Type
from engine.numbers import DECIMAL_CONTEXT, format_decimal
from engine.policy.yaml_reader import Pointer
from engine.source import Diagnostic, Span

Locate = Callable[[Pointer, bool], Span]

_PERCENT = re.compile(r"\s*([+-]?[0-9][0-9_]*(?:\.[0-9_]+)?)\s*%\s*")
_GROUPED = re.compile(r"\s*[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?\s*")


@dataclass(frozen=True, slots=True)
class BuiltTable:
    """What checking a table yields: its type (None when its columns cannot be told), the table
    (None when it has errors; its lookup index is built on first use), and every problem."""

    type: TableType | None
    table: Table | None
    diagnostics: tuple[Diagnostic, ...]


def _type_of_value(value: object) -> Type:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, Decimal):
        return NUMBER
    return STRING


def _cell_hint(value: object, expected: Type) -> str | None:
    """How to write a cell that should be a number but was read as text."""
    if expected != NUMBER or not isinstance(value, str):
        return None
    percent = _PERCENT.fullmatch(value)
    if percent is not None:
        try:
            with decimal.localcontext(DECIMAL_CONTEXT):
                fraction = Decimal(percent.group(1).replace("_", "")) / 100
        except decimal.DecimalException:
            return None
        return (
            f"table cells are plain numbers: write {format_decimal(fraction)} for {value.strip()}"
            " (a `%` suffix is understood in expressions only)"
        )
    if _GROUPED.fullmatch(value):
        return (
            f"write {value.strip().replace(',', '_')} (or without separators): commas make it text"
        )
    return "table cells are plain numbers, e.g. 0.004 or 50_000"


def _column_types(rows: Sequence[Mapping[str, Any]]) -> dict[str, Type]:
    """Each column's type: the most common among its non-null cells, numbers first on a tie."""
    counts: dict[str, dict[Type, int]] = {}
    for row in rows:
        for column, value in row.items():
            if value is not None:
                seen = counts.setdefault(column, {})
                found = _type_of_value(value)
                seen[found] = seen.get(found, 0) + 1
    order = {NUMBER: 0, STRING: 1, BOOL: 2}
    return {
        column: min(seen, key=lambda t: (-seen[t], order.get(t, 3)))
        for column, seen in counts.items()
    }


def _all_numbers(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Every row has the same columns and every cell is a number (generated tables)."""
    first = rows[0].keys()
    return all(row.keys() == first for row in rows) and all(
        type(value) is Decimal for row in rows for value in row.values()
    )


def build_table(name: str, spec: Mapping[str, Any], locate: Locate) -> BuiltTable:
    """The table `name` of the policy, checked; every problem located by `locate`."""
    diagnostics: list[Diagnostic] = []

    def error(code: str, message: str, span: Span, hint: str | None = None) -> None:
        diagnostics.append(Diagnostic(code, message, span, hint))

    def at(pointer: Pointer, key: bool = False) -> Span:
        return locate(pointer, key)

    pointer: Pointer = ("tables", name)
    rows: list[Mapping[str, Any]] = spec["rows"]
    interval_keys = [k for k in spec["keys"] if k["kind"] == "interval"]
    if len(interval_keys) > 1:
        error(
            "E406",
            f"table '{name}' has {len(interval_keys)} interval keys, at most one is allowed",
            at((*pointer, "keys")),
        )
        return BuiltTable(None, None, tuple(diagnostics))
    ok = True
    required = [
        f"min_{key['name']}" if key["kind"] == "interval" else key["name"] for key in spec["keys"]
    ]
    optional = {f"max_{k['name']}" for k in interval_keys}
    columns = {c for c in rows[0] if c not in optional} | set(required)
    # The row checks find nothing in a table of numbers with the same columns in every row and
    # its key columns there: they run only when they may have something to say.
    plain = _all_numbers(rows) and "tier" not in rows[0] and set(required) <= rows[0].keys()
    column_types = dict.fromkeys(rows[0], NUMBER) if plain else _column_types(rows)
    for index, row in enumerate(() if plain else rows):
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
            expected, found = column_types[column], _type_of_value(value)
            if expected != found:
                shown = f"'{value}'" if isinstance(value, str) else str(value)
                error(
                    "E406",
                    f"row {index + 1} of table '{name}': column '{column}' holds {found} {shown}"
                    f" where the other rows hold {expected}s",
                    at((*row_pointer, column)),
                    _cell_hint(value, expected),
                )
                ok = False
    keys: list[TableKey] = []
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
            key_type = NUMBER
        keys.append(TableKey(key["name"], key["kind"], key_type))
    for interval in interval_keys:
        column_types.setdefault(f"max_{interval['name']}", NUMBER)
    types = {c: t for c, t in column_types.items() if c != "tier"}
    row_type = RecordType(f"row of table {name}", {**types, "tier": NUMBER})
    table_type = TableType(name, tuple(keys), row_type)
    if not ok:
        return BuiltTable(table_type, None, tuple(diagnostics))
    for index, code, message in interval_problems(table_type, rows):
        error(code, f"table '{name}': {message}", at((*pointer, "rows", index)))
        ok = False
    deduction = spec.get("deduction")
    if deduction is not None and ok:
        diagnostics.extend(_deduction_problems(name, table_type, rows, deduction, locate))
        ok = not diagnostics
    if not ok:
        return BuiltTable(table_type, None, tuple(diagnostics))
    numbered: list[Row] = []
    counters: dict[tuple[object, ...], int] = {}
    exact = [k.name for k in keys if k.kind == "exact"]
    for row in rows:
        group = tuple(row.get(k) for k in exact)
        counters[group] = counters.get(group, 0) + 1
        numbered.append(MappingProxyType({**row, "tier": Decimal(counters[group])}))
    return BuiltTable(table_type, Table(table_type, tuple(numbered)), tuple(diagnostics))


def _deduction_problems(
    name: str,
    table_type: TableType,
    rows: Sequence[Mapping[str, Any]],
    deduction: Mapping[str, str],
    locate: Locate,
) -> list[Diagnostic]:
    """Check the declared deduction: amount(n) = amount(n-1) + min_key(n) * (rate(n) - rate(n-1)).

    That is the rule that keeps `key * rate - amount` continuous at every row's lower bound (the
    "maintenance amount" or "deduction" venues publish with notional brackets), checked exactly.
    """
    pointer: Pointer = ("tables", name)
    interval = next((k for k in table_type.keys if k.kind == "interval"), None)
    rate, amount = deduction["rate"], deduction["amount"]
    problems: list[Diagnostic] = []
    for column in (rate, amount):
        if table_type.row.fields.get(column) != NUMBER:
            problems.append(
                Diagnostic(
                    "E406",
                    f"the deduction of table '{name}' names column '{column}', which the rows do"
                    " not hold as numbers",
                    locate((*pointer, "deduction"), False),
                )
            )
    if interval is None:
        problems.append(
            Diagnostic(
                "E406",
                f"table '{name}' declares a deduction but has no interval key",
                locate((*pointer, "deduction"), True),
                "the deduction follows the rows' lower bounds, `min_<key>`",
            )
        )
    if problems or interval is None:
        return problems
    low = f"min_{interval.name}"
    exact = [k.name for k in table_type.keys if k.kind == "exact"]
    previous: dict[tuple[object, ...], Mapping[str, Any]] = {}
    chain: dict[tuple[object, ...], Any] = {}  # the amount each group's rows imply so far
    with decimal.localcontext(DECIMAL_CONTEXT):
        for index, row in enumerate(rows):
            group = tuple(row.get(k) for k in exact)
            before = previous.get(group)
            previous[group] = row
            if before is None:
                chain[group] = row[amount]
                continue
            if None in (row[amount], row[low], row[rate], before[rate], chain[group]):
                continue  # a null cell: nothing to check against
            # checked against the chain from the group's first row: one wrong amount, one error
            prior = chain[group]
            expected = chain[group] = prior + row[low] * (row[rate] - before[rate])
            if row[amount] != expected:
                shown = format_decimal
                problems.append(
                    Diagnostic(
                        "E426",
                        f"row {index + 1} of table '{name}': {amount} {shown(row[amount])} does"
                        f" not follow from the rows: {shown(prior)} +"
                        f" {shown(row[low])} * ({shown(row[rate])} - {shown(before[rate])}) ="
                        f" {shown(expected)}",
                        locate((*pointer, "rows", index, amount), False),
                        f"each row's {amount} is the previous one plus {low} times the rise in"
                        f" {rate}, which keeps {interval.name} * {rate} - {amount} continuous",
                    )
                )
    return problems
