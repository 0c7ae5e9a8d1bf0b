"""Books of accounts: JSON lines or CSV in, exact decimals out, every bad line reported at once.

A book (``schemas/book.schema.json``, documented in docs/scenarios.md) is policy-neutral: each
position names an instrument (``BTC/USDT``) and a quantity in base units.  JSON lines hold one
account per line; CSV holds one position per row, rows sharing an ``account_id`` forming one
account.  Numbers are read from their text (JSON numbers with ``parse_float``/``parse_int``, CSV
cells with :func:`~engine.numbers.parse_decimal`), so no binary float ever enters.

Books can hold 100,000 accounts, so a line that is well formed is built directly; only a line
that fails that fast check goes through the JSON Schema, which then explains what is wrong.  Every
problem is located at ``file:line:column`` with the field it concerns and raised together as one
:class:`~engine.errors.InputError`.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from engine.dsl.check import did_you_mean
from engine.errors import InputError
from engine.numbers import (
    MAX_DIGITS,
    MAX_EXPONENT,
    ZERO,
    NumberSyntaxError,
    format_decimal,
    parse_decimal,
)
from engine.policy.schema import Pointer, schema_diagnostics
from engine.simulation.model import Book, BookAccount, BookPosition
from engine.source import Diagnostic, SourceFile, Span

_PACKAGE = Path(__file__).resolve().parent.parent

JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv",)
CSV_COLUMNS = (
    "account_id",
    "wallet_balance",
    "instrument",
    "side",
    "quantity",
    "entry_price",
    "margin_mode",
    "leverage",
    "isolated_margin",
)
_OPTIONAL_COLUMNS = frozenset({"isolated_margin"})
_POSITION_COLUMNS = CSV_COLUMNS[2:]
SIDES = ("long", "short")
MARGIN_MODES = ("cross", "isolated")

_ACCOUNT_KEYS = frozenset({"id", "wallet_balance", "positions"})
_POSITION_REQUIRED = frozenset(
    {"instrument", "side", "quantity", "entry_price", "margin_mode", "leverage"}
)
_POSITION_KEYS = _POSITION_REQUIRED | {"isolated_margin"}
# the same patterns as schemas/book.schema.json
_UNSIGNED = re.compile(r"[+]?[0-9][0-9_]*(\.[0-9][0-9_]*)?([eE][+-]?[0-9]+)?")
_INSTRUMENT = re.compile(r"[A-Za-z0-9._-]+/[A-Za-z0-9._-]+")


def books_dir() -> Path:
    """The shipped books: `engine/books` in a wheel, the top-level `books/` otherwise."""
    inside = _PACKAGE / "books"
    if inside.is_dir():
        return inside
    return _PACKAGE.parent / "books"


def resolve_book_path(reference: str | Path) -> Path:
    """A path as given, or the shipped book with that id (`demo` → books/demo.jsonl)."""
    path = Path(reference)
    if path.is_file() or path.suffix or "/" in str(reference):
        return path
    for suffix in (*JSONL_SUFFIXES, *CSV_SUFFIXES):
        shipped = books_dir() / f"{reference}{suffix}"
        if shipped.is_file():
            return shipped
    return path


# -- locations -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _LinesSource(SourceFile):
    """A book file as diagnostics see it: only the lines that have problems are kept.

    Rendering a diagnostic asks its source for one line; keeping just those lines avoids
    re-splitting a many-megabyte book for every problem.
    """

    lines: dict[int, str] = field(default_factory=dict, repr=False, compare=False)

    def line(self, number: int) -> str:
        return self.lines.get(number, "")


class _Report:
    """Collects diagnostics for one file, each at a line and a column range."""

    def __init__(self, path: str) -> None:
        self.source = _LinesSource(path, "")
        self.diagnostics: list[Diagnostic] = []

    def span(self, number: int, text: str, start: int, end: int) -> Span:
        self.source.lines[number] = text
        end = max(end, start + 1)
        return Span(self.source, number, start + 1, number, end + 1)

    def add(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, hint))


class _Malformed(Exception):
    """The fast path met something the schema may reject: let the schema explain it."""


Problem = Callable[[str, str, Pointer, str | None], None]  # (code, message, pointer, hint)


def _where(pointer: Pointer) -> str:
    text = ""
    for part in pointer:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return f"in {text}" if text else "at the top level"


def _json_number(value: Any, positive: bool, pointer: Pointer, problem: Problem) -> Decimal:
    """A schema-valid number (JSON number or numeric string) as a Decimal; _Malformed if not."""
    if isinstance(value, Decimal):
        if value < 0 or (positive and value == 0):
            raise _Malformed
        if (
            not -MAX_EXPONENT <= value.adjusted() <= MAX_EXPONENT
            or len(value.as_tuple().digits) > MAX_DIGITS
        ):
            problem(
                "E104",
                f"{value} is out of range {_where(pointer)}; numbers have at most "
                f"{MAX_DIGITS} digits and exponents within ±{MAX_EXPONENT}",
                pointer,
                None,
            )
            return ZERO
        return value
    if not isinstance(value, str) or not _UNSIGNED.fullmatch(value):
        raise _Malformed
    try:
        number = parse_decimal(value)
    except NumberSyntaxError as exc:
        problem("E104", f"{exc} {_where(pointer)}", pointer, None)
        return ZERO
    if positive and number == 0:  # the schema's bounds do not apply to strings
        problem(
            "E104", f"'{value}' is out of range {_where(pointer)}; expected above 0", pointer, None
        )
    return number


def _account_from_json(data: Any, problem: Problem) -> BookAccount:
    """Build an account from one parsed line; raise _Malformed on anything structural."""
    if type(data) is not dict or data.keys() != _ACCOUNT_KEYS:
        raise _Malformed
    account_id = data["id"]
    positions = data["positions"]
    if type(account_id) is not str or not account_id or type(positions) is not list:
        raise _Malformed
    wallet = _json_number(data["wallet_balance"], False, ("wallet_balance",), problem)
    built: list[BookPosition] = []
    for index, item in enumerate(positions):
        if type(item) is not dict or not (_POSITION_REQUIRED <= item.keys() <= _POSITION_KEYS):
            raise _Malformed
        instrument, side, mode = item["instrument"], item["side"], item["margin_mode"]
        if (
            type(instrument) is not str
            or not _INSTRUMENT.fullmatch(instrument)
            or type(side) is not str
            or side not in SIDES
            or type(mode) is not str
            or mode not in MARGIN_MODES
        ):
            raise _Malformed
        base: Pointer = ("positions", index)
        isolated = item.get("isolated_margin")
        built.append(
            BookPosition(
                instrument=instrument,
                side=side,
                quantity=_json_number(item["quantity"], True, (*base, "quantity"), problem),
                entry_price=_json_number(
                    item["entry_price"], True, (*base, "entry_price"), problem
                ),
                margin_mode=mode,
                leverage=_json_number(item["leverage"], True, (*base, "leverage"), problem),
                isolated_margin=None
                if isolated is None
                else _json_number(isolated, False, (*base, "isolated_margin"), problem),
            )
        )
        if "isolated_margin" in item and isolated is None:
            raise _Malformed  # null is not a number
    return BookAccount(account_id, wallet, tuple(built))


def _position_problems(
    account: BookAccount, problem: Problem, pointer: Callable[[int, str], Pointer]
) -> None:
    """Checks across positions: one per instrument and side; isolated margin only if isolated."""
    seen: set[tuple[str, str]] = set()
    for index, position in enumerate(account.positions):
        key = (position.instrument, position.side)
        if key in seen:
            problem(
                "E612",
                f"account '{account.id}' has two {position.side} positions in "
                f"{position.instrument}",
                pointer(index, "instrument"),
                "merge them: a book holds one position per instrument and side",
            )
        seen.add(key)
        if position.isolated_margin is not None and position.margin_mode != "isolated":
            problem(
                "E613",
                f"isolated_margin is given for a {position.margin_mode} position",
                pointer(index, "isolated_margin"),
                "remove it, or set margin_mode to isolated",
            )


# -- JSON lines ------------------------------------------------------------------------------


def _json_spans(text: str) -> tuple[dict[Pointer, tuple[int, int]], dict[Pointer, tuple[int, int]]]:
    """Offsets of every value and every key of one valid JSON text, by pointer."""
    values: dict[Pointer, tuple[int, int]] = {}
    keys: dict[Pointer, tuple[int, int]] = {}
    size = len(text)

    def skip(i: int) -> int:
        while i < size and text[i] in " \t\r\n":
            i += 1
        return i

    def string_end(i: int) -> int:
        i += 1
        while text[i] != '"':
            i += 2 if text[i] == "\\" else 1
        return i + 1

    def value(i: int, pointer: Pointer) -> int:
        i = skip(i)
        start = i
        if text[i] in "{[":
            closing = "}" if text[i] == "{" else "]"
            i = skip(i + 1)
            index = 0
            while text[i] != closing:
                if closing == "}":
                    key_start = i
                    i = string_end(i)
                    name = json.loads(text[key_start:i])
                    keys[(*pointer, name)] = (key_start, i)
                    i = value(skip(i) + 1, (*pointer, name))
                else:
                    i = value(i, (*pointer, index))
                    index += 1
                i = skip(i)
                if text[i] == ",":
                    i = skip(i + 1)
            i += 1
        elif text[i] == '"':
            i = string_end(i)
        else:
            while i < size and text[i] not in ",]} \t\r\n":
                i += 1
        values[pointer] = (start, i)
        return i

    with contextlib.suppress(IndexError, RecursionError):  # defensive: the text is valid JSON
        value(0, ())
    return values, keys


def _reject_constant(name: str) -> Decimal:
    raise NumberSyntaxError(f"'{name}' is not a decimal number")


class _DuplicateKey(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(f"duplicate key '{key}'")
            seen.add(key)
    return data


def _parse_json_line(text: str) -> Any:
    """JSON numbers become Decimals from their text (JSON's grammar admits nothing else)."""
    return json.loads(
        text,
        parse_float=Decimal,
        parse_int=Decimal,
        parse_constant=_reject_constant,
        object_pairs_hook=_pairs,
    )


class _JsonLine:
    """Where the problems of the current line are: spans are computed only for a bad line."""

    __slots__ = ("found", "number", "report", "spans", "text")

    def __init__(self, report: _Report) -> None:
        self.report = report
        self.number = 0
        self.text = ""
        self.spans: tuple[dict[Pointer, tuple[int, int]], dict[Pointer, tuple[int, int]]] | None
        self.spans = None
        self.found: list[Diagnostic] = []

    def start(self, number: int, text: str) -> None:
        self.number, self.text, self.spans = number, text, None
        if self.found:
            self.found = []

    def locate(self, pointer: Pointer, key: bool) -> Span:
        text = self.text
        if self.spans is None:
            self.spans = _json_spans(text)
        values, keys = self.spans
        found = keys.get(pointer) if key else None
        for length in range(len(pointer), -1, -1):
            if found is not None:
                break
            found = values.get(pointer[:length])
        start, end = found if found is not None else (0, len(text))
        if text[start : start + 1] in ("{", "["):  # a whole object: mark where it opens
            end = start + 1
        return self.report.span(self.number, text, start, end)

    def problem(self, code: str, message: str, pointer: Pointer, hint: str | None) -> None:
        key = code == "E613"  # the key is the culprit, not its value
        self.found.append(Diagnostic(code, message, self.locate(pointer, key), hint))


def _json_pointer(index: int, name: str) -> Pointer:
    return ("positions", index, name)


def _read_jsonl(lines: Sequence[str], report: _Report) -> list[tuple[int, BookAccount]]:
    accounts: list[tuple[int, BookAccount]] = []
    line = _JsonLine(report)
    for number, raw in enumerate(lines, start=1):
        text = raw.removesuffix("\r")
        if not text or text.isspace():
            continue
        try:
            data = _parse_json_line(text)
        except json.JSONDecodeError as exc:
            report.add(
                "E610",
                f"line {number} is not valid JSON: {exc.msg}",
                report.span(number, text, exc.colno - 1, exc.colno),
                "each line holds one account as a JSON object",
            )
            continue
        except (NumberSyntaxError, _DuplicateKey, RecursionError) as exc:
            message = str(exc) if not isinstance(exc, RecursionError) else "nesting too deep"
            quoted = re.search(r"'([^']+)'", message)
            start = text.find(quoted.group(1)) if quoted else -1
            end = start + len(quoted.group(1)) if quoted and start >= 0 else len(text)
            report.add(
                "E610",
                f"line {number} is not a valid account: {message}",
                report.span(number, text, max(start, 0), end),
            )
            continue
        line.start(number, text)
        try:
            account = _account_from_json(data, line.problem)
        except _Malformed:
            schema_problems = schema_diagnostics(data, "book.schema.json", line.locate)
            report.diagnostics.extend(
                schema_problems
                or [
                    Diagnostic(
                        "E100", f"line {number} is not a valid account", line.locate((), False)
                    )
                ]
            )
            continue
        if len(account.positions) > 1 or (
            account.positions and account.positions[0].isolated_margin is not None
        ):
            _position_problems(account, line.problem, _json_pointer)
        if line.found:
            report.diagnostics.extend(line.found)
            continue
        accounts.append((number, account))
    return accounts


# -- CSV -------------------------------------------------------------------------------------


def _csv_cells(text: str) -> list[tuple[str, int, int]]:
    """Cells of one CSV line as (value, start, end) offsets; quotes as in RFC 4180."""
    if '"' not in text:
        cells: list[tuple[str, int, int]] = []
        start = 0
        for part in text.split(","):
            stripped = part.strip()
            lead = len(part) - len(part.lstrip())
            cells.append((stripped, start + lead, start + lead + len(stripped)))
            start += len(part) + 1
        return cells
    cells = []
    i, size = 0, len(text)
    while True:
        while i < size and text[i] in " \t":
            i += 1
        start = i
        if i < size and text[i] == '"':
            chars: list[str] = []
            i += 1
            while True:
                if i >= size:
                    raise ValueError("a quoted cell is not closed")
                if text[i] == '"':
                    if i + 1 < size and text[i + 1] == '"':
                        chars.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                chars.append(text[i])
                i += 1
            value, end = "".join(chars), i
            while i < size and text[i] in " \t":
                i += 1
            if i < size and text[i] != ",":
                raise ValueError("text after a quoted cell")
        else:
            while i < size and text[i] != ",":
                i += 1
            raw = text[start:i]
            value = raw.strip()
            end = start + len(raw.rstrip())
        cells.append((value, start, end))
        if i >= size:
            return cells
        i += 1


@dataclass(slots=True)
class _CsvAccount:
    line: int
    wallet: Decimal
    wallet_text: str
    positions: list[BookPosition] = field(default_factory=list)
    cells: list[dict[str, Span]] = field(default_factory=list)


def _csv_number(value: str, positive: bool) -> tuple[Decimal | None, str | None]:
    """(number, problem): a cell read exactly, with the reason it is unacceptable if it is."""
    if not _UNSIGNED.fullmatch(value):
        try:
            number = parse_decimal(value)
        except NumberSyntaxError:
            return None, f"expected a number {{where}}, found '{value}'"
        bound = "above" if positive else "at least"
        return None, f"'{value}' is out of range {{where}}; expected {bound} 0"
    try:
        number = parse_decimal(value)
    except NumberSyntaxError as exc:
        return None, f"{exc} {{where}}"
    if positive and number == 0:
        return None, f"'{value}' is out of range {{where}}; expected above 0"
    return number, None


def _csv_header(number: int, text: str, report: _Report) -> tuple[dict[str, int], int] | None:
    """Column positions by name and the number of cells, or None when the header is wrong."""
    whole = report.span(number, text, 0, len(text))
    try:
        header = _csv_cells(text)
    except ValueError as exc:
        report.add("E615", f"the CSV header cannot be read: {exc}", whole)
        return None
    columns: dict[str, int] = {}
    ok = True
    for index, (name, start, end) in enumerate(header):
        span = report.span(number, text, start, end)
        if name in columns:
            report.add("E615", f"column '{name}' appears twice in the CSV header", span)
            ok = False
        elif name not in CSV_COLUMNS:
            report.add(
                "E615",
                f"unknown column '{name}' in the CSV header",
                span,
                did_you_mean(name, CSV_COLUMNS) or "columns: " + ", ".join(CSV_COLUMNS),
            )
            ok = False
        columns.setdefault(name, index)
    missing = [c for c in CSV_COLUMNS if c not in columns and c not in _OPTIONAL_COLUMNS]
    if missing:
        report.add(
            "E615",
            "the CSV header lacks column"
            + ("s " if len(missing) > 1 else " ")
            + ", ".join(f"'{c}'" for c in missing),
            whole,
            "the header is " + ",".join(CSV_COLUMNS),
        )
        ok = False
    return (columns, len(header)) if ok else None


def _csv_row(
    number: int,
    text: str,
    header: tuple[dict[str, int], int],
    accounts: dict[str, _CsvAccount],
    report: _Report,
) -> None:
    """Read one row into `accounts`, or report why it cannot be read."""
    columns, width = header
    try:
        cells = _csv_cells(text)
    except ValueError as exc:
        report.add(
            "E615",
            f"line {number} cannot be read as CSV: {exc}",
            report.span(number, text, 0, len(text)),
        )
        return
    if len(cells) != width:
        report.add(
            "E615",
            f"line {number} has {len(cells)} cells, the header has {width}",
            report.span(number, text, 0, len(text)),
        )
        return
    row = {name: cells[index] for name, index in columns.items()}
    spans = {name: report.span(number, text, start, end) for name, (_, start, end) in row.items()}
    values = {name: value for name, (value, _, _) in row.items()}
    problems = len(report.diagnostics)

    def bad(code: str, name: str, message: str, hint: str | None = None) -> None:
        report.add(code, message.replace("{where}", f"in column {name}"), spans[name], hint)

    account_id = values["account_id"]
    if not account_id:
        bad("E101", "account_id", "missing value {where}")
    wallet, wallet_problem = _csv_number(values["wallet_balance"], False)
    if wallet_problem:
        bad(
            "E103" if wallet_problem.startswith("expected") else "E104",
            "wallet_balance",
            wallet_problem,
        )
    position = _csv_position(values, bad)
    if len(report.diagnostics) > problems or wallet is None:
        return
    account = accounts.get(account_id)
    if account is None:
        account = accounts[account_id] = _CsvAccount(number, wallet, values["wallet_balance"])
    elif account.wallet != wallet:
        bad(
            "E614",
            "wallet_balance",
            f"account '{account_id}' has wallet_balance "
            f"{values['wallet_balance']} here but {account.wallet_text} at line {account.line}",
            "repeat the same wallet_balance on every row of an account",
        )
        return
    if position is not None:
        account.positions.append(position)
        account.cells.append(spans)


def _read_csv(lines: Sequence[str], report: _Report) -> list[tuple[int, BookAccount]]:
    rows = [
        (number, raw.removesuffix("\r")) for number, raw in enumerate(lines, start=1) if raw.strip()
    ]
    if not rows:
        return []
    header = _csv_header(*rows[0], report)
    if header is None:
        return []
    accounts: dict[str, _CsvAccount] = {}
    for number, text in rows[1:]:
        _csv_row(number, text, header, accounts, report)
    result: list[tuple[int, BookAccount]] = []
    for account_id, found in accounts.items():
        book_account = BookAccount(account_id, found.wallet, tuple(found.positions))

        def problem(
            code: str, message: str, pointer: Pointer, hint: str | None, found: _CsvAccount = found
        ) -> None:
            index, name = pointer
            assert isinstance(index, int) and isinstance(name, str)
            cells = found.cells[index]
            report.add(code, message, cells.get(name, cells["instrument"]), hint)

        before = len(report.diagnostics)
        _position_problems(book_account, problem, lambda index, name: (index, name))
        if len(report.diagnostics) == before:
            result.append((found.line, book_account))
    return result


def _csv_position(values: Mapping[str, str], bad: Callable[..., None]) -> BookPosition | None:
    """The position of one CSV row, or None for a row that only declares a wallet."""
    if not any(values.get(name) for name in _POSITION_COLUMNS):
        return None
    ok = True
    for name in ("instrument", "side", "quantity", "entry_price", "margin_mode", "leverage"):
        if not values[name]:
            bad("E101", name, "missing value {where}")
            ok = False
    instrument, side, mode = values["instrument"], values["side"], values["margin_mode"]
    if instrument and not _INSTRUMENT.fullmatch(instrument):
        bad(
            "E104",
            "instrument",
            f"'{instrument}' is not a valid value {{where}}",
            "BASE/QUOTE, e.g. BTC/USDT",
        )
        ok = False
    for name, value, allowed in (("side", side, SIDES), ("margin_mode", mode, MARGIN_MODES)):
        if value and value not in allowed:
            bad(
                "E104",
                name,
                f"'{value}' is not allowed {{where}}; expected one of "
                + ", ".join(f"'{a}'" for a in allowed),
                did_you_mean(value, allowed),
            )
            ok = False
    numbers: dict[str, Decimal] = {}
    for name, positive in (
        ("quantity", True),
        ("entry_price", True),
        ("leverage", True),
        ("isolated_margin", False),
    ):
        text = values.get(name, "")
        if not text:
            continue
        number, problem = _csv_number(text, positive)
        if problem is not None or number is None:
            bad(
                "E103" if problem and problem.startswith("expected") else "E104",
                name,
                problem or "not a number",
            )
            ok = False
        else:
            numbers[name] = number
    if not ok:
        return None
    return BookPosition(
        instrument,
        side,
        numbers["quantity"],
        numbers["entry_price"],
        mode,
        numbers["leverage"],
        numbers.get("isolated_margin"),
    )


# -- reading and writing ---------------------------------------------------------------------


def _is_csv(path: Path, lines: Sequence[str]) -> bool:
    if path.suffix.lower() in CSV_SUFFIXES:
        return True
    if path.suffix.lower() in JSONL_SUFFIXES:
        return False
    first = next((line.strip() for line in lines if line.strip()), "")
    return not first.startswith("{")


def read_book(text: str, path: str = "<book>", *, csv: bool | None = None) -> Book:
    """Parse a book from text (JSON lines, or CSV when `csv` or the text looks like CSV)."""
    lines = text.removeprefix("\ufeff").split("\n")
    is_csv = _is_csv(Path(path), lines) if csv is None else csv
    report = _Report(path)
    found = _read_csv(lines, report) if is_csv else _read_jsonl(lines, report)
    first_line: dict[str, int] = {}
    accounts: list[BookAccount] = []
    for number, account in found:
        if account.id in first_line and not is_csv:
            text_line = lines[number - 1].removesuffix("\r")
            start = text_line.find(json.dumps(account.id))
            report.add(
                "E611",
                f"account id '{account.id}' appears twice",
                report.span(
                    number, text_line, max(start, 0), max(start, 0) + len(json.dumps(account.id))
                ),
                f"first at line {first_line[account.id]}; ids are unique in a book",
            )
            continue
        first_line.setdefault(account.id, number)
        accounts.append(account)
    if not report.diagnostics and not accounts:
        report.diagnostics.append(
            Diagnostic(
                "E616",
                "the book holds no accounts",
                path=path,
                hint="JSON lines: one account object per line; CSV: a header and one row per position",
            )
        )
    if report.diagnostics:
        raise InputError(diagnostics=report.diagnostics)
    return Book(tuple(accounts), path=path)


def load_book(reference: str | Path) -> Book:
    """Load a book file (JSON lines or CSV, by suffix or content) or a shipped book by id."""
    path = resolve_book_path(reference)
    name = str(reference) if not path.is_file() else str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        message = f"cannot read file: {exc.strerror or exc}"
        raise InputError(diagnostics=[Diagnostic("E001", message, path=name)]) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        message = f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x} on line {line})"
        raise InputError(
            diagnostics=[Diagnostic("E001", message, path=name, hint="save the file as UTF-8")]
        ) from exc
    return read_book(text, name)


