"""Generic interval/exact-key tables: notional brackets and adjustment-factor ladders alike.

A row matches when every exact key equals the lookup value and the interval key lies in
``[min_<key>, max_<key>)`` (a missing ``max_<key>`` means unbounded).  Rows are first-match; at
load the intervals of each exact-key group are checked to be increasing, without gaps or overlaps.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import overload

from engine.dsl.types import TableKey, TableType
from engine.numbers import format_decimal

Row = Mapping[str, object]


class TableLookupError(ValueError):
    """A lookup value lies outside every row (message names the table and the bounds)."""


class LazyRows(Sequence[Row]):
    """A table's rows, read on first use: a policy including hundreds of tables (one per market)
    reads the rows of the few its accounts trade.  Behaves as the tuple it loads."""

    __slots__ = ("_load", "_lock", "_rows")

    def __init__(self, load: Callable[[], tuple[Row, ...]]) -> None:
        self._load: Callable[[], tuple[Row, ...]] | None = load
        self._rows: tuple[Row, ...] | None = None
        self._lock = threading.Lock()

    def rows(self) -> tuple[Row, ...]:
        rows = self._rows
        if rows is None:
            with self._lock:
                if self._rows is None:
                    assert self._load is not None
                    self._rows, self._load = self._load(), None
                rows = self._rows
        return rows

    @property
    def loaded(self) -> bool:
        return self._rows is not None

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Row]: ...
    def __getitem__(self, index: int | slice) -> Row | Sequence[Row]:
        return self.rows()[index]

    def __len__(self) -> int:
        return len(self.rows())

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyRows):
            other = other.rows()
        return self.rows() == other

    def __hash__(self) -> int:
        return hash(self.rows())


@dataclass(frozen=True, slots=True)
class _Group:
    lows: tuple[Decimal, ...]
    highs: tuple[Decimal | None, ...]
    rows: tuple[Row, ...]


@dataclass(frozen=True, slots=True)
class Table:
    """An immutable table with a fast lookup (dict on exact keys, bisect on the interval).

    The lookup index is built on the first lookup: a policy may declare hundreds of tables (one
    per market) and an evaluation reads a few.
    """

    type: TableType
    rows: Sequence[Row]  # a tuple, or LazyRows read on first use
    _groups: dict[tuple[object, ...], _Group] | None = field(
        init=False, default=None, repr=False, compare=False
    )
    # The common shape (one interval key, no exact keys) gets a direct bisect: lookups sit on
    # the hot path of every maintenance-margin evaluation.
    _single: _Group | None = field(init=False, default=None, repr=False, compare=False)

    def _index(self) -> dict[tuple[object, ...], _Group]:
        interval = self.interval_key
        grouped: dict[tuple[object, ...], list[Row]] = {}
        for row in self.rows:
            grouped.setdefault(self._exact_values(row), []).append(row)
        groups: dict[tuple[object, ...], _Group] = {}
        for key, rows in grouped.items():
            if interval is None:
                groups[key] = _Group((), (), tuple(rows))
                continue
            lows = tuple(_as_decimal(row[f"min_{interval.name}"]) for row in rows)
            highs = tuple(
                None
                if row.get(f"max_{interval.name}") is None
                else _as_decimal(row[f"max_{interval.name}"])
                for row in rows
            )
            groups[key] = _Group(lows, highs, tuple(rows))
        if len(self.type.keys) == 1 and interval is not None:
            object.__setattr__(self, "_single", groups.get(()))
        object.__setattr__(self, "_groups", groups)  # last: it marks the index as built
        return groups

    @property
    def name(self) -> str:
        return self.type.name

    @property
    def interval_key(self) -> TableKey | None:
        for key in self.type.keys:
            if key.kind == "interval":
                return key
        return None

    def _exact_values(self, row: Row) -> tuple[object, ...]:
        return tuple(row[key.name] for key in self.type.keys if key.kind == "exact")

    def lookup(self, values: Sequence[object]) -> Row:
        """Return the first row matching `values` (one per key, in key order)."""
        groups = self._groups if self._groups is not None else self._index()
        single = self._single
        first = values[0] if values else None
        if single is not None and len(values) == 1 and isinstance(first, Decimal):
            found = bisect.bisect_right(single.lows, first) - 1
            if found >= 0:
                top = single.highs[found]
                if top is None or first < top:
                    return single.rows[found]
        exact = tuple(
            v for v, key in zip(values, self.type.keys, strict=True) if key.kind == "exact"
        )
        group = groups.get(exact)
        if group is None:
            shown = ", ".join(
                f"{key.name} = {_show(v)}"
                for v, key in zip(values, self.type.keys, strict=True)
                if key.kind == "exact"
            )
            raise TableLookupError(f"table '{self.name}' has no rows for {shown}")
        interval = self.interval_key
        if interval is None:
            return group.rows[0]
        position = [key.name for key in self.type.keys].index(interval.name)
        value = values[position]
        assert isinstance(value, Decimal)
        index = bisect.bisect_right(group.lows, value) - 1
        if index >= 0:
            high = group.highs[index]
            if high is None or value < high:
                return group.rows[index]
        low = group.lows[0]
        top = group.highs[-1]
        bounds = f"[{format_decimal(low)}, {format_decimal(top) if top is not None else '∞'})"
        raise TableLookupError(
            f"{interval.name} {format_decimal(value)} is outside table '{self.name}' {bounds}"
        )

    def row_at(self, exact_values: Sequence[object], tier: int) -> Row | None:
        """Row number `tier` (1-based) of the exact-key group, or None past either end."""
        groups = self._groups if self._groups is not None else self._index()
        group = groups.get(tuple(exact_values))
        if group is None or not 1 <= tier <= len(group.rows):
            return None
        return group.rows[tier - 1]


def _as_decimal(value: object) -> Decimal:
    assert isinstance(value, Decimal), value
    return value


def _show(value: object) -> str:
    if isinstance(value, Decimal):
        return format_decimal(value)
    return f'"{value}"' if isinstance(value, str) else str(value)


def interval_problems(table_type: TableType, rows: Sequence[Row]) -> list[tuple[int, str, str]]:
    """Find non-increasing bounds, gaps and overlaps: (row index, code, message) per problem."""
    interval = next((key for key in table_type.keys if key.kind == "interval"), None)
    problems: list[tuple[int, str, str]] = []
    if interval is None:
        seen: dict[tuple[object, ...], int] = {}
        for index, row in enumerate(rows):
            key = tuple(row.get(k.name) for k in table_type.keys)
            if key in seen:
                problems.append(
                    (index, "E403", f"row {index + 1} repeats the keys of row {seen[key] + 1}")
                )
            seen.setdefault(key, index)
        return problems
    low_name, high_name = f"min_{interval.name}", f"max_{interval.name}"
    previous: dict[tuple[object, ...], tuple[int, Decimal | None]] = {}
    for index, row in enumerate(rows):
        group = tuple(row.get(k.name) for k in table_type.keys if k.kind == "exact")
        low = row.get(low_name)
        high = row.get(high_name)
        if not isinstance(low, Decimal) or (high is not None and not isinstance(high, Decimal)):
            continue  # the schema reports the missing or mistyped bound
        if high is not None and high <= low:
            problems.append(
                (
                    index,
                    "E404",
                    (
                        f"row {index + 1}: {high_name} {format_decimal(high)} is not above "
                        f"{low_name} {format_decimal(low)}"
                    ),
                )
            )
        if group in previous:
            before_index, before_high = previous[group]
            if before_high is None:
                problems.append(
                    (
                        index,
                        "E403",
                        (
                            f"row {index + 1} can never match: row {before_index + 1} has no {high_name}"
                            " and already covers everything above it"
                        ),
                    )
                )
            elif low > before_high:
                problems.append(
                    (
                        index,
                        "E402",
                        (
                            f"gap between rows {before_index + 1} and {index + 1}: {interval.name} from "
                            f"{format_decimal(before_high)} to {format_decimal(low)} matches no row"
                        ),
                    )
                )
            elif low < before_high:
                problems.append(
                    (
                        index,
                        "E403",
                        (
                            f"rows {before_index + 1} and {index + 1} overlap: {low_name} "
                            f"{format_decimal(low)} is below the previous {high_name} "
                            f"{format_decimal(before_high)}"
                        ),
                    )
                )
        previous[group] = (index, high)
    return problems
