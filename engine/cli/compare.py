"""`liqpolicy compare [POLICY...]`: several policies on the same book and crash, side by side.

With no arguments it runs the README's pair of shipped policies on the shipped demo book through
the flash-crash scenario: the README's first command.
"""

from __future__ import annotations

import argparse
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
from engine.policy.packaged import compare_defaults, shipped_policy_paths
from engine.report.compare_html import render_comparison_html
from engine.report.compare_markdown import render_comparison_markdown
from engine.report.compare_text import render_comparison
from engine.simulation.compare import compare, missing_instruments
from engine.simulation.model import price_mismatches
from engine.simulation.scenario import load_scenario

DEFAULT_BOOK: str = compare_defaults()["book"]
DEFAULT_SCENARIO: str = compare_defaults()["scenario"]
DEFAULT_LIMIT = 10
FORMATS = ("text", "json", "markdown", "html")


def default_policies() -> list[str]:
    """The policies `compare` runs without arguments: the README's choice, shipped as data
    (policies/compare-default.json). Not "every shipped policy": venues differ in instruments
    (USDT-margined, coin-margined, spot margin), so no single book fits them all."""
    shipped = {path.stem for path in shipped_policy_paths()}
    return [policy for policy in compare_defaults()["policies"] if policy in shipped]


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
        help="policy files or shipped policy ids (default: "
        + ", ".join(compare_defaults()["policies"])
        + ")",
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

        With no POLICY, compares the shipped pair named in policies/compare-default.json
        ({", ".join(compare_defaults()["policies"])}) on the shipped book `{DEFAULT_BOOK}`
        through `{DEFAULT_SCENARIO}` (why that pair: docs/compare.md).  --format html writes one
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