def _json_position(position: BookPosition) -> str:
    parts = [
        f'"instrument": {json.dumps(position.instrument)}',
        f'"side": "{position.side}"',
        f'"quantity": {format_decimal(position.quantity)}',
        f'"entry_price": {format_decimal(position.entry_price)}',
        f'"margin_mode": "{position.margin_mode}"',
        f'"leverage": {format_decimal(position.leverage)}',
    ]
    if position.isolated_margin is not None:
        parts.append(f'"isolated_margin": {format_decimal(position.isolated_margin)}')
    return "{" + ", ".join(parts) + "}"


def account_json(account: BookAccount) -> str:
    """One account as a JSON line (numbers written exactly as plain decimals, no newline)."""
    positions = ", ".join(_json_position(p) for p in account.positions)
    return (
        f'{{"id": {json.dumps(account.id, ensure_ascii=False)}, '
        f'"wallet_balance": {format_decimal(account.wallet_balance)}, '
        f'"positions": [{positions}]}}'
    )


def write_book_jsonl(book: Book, stream: TextIO) -> None:
    """Write `book` as JSON lines, one account per line."""
    for account in book.accounts:
        stream.write(account_json(account) + "\n")


def _csv_cell(text: str) -> str:
    if any(ch in text for ch in ',"\n\r') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def write_book_csv(book: Book, stream: TextIO) -> None:
    """Write `book` as CSV, one row per position (a wallet-only row for an account without)."""
    stream.write(",".join(CSV_COLUMNS) + "\n")
    for account in book.accounts:
        head = [_csv_cell(account.id), format_decimal(account.wallet_balance)]
        if not account.positions:
            stream.write(",".join(head + [""] * len(_POSITION_COLUMNS)) + "\n")
        for p in account.positions:
            cells = [
                _csv_cell(p.instrument),
                p.side,
                format_decimal(p.quantity),
                format_decimal(p.entry_price),
                p.margin_mode,
                format_decimal(p.leverage),
                "" if p.isolated_margin is None else format_decimal(p.isolated_margin),
            ]
            stream.write(",".join(head + cells) + "\n")


