"""Tier tables imported from the formats venues and ccxt publish, exactly and checked.

`import_tiers` reads a downloaded response (JSON, read as YAML: numbers are exact decimals from
their text), finds its layout among the declared formats (:mod:`engine.policy.tier_formats`),
and turns each contract's tiers into policy table rows.  Bounds are normalised to the policy's
half-open intervals `[min, max)`; gaps, overlaps and a deduction (`cum`, `mmDeduction`) that does
not follow from the tiers are errors located in the input file.  ccxt's unified numbers are
floats converted from the venue's text, so a ccxt tier whose `info` holds a known format's fields
is read from `info`, exactly.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.errors import InputError, PolicyError
from engine.numbers import DECIMAL_CONTEXT, NumberSyntaxError, format_decimal, parse_decimal
from engine.policy.tier_formats import TierFormat, tier_formats
from engine.policy.yaml_reader import Pointer, YamlDocument, read_yaml_file
from engine.source import Diagnostic

MAX_INPUT_BYTES = 64 * 1024 * 1024  # a local download of every contract's tiers, not a policy

Cell = Decimal | None


@dataclass(frozen=True, slots=True)
class ImportedTable:
    """One contract's tiers as a policy table."""

    symbol: str  # the contract as the input names it (`BTC/USDT:USDT`, `BTCUSDT`, `BTC-USDT`)
    name: str  # the table's name in the policy
    layout: TierFormat  # the format its rows were read with (a ccxt file's `info` may differ)
    keys: tuple[tuple[str, str], ...]  # (name, kind), in lookup order
    columns: tuple[str, ...]
    rows: tuple[Mapping[str, Cell], ...]
    market: Mapping[str, str]  # symbol, and instrument / kind / settlement when derivable


@dataclass(frozen=True, slots=True)
class TierImport:
    path: str
    format: TierFormat
    tables: tuple[ImportedTable, ...]


@dataclass(slots=True)
class _Tier:
    node: Mapping[str, Any]
    pointer: Pointer


def _resolve(node: Any, path: Sequence[str]) -> Any:
    for step in path:
        if not isinstance(node, Mapping) or step not in node:
            return None
        node = node[step]
    return node


def _walk(
    node: Any,
    steps: Sequence[str],
    fmt: TierFormat,
    pointer: Pointer = (),
    parents: tuple[Any, ...] = (),
    key: str | None = None,
) -> Iterator[tuple[Any, Pointer, tuple[Any, ...], str | None]]:
    """Each group of `fmt` below `node`: (group, pointer, its parents, the last mapping key)."""
    if not steps:
        yield node, pointer, parents, key
        return
    step, rest = steps[0], steps[1:]
    if step == "*":
        if isinstance(node, list):
            for index, item in enumerate(node):
                yield from _walk(item, rest, fmt, (*pointer, index), (*parents, node), key)
        elif isinstance(node, Mapping):
            if not rest and isinstance(_resolve(node, fmt.tiers), list) and fmt.tiers:
                yield node, pointer, parents, key  # one group given without its list
                return
            for name, item in node.items():
                yield from _walk(item, rest, fmt, (*pointer, name), (*parents, node), str(name))
    elif isinstance(node, Mapping) and step in node:
        yield from _walk(node[step], rest, fmt, (*pointer, step), (*parents, node), key)


def _tier_list(group: Any, fmt: TierFormat) -> list[Any] | None:
    found = _resolve(group, fmt.tiers) if fmt.tiers else group
    return found if isinstance(found, list) else None


def detect_format(data: Any) -> TierFormat | None:
    """The first declared format whose first tier carries its identifying fields."""
    for fmt in tier_formats().values():
        for group, _, _, _ in _walk(data, fmt.groups, fmt):
            tiers = _tier_list(group, fmt)
            if tiers and fmt.matches(tiers[0]):
                return fmt
            break
    return None


def _identifier(text: str) -> str:
    name = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "contract"
    return f"_{name}" if name[0].isdigit() else name


