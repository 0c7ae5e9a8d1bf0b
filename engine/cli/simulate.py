"""`liqpolicy simulate POLICY --book B --scenario S`: one policy through a crash, summarised.

Also home of what `compare` shares with it: the terminal progress bar and `--output FILE`.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from engine.cli.command import Command, Exit
from engine.cli.output import Output
from engine.policy.load import load_policy
from engine.policy.model import Policy
from engine.report.compare_text import render_result
from engine.simulation.book import load_book
from engine.simulation.book_accounts import book_accounts, symbols_by_instrument
from engine.simulation.model import Book, price_mismatches
from engine.simulation.scenario import load_scenario
from engine.simulation.simulate import simulate

BAR_WIDTH = 30


class ProgressBar:
    """`[#####-----]  42 %  605/1,441 steps  label`, redrawn in place with \\r on a terminal.

    Only drawn when the stream is a terminal: pipes, files and tests never see it.
    """

    def __init__(self, stream: TextIO, labels: list[str] | None = None) -> None:
        self.stream = stream
        self.labels = labels or []
        self.index = 0
        self.last_step = 0
        self.shown = ""
        self.width = 0

    @staticmethod
    def wanted(stream: TextIO) -> bool:
        isatty = getattr(stream, "isatty", None)
        return bool(isatty and isatty())

    def __call__(self, step: int, total: int) -> None:
        if step < self.last_step:  # the next policy of a comparison started
            self.index += 1
        self.last_step = step
        fraction = step / total if total else 1.0
        filled = int(BAR_WIDTH * fraction)
        label = ""
        if self.labels:
            name = self.labels[min(self.index, len(self.labels) - 1)]
            label = f"  {name}"
            if len(self.labels) > 1:
                label += f" ({self.index + 1}/{len(self.labels)})"
        text = (
            f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {int(fraction * 100):3d} %  "
            f"{step:,}/{total:,} steps{label}"
        )
        if text[: BAR_WIDTH + 8] == self.shown[: BAR_WIDTH + 8] and step not in (1, total):
            return  # same bar and percentage: skip the redraw
        self.shown = text
        self.width = max(self.width, len(text))
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()

    def clear(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def progress_bar(output: Output, labels: list[str]) -> ProgressBar | None:
    return ProgressBar(output.stderr, labels) if ProgressBar.wanted(output.stderr) else None


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
        output.message(f"warning: {warning}")
    bar = progress_bar(output, [policy.id])
    try:
        result = simulate(policy, book, scenario, progress=bar)
    finally:
        if bar is not None:
            bar.clear()
    if args.format == "json":
        emit(output, as_json(result.as_dict(events=args.events)), args.output)
    else:
        emit(output, render_result(result, events=args.events), args.output)
    return Exit.OK


def add_output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout"
    )


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
    add_output_option(parser)


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
        strings (docs/compare.md).  On a terminal a progress bar is drawn on stderr."""),
    configure=configure,
    run=run,
    examples=(
        "liqpolicy simulate policies/my-venue.yaml --book demo --scenario flash-crash-2025-10-10",
        "liqpolicy simulate my-venue.yaml -b books/demo.jsonl "
        "-s scenarios/slow-grind-down.yaml --format json --events -o run.json",
    ),
)
