"""Books as CSV: one position per row, rows sharing an `account_id` forming one account.

Cells are read with their offsets, so every problem points at its cell; numbers are read from
their text with :func:`~engine.numbers.parse_decimal`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from engine.dsl.check import did_you_mean
from engine.numbers import NumberSyntaxError, parse_decimal
from engine.policy.schema import Pointer
from engine.simulation.book_format import (
    CSV_COLUMNS,
    INSTRUMENT,
    KINDS,
    MARGIN_MODES,
    OPTIONAL_COLUMNS,
    POSITION_COLUMNS,
    READ_COLUMNS,
    SIDES,
    UNSIGNED,
    Report,
    position_problems,
)
from engine.simulation.model import BookAccount, BookPosition
from engine.source import Span


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
    if not UNSIGNED.fullmatch(value):
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


def _csv_header(number: int, text: str, report: Report) -> tuple[dict[str, int], int] | None:
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
        elif name not in READ_COLUMNS:
            report.add(
                "E615",
                f"unknown column '{name}' in the CSV header",
                span,
                did_you_mean(name, READ_COLUMNS) or "columns: " + ", ".join(READ_COLUMNS),
            )
            ok = False
        columns.setdefault(name, index)
    missing = [c for c in CSV_COLUMNS if c not in columns and c not in OPTIONAL_COLUMNS]
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
    report: Report,
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


def read_csv(lines: Sequence[str], report: Report) -> list[tuple[int, BookAccount]]:
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
        position_problems(book_account, problem, lambda index, name: (index, name))
        if len(report.diagnostics) == before:
            result.append((found.line, book_account))
    return result


def _csv_position(values: Mapping[str, str], bad: Callable[..., None]) -> BookPosition | None:
    """The position of one CSV row, or None for a row that only declares a wallet."""
    if not any(values.get(name) for name in POSITION_COLUMNS):
        return None
    ok = True
    for name in ("instrument", "side", "quantity", "entry_price", "margin_mode", "leverage"):
        if not values[name]:
            bad("E101", name, "missing value {where}")
            ok = False
    instrument, side, mode = values["instrument"], values["side"], values["margin_mode"]
    kind = values.get("kind") or "linear"
    if instrument and not INSTRUMENT.fullmatch(instrument):
        bad(
            "E104",
            "instrument",
            f"'{instrument}' is not a valid value {{where}}",
            "BASE/QUOTE, e.g. BTC/USDT",
        )
        ok = False
    for name, value, allowed in (
        ("side", side, SIDES),
        ("margin_mode", mode, MARGIN_MODES),
        ("kind", kind, KINDS),
    ):
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
        kind,
    )
