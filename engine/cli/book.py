"""`liqpolicy book generate|check`: synthetic books of accounts, and a book's summary."""

from __future__ import annotations

import argparse
import io
import re
import textwrap
from decimal import Decimal
from typing import Any

from engine.cli.command import Command, Exit, UsageError
from engine.cli.output import Output, plural
from engine.numbers import NumberSyntaxError, format_decimal, parse_decimal
from engine.report.account_text import money
from engine.simulation.book import (
    load_book,
    summarize_book,
    write_book_csv,
    write_book_jsonl,
)
from engine.simulation.generate import DEFAULT_INSTRUMENTS, generate_book
from engine.simulation.scenario import load_scenario, start_prices

MAX_ACCOUNTS = 10_000_000
_INSTRUMENT = re.compile(r"([A-Za-z0-9._-]+/[A-Za-z0-9._-]+)=(.+)")


def _instruments(values: list[str] | None) -> dict[str, Decimal]:
    if not values:
        return dict(DEFAULT_INSTRUMENTS)
    instruments: dict[str, Decimal] = {}
    for value in values:
        match = _INSTRUMENT.fullmatch(value.strip())
        if match is None:
            raise UsageError(
                f"--instrument expects BASE/QUOTE=PRICE, got '{value}'",
                "for example --instrument BTC/USDT=60000",
            )
        name, text = match.groups()
        try:
            price = parse_decimal(text)
        except NumberSyntaxError as exc:
            raise UsageError(f"--instrument {name}: {exc}") from exc
        if price <= 0:
            raise UsageError(f"--instrument {name}: the start price must be positive")
        if name in instruments:
            raise UsageError(f"--instrument {name} is given twice")
        instruments[name] = price
    return instruments


def _chosen(prices: dict[str, Decimal], names: list[str] | None) -> dict[str, Decimal]:
    """The scenario's instruments named by bare `--instrument BASE/QUOTE` (all by default)."""
    if not names:
        return prices
    chosen: dict[str, Decimal] = {}
    for name in names:
        if "=" in name:
            raise UsageError(
                f"--instrument {name}: with --scenario the start price comes from the scenario",
                "name the instrument alone, e.g. --instrument BTC/USD",
            )
        if name not in prices:
            raise UsageError(
                f"--instrument {name} is not an instrument of the scenario",
                "the scenario has " + ", ".join(prices),
            )
        chosen[name] = prices[name]
    return chosen


def _share(text: str) -> Decimal:
    try:
        share = parse_decimal(text)
    except NumberSyntaxError as exc:
        raise UsageError(f"--multi-instrument-share: {exc}") from exc
    if not 0 <= share <= 1:
        raise UsageError("--multi-instrument-share must lie between 0 and 1")
    return share


def _generate(args: argparse.Namespace, output: Output) -> int:
    if not 1 <= args.accounts <= MAX_ACCOUNTS:
        raise UsageError(f"--accounts must lie between 1 and {MAX_ACCOUNTS:,}")
    if args.scenario:
        instruments = _chosen(start_prices(load_scenario(args.scenario)), args.instrument)
    else:
        instruments = _instruments(args.instrument)
    inverse = frozenset(args.inverse or ())
    unknown = sorted(inverse - set(instruments))
    if unknown:
        raise UsageError(
            f"--inverse {unknown[0]}: not an instrument of the book",
            "instruments: " + ", ".join(instruments),
        )
    book = generate_book(
        args.accounts,
        args.seed,
        instruments=instruments,
        multi_instrument_share=_share(args.multi_instrument_share),
        inverse=inverse,
    )
    fmt = args.format or ("csv" if args.output and args.output.endswith(".csv") else "jsonl")
    write = write_book_csv if fmt == "csv" else write_book_jsonl
    if args.output in (None, "-"):
        buffer = io.StringIO()
        write(book, buffer)
        output.text(buffer.getvalue())
    else:
        with open(args.output, "w", encoding="utf-8", newline="\n") as stream:
            write(book, stream)
        output.message(f"wrote {plural(args.accounts, 'account')} to {args.output}")
    return Exit.OK


