"""`liqpolicy compare [POLICY...]`: several policies on the same book and crash, side by side.

With no arguments it runs the shipped base policies (every shipped policy that extends no other)
that have a market for every instrument of the book, on the shipped demo book through the
flash-crash scenario: the README's first command.
"""

from __future__ import annotations

import argparse
import re
import textwrap

from engine.cli.command import Command, Exit, UsageError
from engine.cli.output import Output
from engine.cli.progress import run_progress
from engine.cli.simulate import (
    add_output_option,
    add_width_option,
    as_json,
    emit,
    read_book,
    text_style,
)
from engine.policy.load import load_policy
from engine.policy.model import Policy
from engine.policy.packaged import shipped_policy_paths
from engine.report.compare_html import render_comparison_html
from engine.report.compare_markdown import render_comparison_markdown
from engine.report.compare_text import render_comparison
from engine.simulation.compare import compare, missing_instruments
from engine.simulation.model import Book, price_mismatches
from engine.simulation.scenario import load_scenario

DEFAULT_BOOK = "demo"  # books/demo.jsonl
DEFAULT_SCENARIO = "flash-crash-2025-10-10"
DEFAULT_LIMIT = 10
FORMATS = ("text", "json", "markdown", "html")
_EXTENDS = re.compile(r"^extends\s*:", re.M)


def default_policies() -> list[str]:
    """The shipped base policies by id: every shipped policy that extends no other
    (variants such as worked-example overrides are left out)."""
    return [
        path.stem
        for path in shipped_policy_paths()
        if not _EXTENDS.search(path.read_text(encoding="utf-8"))
    ]


def _book_instruments(book: Book) -> set[str]:
    return {position.instrument for account in book.accounts for position in account.positions}


def _covers(policy: Policy, instruments: set[str]) -> bool:
    """Whether the policy has a market for every instrument of the book."""
    listed = {market.instrument or symbol for symbol, market in policy.markets.items()}
    return instruments <= listed


def run(args: argparse.Namespace, output: Output) -> int:
    if args.limit < 0:
        raise UsageError("--limit must be 0 or more")
    references = args.policies or default_policies()
    if not references:
        raise UsageError("no POLICY given and no shipped policy found")
    policies = [load_policy(reference) for reference in references]
    seen: dict[str, str] = {}
    for reference, policy in zip(references, policies, strict=True):
        if policy.id in seen:
            raise UsageError(
                f"policy '{policy.id}' is given twice ({seen[policy.id]} and {reference})",
                "compare different policies",
            )
        seen[policy.id] = reference
    book = read_book(args.book or DEFAULT_BOOK)
    scenario = load_scenario(args.scenario or DEFAULT_SCENARIO)
    if not args.policies:
        instruments = _book_instruments(book)
        left_out = [p.id for p in policies if not _covers(p, instruments)]
        policies = [p for p in policies if _covers(p, instruments)]
        if left_out:
            output.message(
                "note: left out shipped policies with no market for the book's instruments "
                f"({', '.join(sorted(instruments))}): {', '.join(left_out)}"
            )
        if not policies:
            raise UsageError(
                "no shipped policy has markets for every instrument of the book",
                "name the policies to compare",
            )
    runs = len(policies)
    if args.skip_missing:
        for policy in policies:
            skipped = missing_instruments(policy, book)
            if skipped is not None:
                output.warning(f"skipped {policy.id}: {skipped.reason}")
                runs -= 1
    for warning in price_mismatches(book, scenario):
        output.warning(warning)
    with run_progress(output, runs, noun="policy") as progress:
        comparison = compare(
            policies,
            book,
            scenario,
            limit=args.limit,
            progress=progress.start,
            skip_missing=args.skip_missing,
        )
    if args.format == "json":
        text = as_json(comparison.as_dict())
    elif args.format == "markdown":
        text = render_comparison_markdown(comparison)
    elif args.format == "html":
        text = render_comparison_html(comparison)
    else:
        width, paint = text_style(output, args)
        text = render_comparison(comparison, width=width, paint=paint)
    emit(output, text, args.output)
    return Exit.OK


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "policies",
        nargs="*",
        metavar="POLICY",
        help="policy files or shipped policy ids (default: every shipped "
        "policy that extends no other)",
    )
    parser.add_argument(
        "--book",
        "-b",
        metavar="BOOK",
        help=f"book of accounts, JSON lines or CSV, or a shipped book's id "
        f"(default: {DEFAULT_BOOK})",
    )
    parser.add_argument(
        "--scenario",
        "-s",
        metavar="SCENARIO",
        help=f"scenario file or shipped scenario id (default: {DEFAULT_SCENARIO})",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (default), json (exact strings), markdown, or html (one "
        "self-contained file with charts, works offline)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"how many accounts whose fate differs most to list (default {DEFAULT_LIMIT})",
    )
    parser.add_argument(
        "--skip-missing",
        action="store_true",
        help="leave out (with a warning) policies that have no market for an instrument the "
        "book trades, instead of stopping with error E620",
    )
    add_output_option(parser)
    add_width_option(parser)


COMMAND = Command(
    name="compare",
    summary="run policies on the same book and crash scenario and compare them side by side",
    description=textwrap.dedent(f"""\
        Simulate each policy on the same book of accounts and the same scenario, then show
        the results side by side, each column in its policy's settlement currency: accounts
        liquidated (partially / fully), liquidated notional, fees (base / surcharges), margin
        returned, insurance fund start / lowest pool / end and each pool, ADL positions
        closed, volume and haircut, residuals and exhaustion, clawback rate, bad debt, where
        the liquidated money went (two groups that each add up) and the conservation error;
        then the accounts whose fate differs most and the rule
        that made the difference, and each policy's liquidation price against leverage.

        With no POLICY, compares the shipped base policies (those that extend no other and have
        a market for every instrument of the book; the others are named on stderr) on
        the shipped book `{DEFAULT_BOOK}` through `{DEFAULT_SCENARIO}`.  --format html writes one
        self-contained page (inline CSS and SVG charts, no scripts or downloads); json gives
        every figure as an exact string (docs/compare.md).

        Any number of policies can be compared.  Text tables fit the terminal (--width): when
        the policies' columns do not fit, they are shown in blocks, each repeating the labels;
        Markdown tables hold at most four policies each; HTML tables scroll sideways with the
        labels in view.  On a terminal, stderr shows which policy is running, its steps, and
        the time elapsed and left."""),
    configure=configure,
    run=run,
    examples=(
        "liqpolicy compare",
        "liqpolicy compare --format html --output report.html",
        "liqpolicy compare policies/venue-a.yaml venue-b.yaml --book my-book.csv "
        "--scenario scenarios/slow-grind-down.yaml --format markdown",
        "liqpolicy compare venue-a.yaml venue-b.yaml venue-c.yaml --skip-missing --width 120",
    ),
)
