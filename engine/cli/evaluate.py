"""`liqpolicy evaluate POLICY ACCOUNT`: figures, trigger and, when it fires, the whole outcome."""

from __future__ import annotations

import argparse
import textwrap

from engine.cli.command import Command, Exit, add_format_option
from engine.cli.output import Output
from engine.mechanics.accounts import read_account_file
from engine.mechanics.evaluate import evaluate_account
from engine.policy.load import load_policy
from engine.report.account_text import render_account


def run(args: argparse.Namespace, output: Output) -> int:
    policy = load_policy(args.policy)
    account = read_account_file(args.account, policy)
    result = evaluate_account(policy, account, trace=args.trace or args.format == "json")
    if args.format == "json":
        output.json(result.as_dict())
    else:
        output.text(render_account(result, trace=args.trace))
    return Exit.OK


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("policy", metavar="POLICY", help="policy file, or the id of a shipped policy")
    parser.add_argument("account", metavar="ACCOUNT", help="account file (JSON or YAML)")
    parser.add_argument("--trace", action="store_true",
                        help="also print every definition and condition evaluated, with the values "
                             "read and the policy line (always included in JSON)")
    add_format_option(parser)


COMMAND = Command(
    name="evaluate",
    summary="evaluate an account under a policy: figures, trigger, liquidation statement",
    description=textwrap.dedent("""\
        Evaluate every position of an account under a policy: notional, unrealised PnL,
        maintenance margin and the tier used, margin ratio, effective leverage, liquidation and
        bankruptcy prices.  When the trigger fires and the policy declares liquidation steps,
        run them and print the settlement statement: orders, fills, fees, margin consumed,
        shortfall, and a check that the items reconcile exactly.  The account file format is
        described in docs/accounts.md (`liqpolicy schema account`)."""),
    configure=configure,
    run=run,
    examples=(
        "liqpolicy evaluate policies/my-venue.yaml account.json",
        "liqpolicy evaluate policies/my-venue.yaml account.yaml --trace",
        "liqpolicy evaluate policies/my-venue.yaml account.json --format json",
    ),
)
