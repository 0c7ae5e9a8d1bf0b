"""The book format both readers and both writers share, and how its problems are reported.

Columns, sides, margin modes and the patterns of ``schemas/book.schema.json``; the checks across
one account's positions; the report that locates every problem at ``file:line:column``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.policy.schema import Pointer
from engine.simulation.model import BookAccount
from engine.source import Diagnostic, SourceFile, Span

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
KIND_COLUMN = "kind"  # optional, after the others: linear (default) or inverse
READ_COLUMNS = (*CSV_COLUMNS, KIND_COLUMN)
OPTIONAL_COLUMNS = frozenset({"isolated_margin", KIND_COLUMN})
POSITION_COLUMNS = READ_COLUMNS[2:]
SIDES = ("long", "short")
MARGIN_MODES = ("cross", "isolated")
KINDS = ("linear", "inverse")
# the same patterns as schemas/book.schema.json
UNSIGNED = re.compile(r"[+]?[0-9][0-9_]*(\.[0-9][0-9_]*)?([eE][+-]?[0-9]+)?")
INSTRUMENT = re.compile(r"[A-Za-z0-9._-]+/[A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class _LinesSource(SourceFile):
    """A book file as diagnostics see it: only the lines that have problems are kept.

    Rendering a diagnostic asks its source for one line; keeping just those lines avoids
    re-splitting a many-megabyte book for every problem.
    """

    lines: dict[int, str] = field(default_factory=dict, repr=False, compare=False)

    def line(self, number: int) -> str:
        return self.lines.get(number, "")


class Report:
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


Problem = Callable[[str, str, Pointer, str | None], None]  # (code, message, pointer, hint)


def position_problems(
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
