"""Books as JSON lines: one account per line, read by a fast path, explained by the schema.

A line that is well formed is built directly; only a line that fails that fast check goes through
the JSON Schema, which then says what is wrong.  Spans are computed only for a line with problems.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from engine.json_exact import DuplicateKeyError, loads_exact
from engine.numbers import MAX_DIGITS, MAX_EXPONENT, ZERO, NumberSyntaxError, parse_decimal
from engine.policy.schema import Pointer, schema_diagnostics
from engine.simulation.book_format import (
    INSTRUMENT,
    KINDS,
    MARGIN_MODES,
    SIDES,
    UNSIGNED,
    Problem,
    Report,
    position_problems,
)
from engine.simulation.model import BookAccount, BookPosition
from engine.source import Diagnostic, Span

_ACCOUNT_KEYS = frozenset({"id", "wallet_balance", "positions"})
FIELD_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_POSITION_REQUIRED = frozenset(
    {"instrument", "side", "quantity", "entry_price", "margin_mode", "leverage"}
)
_POSITION_KEYS = _POSITION_REQUIRED | {"isolated_margin", "kind"}


class _Malformed(Exception):
    """The fast path met something the schema may reject: let the schema explain it."""


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
    if not isinstance(value, str) or not UNSIGNED.fullmatch(value):
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
    if type(data) is not dict or not (_ACCOUNT_KEYS <= data.keys() <= _ACCOUNT_KEYS | {"fields"}):
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
            or not INSTRUMENT.fullmatch(instrument)
            or type(side) is not str
            or side not in SIDES
            or type(mode) is not str
            or mode not in MARGIN_MODES
        ):
            raise _Malformed
        base: Pointer = ("positions", index)
        isolated = item.get("isolated_margin")
        kind = item.get("kind", "linear")
        if type(kind) is not str or kind not in KINDS:
            raise _Malformed
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
                kind=kind,
            )
        )
        if "isolated_margin" in item and isolated is None:
            raise _Malformed  # null is not a number
    raw_fields = data.get("fields", {})
    if type(raw_fields) is not dict or not all(
        type(k) is str and FIELD_NAME.fullmatch(k) for k in raw_fields
    ):
        raise _Malformed
    fields = {
        name: _json_number(value, False, ("fields", name), problem)
        for name, value in raw_fields.items()
    }
    return BookAccount(account_id, wallet, tuple(built), fields)


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


class _JsonLine:
    """Where the problems of the current line are: spans are computed only for a bad line."""

    __slots__ = ("found", "number", "report", "spans", "text")

    def __init__(self, report: Report) -> None:
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


def read_jsonl(lines: Sequence[str], report: Report) -> list[tuple[int, BookAccount]]:
    accounts: list[tuple[int, BookAccount]] = []
    line = _JsonLine(report)
    for number, raw in enumerate(lines, start=1):
        text = raw.removesuffix("\r")
        if not text or text.isspace():
            continue
        try:
            data = loads_exact(text, limits=False)  # range errors are reported per field
        except json.JSONDecodeError as exc:
            report.add(
                "E610",
                f"line {number} is not valid JSON: {exc.msg}",
                report.span(number, text, exc.colno - 1, exc.colno),
                "each line holds one account as a JSON object",
            )
            continue
        except (NumberSyntaxError, DuplicateKeyError, RecursionError) as exc:
            if isinstance(exc, DuplicateKeyError):
                message = f"duplicate key '{exc.key}'"
            elif isinstance(exc, RecursionError):
                message = "nesting too deep"
            else:
                message = str(exc)
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
            position_problems(account, line.problem, _json_pointer)
        if line.found:
            report.diagnostics.extend(line.found)
            continue
        accounts.append((number, account))
    return accounts
