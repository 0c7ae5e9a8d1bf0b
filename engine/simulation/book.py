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

This module finds and reads books; each format has its reader (:mod:`engine.simulation.book_jsonl`,
:mod:`engine.simulation.book_csv`) over the rules they share (:mod:`engine.simulation.book_format`);
writing and summarizing are in :mod:`engine.simulation.book_write` and
:mod:`engine.simulation.book_summary`, re-exported here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from engine.dsl.check import did_you_mean
from engine.errors import InputError
from engine.simulation.book_csv import read_csv
from engine.simulation.book_format import CSV_COLUMNS, MARGIN_MODES, SIDES, Report
from engine.simulation.book_jsonl import read_jsonl
from engine.simulation.book_summary import summarize_book
from engine.simulation.book_write import account_json, write_book_csv, write_book_jsonl
from engine.simulation.model import Book, BookAccount
from engine.source import Diagnostic

__all__ = [
    "CSV_COLUMNS",
    "CSV_SUFFIXES",
    "JSONL_SUFFIXES",
    "MARGIN_MODES",
    "SIDES",
    "account_json",
    "books_dir",
    "load_book",
    "read_book",
    "resolve_book_path",
    "summarize_book",
    "write_book_csv",
    "write_book_jsonl",
]

_PACKAGE = Path(__file__).resolve().parent.parent

JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv",)


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
    report = Report(path)
    found = read_csv(lines, report) if is_csv else read_jsonl(lines, report)
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


def _missing(reference: str | Path, path: Path) -> Diagnostic | None:
    """'no such file or shipped book' with the closest shipped ids, for a reference that looks
    like a misspelt id rather than a path."""
    text = str(reference)
    if path.exists() or Path(text).suffix or "/" in text:
        return None
    suffixes = (*JSONL_SUFFIXES, *CSV_SUFFIXES)
    ids = sorted({p.stem for p in books_dir().iterdir() if p.suffix in suffixes})
    hint = did_you_mean(text, ids) or ("shipped books: " + ", ".join(ids) if ids else None)
    return Diagnostic("E001", f"no such file or shipped book '{text}'", path=text, hint=hint)


def load_book(reference: str | Path) -> Book:
    """Load a book file (JSON lines or CSV, by suffix or content) or a shipped book by id."""
    path = resolve_book_path(reference)
    name = str(reference) if not path.is_file() else str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        missing = _missing(reference, path)
        if missing is not None:
            raise InputError(diagnostics=[missing]) from exc
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