def _plain(value: Any) -> Any:
    """Decimals as exact strings, recursively, for JSON output."""
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _check(args: argparse.Namespace, output: Output) -> int:
    book = load_book(args.file)
    summary = summarize_book(book)
    if args.format == "json":
        output.json({"path": args.file, "valid": True, **_plain(summary)})
        return Exit.OK
    wallets = ", ".join(
        f"{money(amount)} {currency}" for currency, amount in summary["wallet_balances"].items()
    )
    output.line(
        f"ok: {args.file}: {plural(summary['accounts'], 'account')}, "
        f"{plural(summary['positions'], 'position')}, notional at entry "
        f"{money(summary['notional'])}, wallets {wallets or money(summary['wallet_balance'])}"
    )
    header = (
        "instrument",
        "positions",
        "long",
        "short",
        "cross",
        "isolated",
        "notional",
        "leverage min/median/max",
    )
    rows = [header]
    for name, entry in summary["instruments"].items():
        leverage = entry["leverage"]
        rows.append(
            (
                name if entry["kind"] == "linear" else f"{name} ({entry['kind']})",
                f"{entry['positions']:,}",
                f"{entry['long']:,}",
                f"{entry['short']:,}",
                f"{entry['cross']:,}",
                f"{entry['isolated']:,}",
                money(entry["notional"]),
                "/".join(format_decimal(leverage[k]) for k in ("min", "median", "max")),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        output.line("  " + "  ".join(cells).rstrip())
    return Exit.OK


def run(args: argparse.Namespace, output: Output) -> int:
    if args.action == "generate":
        return _generate(args, output)
    return _check(args, output)


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(title="actions", dest="action", metavar="ACTION", required=True)
    generate = actions.add_parser(
        "generate",
        help="write a synthetic book (deterministic for a seed)",
        description="Write a synthetic book: the same --seed gives the same file, byte for byte.",
    )
    generate.add_argument(
        "--accounts", type=int, required=True, metavar="N", help="number of accounts"
    )
    generate.add_argument(
        "--seed",
        type=int,
        required=True,
        metavar="S",
        help="random seed; the same seed gives the same book",
    )
    generate.add_argument(
        "--instrument",
        action="append",
        metavar="BASE/QUOTE=PRICE",
        help="an instrument and its start price (repeatable; default BTC/USDT=60000 and "
        "ETH/USDT=2400); entry prices spread a few percent around it. With --scenario, "
        "a bare BASE/QUOTE picks one of the scenario's instruments",
    )
    generate.add_argument(
        "--scenario",
        metavar="SCENARIO",
        help="take the instruments and start prices from a scenario (a file or a shipped id); "
        "--instrument BASE/QUOTE keeps only the named ones",
    )
    generate.add_argument(
        "--inverse",
        action="append",
        metavar="BASE/QUOTE",
        help="make this instrument inverse (coin-margined; repeatable): quantities are face "
        "values in the quote currency, margins and wallets in the base coin",
    )
    generate.add_argument(
        "--multi-instrument-share",
        default="0",
        metavar="X",
        help="share of accounts (0 to 1) holding several instruments; default 0",
    )
    generate.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    generate.add_argument(
        "--format",
        choices=("jsonl", "csv"),
        help="jsonl (default) or csv (default when FILE ends in .csv)",
    )
    check = actions.add_parser(
        "check",
        help="validate a book and summarise it",
        description="Validate a book (JSON lines or CSV) and print its accounts, positions "
        "per instrument, side and margin mode, notional and leverage.",
    )
    check.add_argument(
        "file",
        metavar="FILE",
        help="a .jsonl or .csv book, or the id of a shipped book (e.g. demo)",
    )
    check.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people (default), or one JSON document on stdout",
    )


COMMAND = Command(
    name="book",
    summary="generate a synthetic book of accounts, or check and summarise one",
    description=textwrap.dedent("""\
        Books are the accounts a simulation runs through a scenario: JSON lines (one account
        per line) or CSV (one position per row), policy-neutral (instruments such as BTC/USDT,
        quantities in base units, or face values for inverse instruments such as BTC/USD).  `book generate` writes a synthetic book with realistic
        spreads of leverage, size, side and margin mode; the same --seed always gives the
        same bytes.  `book check` validates a book, reporting every bad line at once as
        `path:line:col: error[CODE]: message`, and prints a summary.  Formats and the
        generator's distributions are described in docs/scenarios.md."""),
    configure=configure,
    run=run,
    examples=(
        "liqpolicy book generate --accounts 2000 --seed 7 --output my-book.jsonl",
        "liqpolicy book generate --accounts 500 --seed 1 --instrument BTC/USDT=122000 --format csv",
        "liqpolicy book generate --accounts 2000 --seed 7 --scenario short-squeeze",
        "liqpolicy book generate --accounts 2000 --seed 7 --instrument BTC/USD=43000 "
        "--inverse BTC/USD",
        "liqpolicy book check books/demo.jsonl",
    ),
)