def market_of(symbol: str) -> dict[str, str]:
    """What a contract's name tells about its market: for a ccxt symbol (`BASE/QUOTE:SETTLE` with
    an optional `-EXPIRY`) the instrument and kind, and a market symbol `BASEQUOTE`."""
    match = re.fullmatch(r"([^/:]+)/([^/:]+):([^-]+)(?:-(\w+))?", symbol)
    if match is None:
        return {"symbol": re.sub(r"[^A-Za-z0-9._-]+", "-", symbol).strip("-") or "contract"}
    base, quote, settle, expiry = match.groups()
    market = {"symbol": base + quote + (f"_{expiry}" if expiry else "")}
    if settle == quote and not expiry:
        market["instrument"] = f"{base}/{quote}"
    else:
        market["instrument"] = symbol
    market["kind"] = "inverse" if settle == base else "linear"
    return market


class _Reader:
    def __init__(self, document: YamlDocument, fmt: TierFormat) -> None:
        self.document = document
        self.format = fmt
        self.diagnostics: list[Diagnostic] = []

    def error(self, code: str, message: str, pointer: Pointer, hint: str | None = None) -> None:
        spans = self.document.spans
        span = spans.value_span(pointer) or spans.nearest_span(pointer)
        self.diagnostics.append(Diagnostic(code, message, span, hint))

    def symbol(self, group: Any, parents: tuple[Any, ...], key: str | None) -> str | None:
        for field in self.format.symbol:
            if field == "@key":
                return key
            for node in (group, *reversed(parents)):
                value = node.get(field) if isinstance(node, Mapping) else None
                if isinstance(value, str) and value:
                    return value
        return None

    def layout(self, tiers: list[_Tier]) -> tuple[TierFormat, list[_Tier]]:
        """The format to read these tiers with: the venue's own in `info`, when it is known."""
        info = self.format.info
        if info is None or not tiers:
            return self.format, tiers
        first = tiers[0].node.get(info)
        for other in tier_formats().values():
            if other is not self.format and other.matches(first):
                inner = [
                    _Tier(t.node[info], (*t.pointer, info))
                    if isinstance(t.node.get(info), Mapping)
                    else t
                    for t in tiers
                ]
                return other, inner
        return self.format, tiers

    def number(self, tier: _Tier, fields: tuple[str, ...], what: str) -> tuple[Cell, Pointer]:
        for field in fields:
            if field not in tier.node:
                continue
            value, pointer = tier.node[field], (*tier.pointer, field)
            if value is None or (isinstance(value, str) and not value.strip()):
                return None, pointer
            if isinstance(value, Decimal) and value.is_finite():
                return value, pointer
            if isinstance(value, str):
                try:
                    return parse_decimal(value.strip()), pointer
                except NumberSyntaxError:
                    pass
            self.error("E641", f"{what} is not a number: {value!r}", pointer)
            return None, pointer
        return None, tier.pointer

    def table(
        self, symbol: str, groups: list[tuple[Mapping[str, Cell], list[_Tier]]]
    ) -> ImportedTable | None:
        """One contract's table from its groups of tiers (one group per exact-key value)."""
        before = len(self.diagnostics)
        rows: list[dict[str, Cell]] = []
        layout = self.format
        for exact, raw in groups:
            layout, tiers = self.layout(raw)
            rows += self.convert(symbol, layout, exact, tiers)
        if len(self.diagnostics) > before or not rows:
            return None
        key = layout.key
        present = [c for c in layout.columns if c not in ("min", "max")]
        present = [c for c in present if any(row.get(c) is not None for row in rows)]
        first = [c for c in present if c in layout.lead]
        rest = [c for c in present if c not in layout.lead]
        exact_names = list(self.format.exact)
        columns = (*first, *exact_names, f"min_{key}", f"max_{key}", *rest)
        keys = (*((name, "exact") for name in exact_names), (key, "interval"))
        ordered = tuple({c: row.get(c) for c in columns} for row in rows)
        name = f"{_identifier(market_of(symbol)['symbol'])}_{layout.suffix}"
        return ImportedTable(symbol, name, layout, keys, columns, ordered, market_of(symbol))

    def convert(
        self, symbol: str, layout: TierFormat, exact: Mapping[str, Cell], tiers: list[_Tier]
    ) -> list[dict[str, Cell]]:
        """Tiers → rows with half-open bounds; gaps, overlaps and the deduction checked."""
        key = layout.key
        rows: list[dict[str, Cell]] = []
        where: list[dict[str, Pointer]] = []
        amount_column = layout.deduction["amount"] if layout.deduction else None
        absent: dict[str, list[_Tier]] = {}
        for tier in tiers:
            row: dict[str, Cell] = dict(exact)
            pointers: dict[str, Pointer] = {}
            for column, fields in layout.columns.items():
                value, pointer = self.number(tier, fields, f"{symbol} {fields[0]}")
                pointers[column] = pointer
                if value is None and not any(f in tier.node for f in fields):
                    absent.setdefault(column, []).append(tier)
                row[column] = value
            rows.append(row)
            where.append(pointers)
        for column, missing in absent.items():
            # a column no tier has is left out; one some tiers lack is an error (bounds aside:
            # an unbounded last tier has no upper bound)
            if column == "max" or (column != "min" and len(missing) == len(tiers)):
                continue
            shown = " or ".join(f"`{f}`" for f in layout.fields(column))
            for tier in missing:
                self.error("E641", f"a tier of {symbol} has no {shown}", tier.pointer)
        previous: Cell = Decimal(0)
        for index, row in enumerate(rows):
            low, high = row.pop("min", None), row.pop("max")
            if layout.bounds == "caps":
                low = previous
            elif index and low is not None:
                self.bounds(symbol, layout, index, low, previous, where[index])
            if layout.bounds == "inclusive_integers" and high is not None:
                with decimal.localcontext(DECIMAL_CONTEXT):
                    high = high + 1
            if low is not None and high is not None and high <= low:
                self.error(
                    "E404",
                    f"{symbol} tier {index + 1}: the upper bound {format_decimal(high)} is not above"
                    f" the lower bound {format_decimal(low)}",
                    where[index]["max"],
                )
            if index + 1 < len(rows) and high is None:
                self.error(
                    "E403",
                    f"{symbol} tier {index + 1} has no upper bound, so tier {index + 2} can never"
                    " apply",
                    where[index]["max"],
                )
            row[f"min_{key}"], row[f"max_{key}"] = low, high
            previous = high
        if amount_column and all(r.get(amount_column) is not None for r in rows):
            self.deduction(symbol, layout, rows, where)
        return rows

    def bounds(
        self,
        symbol: str,
        layout: TierFormat,
        index: int,
        low: Decimal,
        previous: Cell,
        where: Mapping[str, Pointer],
    ) -> None:
        if previous is None:
            return  # reported as E403 on the row before
        shown = format_decimal
        if low > previous:
            gap_end = shown(low - 1) if layout.bounds == "inclusive_integers" else shown(low)
            self.error(
                "E402",
                f"gap between tiers {index} and {index + 1} of {symbol}: {layout.key} from"
                f" {shown(previous)} to {gap_end} is in no tier",
                where["min"],
                "each tier starts where the previous one ends",
            )
        elif low < previous:
            self.error(
                "E403",
                f"tiers {index} and {index + 1} of {symbol} overlap: tier {index + 1} starts at"
                f" {shown(low)}, below {shown(previous)} where tier {index} ends",
                where["min"],
            )

    def deduction(
        self,
        symbol: str,
        layout: TierFormat,
        rows: list[dict[str, Cell]],
        where: list[dict[str, Pointer]],
    ) -> None:
        assert layout.deduction is not None
        rate, amount, low = (
            layout.deduction["rate"],
            layout.deduction["amount"],
            f"min_{layout.key}",
        )
        shown = format_decimal
        # Each amount is checked against the chain from the first tier, so one wrong value is
        # one error (the tiers after it still follow from the right value).
        chain = rows[0][amount]
        with decimal.localcontext(DECIMAL_CONTEXT):
            for index in range(1, len(rows)):
                row, before = rows[index], rows[index - 1]
                values = (row[amount], chain, row[low], row[rate], before[rate])
                if any(v is None for v in values):
                    return
                value, previous, floor, now, then = (v for v in values if v is not None)
                expected = chain = previous + floor * (now - then)
                if value != expected:
                    field = layout.fields(amount)[0]
                    self.error(
                        "E426",
                        f"{symbol} tier {index + 1}: {field} {shown(value)} does not follow from the"
                        f" tiers: {shown(previous)} + {shown(floor)} * ({shown(now)} -"
                        f" {shown(then)}) = {shown(expected)}",
                        where[index][amount],
                        f"{field} is the previous tier's plus the tier's lower bound times the"
                        " rise in the rate; a wrong value shifts every maintenance margin",
                    )

    def read(self, only: re.Pattern[str] | None) -> list[ImportedTable]:
        fmt = self.format
        by_symbol: dict[str, list[tuple[Mapping[str, Cell], list[_Tier]]]] = {}
        for group, pointer, parents, key in _walk(self.document.data, fmt.groups, fmt):
            listed = _tier_list(group, fmt)
            if listed is None:
                self.error("E641", f"no list of tiers at {'.'.join(fmt.tiers)}", pointer)
                continue
            tiers_pointer = (*pointer, *fmt.tiers)
            tiers = [
                _Tier(item, (*tiers_pointer, index))
                for index, item in enumerate(listed)
                if isinstance(item, Mapping)
            ]
            exact: dict[str, Cell] = {}
            for column, field in fmt.exact.items():
                value, _ = self.number(_Tier(group, pointer), (field,), field)
                if value is None:
                    self.error("E641", f"a group of tiers has no `{field}`", pointer)
                exact[column] = value
            if fmt.split:
                parts: dict[str, list[_Tier]] = {}
                for tier in tiers:
                    name = next((str(tier.node[f]) for f in fmt.split if tier.node.get(f)), None)
                    if name is None:
                        self.error("E641", "a tier names no contract", tier.pointer)
                        continue
                    parts.setdefault(name, []).append(tier)
                for name, part in parts.items():
                    by_symbol.setdefault(name, []).append((exact, part))
                continue
            symbol = self.symbol(group, parents, key)
            if symbol is None:
                shown = " or ".join(f"`{f}`" for f in fmt.symbol)
                self.error("E641", f"a group of tiers has no {shown}", pointer)
                continue
            by_symbol.setdefault(symbol, []).append((exact, tiers))
        tables: list[ImportedTable] = []
        names: set[str] = set()
        for symbol, groups in by_symbol.items():
            if only is not None and only.fullmatch(symbol) is None:
                continue
            table = self.table(symbol, groups)
            if table is None:
                continue
            name, count = table.name, 1
            while name in names:
                count += 1
                name = f"{table.name}_{count}"
            names.add(name)
            tables.append(
                ImportedTable(
                    table.symbol,
                    name,
                    table.layout,
                    table.keys,
                    table.columns,
                    table.rows,
                    table.market,
                )
            )
        return tables