# -- summary ---------------------------------------------------------------------------------


def _median(values: list[Decimal]) -> Decimal:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def summarize_book(book: Book | Iterable[BookAccount]) -> dict[str, Any]:
    """Counts and notional of a book, by instrument, side and margin mode (all exact)."""
    accounts = book.accounts if isinstance(book, Book) else tuple(book)
    instruments: dict[str, dict[str, Any]] = {}
    leverages: dict[str, list[Decimal]] = {}
    wallets = ZERO
    positions = 0
    for account in accounts:
        wallets += account.wallet_balance
        for p in account.positions:
            positions += 1
            entry = instruments.setdefault(
                p.instrument,
                {
                    "positions": 0,
                    "long": 0,
                    "short": 0,
                    "cross": 0,
                    "isolated": 0,
                    "quantity_long": ZERO,
                    "quantity_short": ZERO,
                    "notional": ZERO,
                },
            )
            entry["positions"] += 1
            entry[p.side] += 1
            entry[p.margin_mode] += 1
            entry[f"quantity_{p.side}"] += p.quantity
            entry["notional"] += p.quantity * p.entry_price
            leverages.setdefault(p.instrument, []).append(p.leverage)
    for name, entry in instruments.items():
        values = leverages[name]
        entry["leverage"] = {"min": min(values), "median": _median(values), "max": max(values)}
    return {
        "accounts": len(accounts),
        "positions": positions,
        "wallet_balance": wallets,
        "notional": sum((e["notional"] for e in instruments.values()), ZERO),
        "instruments": dict(sorted(instruments.items())),
    }
