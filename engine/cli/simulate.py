"""`liqpolicy simulate POLICY --book B --scenario S`: one policy through a crash, summarised.

Also home of what `compare` shares with it: `--output FILE`, `--width N` and reading the book.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.audit import AuditLog, sha256_text
from engine.cli.command import Command, Exit, UsageError
from engine.cli.output import Output
from engine.cli.progress import run_progress
from engine.paint import Paint, no_paint
from engine.policy.load import load_policy
from engine.policy.model import Policy
from engine.report.compare_text import render_result
from engine.simulation.book import load_book
from engine.simulation.book_accounts import book_accounts, symbols_by_instrument
from engine.simulation.model import Book, price_mismatches
from engine.simulation.scenario import load_scenario
from engine.simulation.simulate import simulate


def shown_path(path: str) -> str:
    """A path relative to the working directory when it lies below it."""
    if not path:
        return path
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def read_book(reference: str) -> Book:
    book = load_book(reference)
    return replace(book, path=shown_path(book.path))


def check_instruments(policies: list[Policy], book: Book) -> None:
    """Fail before simulating anything when a policy has no market for a book's instrument."""
    for policy in policies:
        book_accounts(policy, book, symbols_by_instrument(policy))


def emit(output: Output, text: str, destination: str | None) -> None:
    """The report on stdout, or in `destination` (a note on stderr says where)."""
    if destination in (None, "-"):
        output.text(text)
        return
    assert destination is not None
    with open(destination, "w", encoding="utf-8", newline="\n") as stream:
        stream.write(text if text.endswith("\n") else text + "\n")
    output.message(f"wrote {destination}")


def as_json(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def run(args: argparse.Namespace, output: Output) -> int:
    policy = load_policy(args.policy)
    book = read_book(args.book)
    scenario = load_scenario(args.scenario)
    check_instruments([policy], book)
    for warning in price_mismatches(book, scenario):
        output.warning(warning)
    with run_progress(output, 1) as progress:
        result = simulate(policy, book, scenario, progress=progress.start(policy.id))
    if args.audit_log is not None:
        count = write_audit_log(args.audit_log, policy, book.path, scenario.path, result.events)
        output.message(f"wrote {count} events to the audit log {args.audit_log}")
    if args.format == "json":
        emit(output, as_json(result.as_dict(events=args.events)), args.output)
    else:
        width, paint = text_style(output, args)
        text = render_result(result, events=args.events, width=width, paint=paint)
        emit(output, text, args.output)
    return Exit.OK


def _file_digest(path: str) -> str | None:
    try:
        return sha256_text(Path(path).read_bytes())
    except OSError:
        return None  # not a file (a book given as text)


def write_audit_log(
    target: str, policy: Policy, book_path: str, scenario_path: str, events: Iterable[Any]
) -> int:
    """Append every liquidation event of a run to the hash-chained audit log `target`, each
    with the policy digest and the digest of the run's inputs (book and scenario files)."""
    inputs = {"book": _file_digest(book_path), "scenario": _file_digest(scenario_path)}
    input_digest = sha256_text(json.dumps(inputs, sort_keys=True).encode())
    log = AuditLog(target, fsync="never")
    count = 0
    try:
        for event in events:
            head = {
                "kind": "simulation-event",
                "policy": {"id": policy.id, "digest": policy.digest},
                "input_digest": input_digest,
                "inputs": inputs,
            }
            members = json.dumps(head, ensure_ascii=False, separators=(",", ":"))[1:-1]
            data = json.dumps(event.as_dict(), ensure_ascii=False, separators=(",", ":"))
            log.append(f'{members},"event":{data}')
            count += 1
        log.sync()
    finally:
        log.close()
    return count


def add_output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout"
    )


def add_width_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--width",
        type=int,
        metavar="N",
        help="fit text tables in N columns (default: the terminal's width; no limit in a "
        "pipe or file; 0: no limit)",
    )


def text_style(output: Output, args: argparse.Namespace) -> tuple[int | None, Paint]:
    """The width text tables fit in and the painter, for text written to stdout or `--output`.

    A report written to a file is plain and, unless --width is given, has no width limit.
    """
    to_file = args.output not in (None, "-")
    width: int | None = args.width
    if width is not None and width < 0:
        raise UsageError("--width must be 0 (no limit) or more")
    if width is None and not to_file:
        width = output.width
    return (width or None), (no_paint if to_file else output.paint)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "policy", metavar="POLICY", help="policy file, or the id of a shipped policy"
    )
    parser.add_argument(
        "--book",
        "-b",
        required=True,
        metavar="BOOK",
        help="book of accounts: JSON lines or CSV (docs/scenarios.md), or a "
        "shipped book's id such as demo",
    )
    parser.add_argument(
        "--scenario",
        "-s",
        required=True,
        metavar="SCENARIO",
        help="scenario file (YAML), or a shipped scenario's id such as flash-crash-2025-10-10",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people (default), or one JSON document for programs",
    )
    parser.add_argument(
        "--events",
        action="store_true",
        help="also list every liquidation, its waterfall and every ADL "
        "(in JSON: events, deleverages and every account's fate)",
    )
    parser.add_argument(
        "--audit-log",
        metavar="FILE",
        help="append every liquidation event (statement and waterfall) to FILE as a "
        "hash-chained audit log; check it with `liqpolicy log verify FILE`",
    )
    add_output_option(parser)
    add_width_option(parser)


COMMAND = Command(
    name="simulate",
    summary="run a book of accounts through a crash scenario under one policy",
    description=textwrap.dedent("""\
        Step a book of accounts through a scenario's price path under one policy: accounts
        are liquidated as prices move (partial steps, fees), shortfalls go through the
        policy's loss waterfall (insurance fund, ADL or clawback, write-off or debt) and
        periodic charges accrue.  Money is checked to balance exactly after every step; a
        run that does not balance stops with an error instead of a report.

        The text summary, in the policy's settlement currency, lists accounts liquidated
        (partially / fully), liquidated notional, fees (base / surcharges), margin returned,
        the insurance fund (all pools, the lowest any pool fell to, each pool), ADL positions
        closed, volume and haircut, residuals and exhaustion, clawback rate, bad debt, where
        the liquidated money went and the conservation error ("0").  --format json gives the same figures as exact
        strings (docs/compare.md).  On a terminal, stderr shows the progress (steps, time
        elapsed and left) and tables fit the window (docs/cli.md)."""),
    configure=configure,
    run=run,
    examples=(
        "liqpolicy simulate policies/my-venue.yaml --book demo --scenario flash-crash-2025-10-10",
        "liqpolicy simulate my-venue.yaml -b books/demo.jsonl "
        "-s scenarios/slow-grind-down.yaml --format json --events -o run.json",
    ),
)