def import_tiers(
    path: str | Path, *, format_name: str | None = None, only: str | None = None
) -> TierImport:
    """Read a tier file; raise InputError listing every problem (located in the file)."""
    try:
        document = read_yaml_file(path, max_bytes=MAX_INPUT_BYTES)
    except PolicyError as error:
        raise InputError(diagnostics=error.diagnostics) from None
    formats = tier_formats()
    fmt = formats.get(format_name) if format_name else detect_format(document.data)
    if fmt is None:
        known = ", ".join(formats)
        raise InputError(
            diagnostics=[
                Diagnostic(
                    "E640",
                    f"'{path}' is not a tier file of a known format"
                    if not format_name
                    else f"unknown tier format '{format_name}'",
                    path=str(path),
                    hint=f"formats: {known} (see `liqpolicy tiers formats`)",
                )
            ]
        )
    reader = _Reader(document, fmt)
    tables = reader.read(re.compile(only) if only else None)
    if reader.diagnostics:
        raise InputError(diagnostics=reader.diagnostics)
    if not tables:
        raise InputError(
            diagnostics=[
                Diagnostic(
                    "E640",
                    f"'{path}' holds no {fmt.name} tiers"
                    + (f" of a contract matching '{only}'" if only else ""),
                    path=str(path),
                )
            ]
        )
    return TierImport(str(path), fmt, tuple(tables))
