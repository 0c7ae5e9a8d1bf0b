"""`liqpolicy log verify FILE`: check a hash-chained audit log (decision log, simulation events)."""

from __future__ import annotations

import argparse
import re
import textwrap

from engine.audit import verify_log
from engine.cli.command import Command, Exit, UsageError
from engine.cli.output import Output

_HASH = re.compile(r"sha256:[0-9a-f]{64}")


def _head(text: str) -> str:
    if not _HASH.fullmatch(text):
        raise argparse.ArgumentTypeError(f"'{text}' is not a hash like sha256:<64 hex digits>")
    return text


def run(args: argparse.Namespace, output: Output) -> int:
    try:
        outcome = verify_log(args.file, head=args.head)
    except IsADirectoryError:
        raise UsageError(f"'{args.file}' is a directory, not a log file") from None
    if args.format == "json":
        output.json({"file": args.file, **outcome.as_dict()})
    elif outcome.ok:
        output.line(f"ok: {args.file}: {outcome.message}")
    else:
        output.line(f"TAMPERED: {args.file}: {outcome.message}")
        if outcome.head is not None:
            output.line(
                f"  the {outcome.entries} entries before it chain correctly "
                f"(seq {outcome.first_seq} to {outcome.last_seq}, head {outcome.head})"
            )
    return Exit.OK if outcome.ok else Exit.CHECK_FAILED


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(title="actions", metavar="ACTION", dest="log_action")
    actions.required = True
    verify = actions.add_parser(
        "verify",
        help="check every entry's hash and link; print the chain head",
        description="Check every entry of a hash-chained log; report the first edited, "
        "deleted, reordered or truncated entry, or print the chain head to publish.",
    )
    verify.add_argument("file", metavar="FILE", help="the log (JSON lines)")
    verify.add_argument(
        "--head",
        type=_head,
        metavar="HASH",
        help="a head published earlier: fail unless the log still contains it "
        "(catches entries removed from the end)",
    )
    verify.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people (default), or one JSON document for programs",
    )


COMMAND = Command(
    name="log",
    summary="verify a tamper-evident audit log (decision log, simulation events)",
    description=textwrap.dedent("""\
        Audit logs written by `liqpolicy serve --decision-log FILE` and `liqpolicy simulate
        --audit-log FILE` are hash-chained JSON lines: each entry carries the SHA-256 of the
        entry before it and its own.  `log verify` recomputes every hash and link and reports
        the first entry that was edited, deleted, reordered or cut short (exit 1), or prints
        the chain head (exit 0).  Publish the head elsewhere; `--head HASH` later proves that
        no entry up to it was removed from the end."""),
    configure=configure,
    run=run,
    examples=(
        "liqpolicy log verify decisions.jsonl",
        "liqpolicy log verify decisions.jsonl --head sha256:4f1c…",
        "liqpolicy log verify events.jsonl --format json",
    ),
)
