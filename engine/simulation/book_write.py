"""Books written out: JSON lines or CSV, every number exactly as a plain decimal."""

from __future__ import annotations

import json
from typing import TextIO

from engine.numbers import format_decimal
from engine.simulation.book_format import CSV_COLUMNS, READ_COLUMNS
from engine.simulation.model import Book, BookAccount, BookPosition


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
    if position.kind != "linear":
        parts.append(f'"kind": "{position.kind}"')
    return "{" + ", ".join(parts) + "}"


def account_json(account: BookAccount) -> str:
    """One account as a JSON line (numbers written exactly as plain decimals, no newline)."""
    positions = ", ".join(_json_position(p) for p in account.positions)
    fields = ", ".join(f'"{k}": {format_decimal(v)}' for k, v in account.fields.items())
    return (
        f'{{"id": {json.dumps(account.id, ensure_ascii=False)}, '
        f'"wallet_balance": {format_decimal(account.wallet_balance)}, '
        f'"positions": [{positions}]' + (f', "fields": {{{fields}}}}}' if fields else "}")
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
    """Write `book` as CSV, one row per position (a wallet-only row for an account without).

    The `kind` column is written only when the book holds an inverse position.
    """
    inverse = any(p.kind != "linear" for a in book.accounts for p in a.positions)
    columns = READ_COLUMNS if inverse else CSV_COLUMNS
    stream.write(",".join(columns) + "\n")
    for account in book.accounts:
        head = [_csv_cell(account.id), format_decimal(account.wallet_balance)]
        if not account.positions:
            stream.write(",".join(head + [""] * (len(columns) - len(head))) + "\n")
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
            if inverse:
                cells.append(p.kind)
            stream.write(",".join(head + cells) + "\n")
