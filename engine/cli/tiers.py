"""`liqpolicy tiers import FILE` and `liqpolicy tiers formats`: tier tables from venues' own files."""

from __future__ import annotations

import argparse
import re
import shlex
import textwrap
from pathlib import Path

from engine.cli.command import Command, Exit, UsageError
from engine.cli.output import Output, plural
from engine.policy.tier_formats import tier_formats
from engine.policy.tier_import import import_tiers
from engine.policy.tier_write import render_json, render_yaml

SOURCE_ID = r"[a-z0-9][a-z0-9-]*"


def _import(args: argparse.Namespace, output: Output) -> int:
    if args.source is not None and not re.fullmatch(SOURCE_ID, args.source):
        raise UsageError(
            f"--source '{args.source}' is not a source id",
            "ids are lowercase letters, digits and dashes, as in the policy's `sources`",
        )
    result = import_tiers(args.file, format_name=args.format, only=args.only)
    command = "liqpolicy tiers import " + shlex.join(_given(args))
    as_json = args.json or (args.output is not None and Path(args.output).suffix == ".json")
    if as_json:
        text = render_json(result, source=args.source, markets=args.markets)
    else:
        text = render_yaml(result, command=command, source=args.source, markets=args.markets)
    layouts = sorted({t.layout.name for t in result.tables} - {result.format.name})
    read_as = f"{result.format.name} format" + (
        f", rows read from the {', '.join(layouts)} fields in `info`" if layouts else ""
    )
    if args.output is None:
        output.text(text)
        where = "stdout"
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        where = args.output
    output.message(
        f"imported {plural(len(result.tables), 'table')} from {args.file} ({read_as}) to {where}"
    )
    if args.source is None:
        output.message(
            "note: the tables cite no source; pass --source ID (an id in the including policy's"
            " `sources`) or add `source:` by hand, else each table warns W001"
        )
    return Exit.OK


def _formats(args: argparse.Namespace, output: Output) -> int:
    for fmt in tier_formats().values():
        output.line(f"{fmt.name:8} {fmt.title}")
        output.line(f"{'':8} key {fmt.key}, bounds {fmt.bounds}; {fmt.reference}")
    return Exit.OK


def run(args: argparse.Namespace, output: Output) -> int:
    if args.tiers_command == "import":
        return _import(args, output)
    return _formats(args, output)


def _given(args: argparse.Namespace) -> list[str]:
    """The import's arguments again, for the provenance comment of the file written."""
    given = [Path(args.file).name]
    for option in ("format", "only", "source"):
        value = getattr(args, option)
        if value is not None:
            given += [f"--{option}", value]
    return [*given, "--markets"] if args.markets else given


def configure(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="tiers_command", metavar="SUBCOMMAND", required=True)
    importer = commands.add_parser(
        "import",
        help="convert a downloaded tier file into policy tables",
        description="Convert a downloaded tier file into policy tables (see `liqpolicy tiers --help`).",
    )
    importer.add_argument("file", metavar="FILE", help="the downloaded response (JSON)")
    importer.add_argument(
        "--format",
        choices=list(tier_formats()),
        help="the file's format (default: detected from its layout)",
    )
    importer.add_argument(
        "--only",
        metavar="REGEX",
        help=r"import only contracts whose name matches, e.g. '.*/USDT:USDT' (whole name)",
    )
    importer.add_argument(
        "--source", metavar="ID", help="cite this source id in every table and market written"
    )
    importer.add_argument(
        "--markets",
        action="store_true",
        help="also write a `markets` entry per contract (tiers, and instrument and kind when the"
        " contract's name tells them)",
    )
    importer.add_argument(
        "--output", "-o", metavar="PATH", help="write here instead of stdout (.json: JSON)"
    )
    importer.add_argument(
        "--json", action="store_true", help="write JSON (loads faster; JSON is YAML too)"
    )
    commands.add_parser("formats", help="list the formats `tiers import` reads")


COMMAND = Command(
    name="tiers",
    summary="import tier tables from venues' and ccxt's files: `tiers import FILE`",
    description=textwrap.dedent("""\
        `tiers import FILE` reads a tier file as downloaded (ccxt's fetch_leverage_tiers
        output, or a venue's own response: see `tiers formats`) and writes policy tables, one
        per contract, as a file a policy includes (`include: [FILE]`).  Numbers are exact, read
        from the file's text; where a ccxt tier's `info` holds the venue's own fields, the rows
        are read from those (ccxt's unified numbers are float conversions).  Bounds become the
        policy's half-open intervals [min, max).  Gaps, overlaps and a maintenance deduction
        (`cum`, `mmDeduction`) that does not follow from the tiers are errors located in FILE;
        tables of formats with such a deduction declare it, so a later hand edit that breaks
        it is a load error too.  Output is YAML, or JSON with --json or an .json --output
        (JSON loads many times faster: use it for hundreds of contracts)."""),
    configure=configure,
    run=run,
    examples=(
        "liqpolicy tiers import leverage-tiers.json --only '.*/USDT:USDT' --source my-snapshot"
        " --markets -o tiers.json",
        "liqpolicy tiers import response.json --format NAME  # NAME from `tiers formats`",
        "liqpolicy tiers formats",
    ),
)
