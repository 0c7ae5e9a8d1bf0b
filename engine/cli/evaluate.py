"""`liqpolicy evaluate POLICY ACCOUNT`: figures, trigger and, when it fires, the whole outcome.

With ACCOUNT `-` it is a JSON-lines filter (docs/batch.md): one account per line on stdin, one
result or error object per line on stdout, written and flushed as each line is read.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Iterable
from typing import BinaryIO

from engine.api import to_json
from engine.cli.command import Command, Exit, UsageError
from engine.cli.output import Output
from engine.mechanics.accounts import read_account_file
from engine.mechanics.batch import evaluate_lines
from engine.mechanics.evaluate import evaluate_account
from engine.policy.load import load_policy
from engine.report.account_text import render_account

BATCH = "-"


def _stdin_lines() -> Iterable[str | bytes]:
    """Standard input line by line: bytes when there is a binary buffer (decoded per line, so
    one badly encoded line is reported for itself), else text (a test's StringIO)."""
    buffer: BinaryIO | None = getattr(sys.stdin, "buffer", None)
    return buffer if buffer is not None else sys.stdin


def run_batch(args: argparse.Namespace, output: Output) -> int:
    if args.format == "text":
        raise UsageError(
            "batch mode (ACCOUNT '-') writes JSON lines only",
            "leave out --format text (or give --format json)",
        )
    policy = load_policy(args.policy)
    failed = False
    for answer in evaluate_lines(policy, _stdin_lines(), trace=args.trace, source="<stdin>"):
        failed = failed or "error" in answer
        output.line(to_json(answer))
    return Exit.INVALID_INPUT if failed else Exit.OK


def run(args: argparse.Namespace, output: Output) -> int:
    if args.account == BATCH:
        return run_batch(args, output)
    policy = load_policy(args.policy)
    account = read_account_file(args.account, policy)
    json_output = args.format == "json"
    result = evaluate_account(policy, account, trace=args.trace or json_output)
    if json_output:
        output.json(result.as_dict())
    else:
        output.text(render_account(result, trace=args.trace))
    return Exit.OK


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "policy", metavar="POLICY", help="policy file, or the id of a shipped policy"
    )
    parser.add_argument(
        "account",
        metavar="ACCOUNT",
        help="account file (JSON or YAML), or - to read one JSON account per line "
        "from stdin and write one JSON result per line (batch mode)",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="also print every definition and condition evaluated, with the values "
        "read and the policy line (always included in single-account JSON; "
        "in batch mode only with this option)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default=None,
        help="text for people (default), or one JSON document on stdout for programs; "
        "batch mode always writes JSON lines",
    )


COMMAND = Command(
    name="evaluate",
    summary="evaluate an account under a policy: figures, trigger, liquidation statement",
    description=textwrap.dedent("""\
        Evaluate every position of an account under a policy: notional, unrealised PnL,
        maintenance margin and the tier used, margin ratio, effective leverage, liquidation and
        bankruptcy prices.  When the trigger fires and the policy declares liquidation steps,
        run them and print the settlement statement: orders, fills, fees, margin consumed,
        shortfall, and a check that the items reconcile exactly.  The account file format is
        described in docs/accounts.md (`liqpolicy schema account`).

        Batch mode: with ACCOUNT `-`, read one account per line from stdin (JSON lines) and
        write one JSON object per line to stdout as each is read: the result (the JSON
        document above, without the trace unless --trace, plus "line") or, for a bad line,
        {"line": N, "error": {"type", "message", "diagnostics"}}, and carry on.  Blank lines
        are skipped.  Exit 0 when every line was evaluated, 2 when any line failed
        (docs/batch.md)."""),
    configure=configure,
    run=run,
    examples=(
        "liqpolicy evaluate policies/my-venue.yaml account.json",
        "liqpolicy evaluate policies/my-venue.yaml account.yaml --trace",
        "liqpolicy evaluate policies/my-venue.yaml account.json --format json",
        "liqpolicy evaluate policies/my-venue.yaml - < accounts.jsonl > results.jsonl",
    ),
)
