"""`liqpolicy diff A B`: two policies' rules side by side, before running anything."""

from __future__ import annotations

import argparse
import textwrap

from engine.cli.command import Command, Exit
from engine.cli.output import Output
from engine.cli.simulate import add_output_option, as_json, emit
from engine.policy.load import load_policy
from engine.report.policy_diff import diff_policies, render_diff_markdown, render_diff_text


def run(args: argparse.Namespace, output: Output) -> int:
    diff = diff_policies(load_policy(args.a), load_policy(args.b))
    if args.format == "json":
        text = as_json(diff.as_dict())
    elif args.format == "markdown":
        text = render_diff_markdown(diff)
    else:
        text = render_diff_text(diff, width=args.width)
    emit(output, text, args.output)
    return Exit.OK


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", metavar="A", help="policy file, or the id of a shipped policy")
    parser.add_argument("b", metavar="B", help="the policy to set beside it")
    parser.add_argument(
        "--format",
        choices=("text", "json", "markdown"),
        default="text",
        help="text (default), json (the sections and rows), or markdown",
    )
    parser.add_argument(
        "--width",
        type=int,
        default=110,
        metavar="COLUMNS",
        help="line width of the text form (default 110)",
    )
    add_output_option(parser)


COMMAND = Command(
    name="diff",
    summary="show two policies' rules side by side: markets, tiers, trigger, steps, waterfall",
    description=textwrap.dedent("""\
        Set two policies' rules side by side, section by section: markets (kind, contract
        size, tick, instrument, parameters), tier tables row by row, the trigger and its
        price inputs, the definitions whose text differs, liquidation steps, fill and
        settlement prices, fees, consumption order and surplus rule, the loss waterfall
        (order, insurance-fund pool, ADL ranking, clawback) and periodic charges.
        Expressions are compared in canonical form, so layout and redundant parentheses do
        not count.  Rows that differ are marked ≠.  Nothing is simulated: run
        `liqpolicy compare A B` to see what the differences do to a book of accounts."""),
    configure=configure,
    run=run,
    examples=(
        "liqpolicy diff policies/venue-a.yaml policies/venue-b.yaml",
        "liqpolicy diff venue-a.yaml venue-b.yaml --format markdown -o diff.md",
    ),
)
