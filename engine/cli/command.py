"""What a subcommand is: a name, help texts, an argument configurer and a runner.

Each command lives in its own module (``engine/cli/<name>.py``) exposing ``COMMAND``; the
registry in :mod:`engine.cli.app` lists them.  Runners return an exit code and write only through
the :class:`~engine.cli.output.Output` they are given, so tests can capture everything.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.cli.output import Output


class Exit(IntEnum):
    """Process exit codes, the same for every command (listed in each `--help`)."""

    OK = 0
    CHECK_FAILED = 1  # a check ran and found failures (`test`, `log verify`)
    INVALID_INPUT = 2  # usage, YAML, schema or expression errors; argparse uses 2 as well
    INTERNAL_ERROR = 3  # a bug in liqpolicy


EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  a check ran and failed (`liqpolicy test`, `liqpolicy log verify`)
  2  invalid input: usage, YAML, schema or expression errors
  3  internal error, a bug in liqpolicy: --debug shows the traceback; please report it"""


class UsageError(Exception):
    """The command line itself is wrong (a bad `--set`, an empty directory): exit 2."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


Runner = Callable[[argparse.Namespace, "Output"], int]
Configure = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand of `liqpolicy`.

    `summary` is the one-liner in `liqpolicy --help`; `description` (pre-wrapped text) and
    `examples` (lines shown under "examples:") make up `liqpolicy NAME --help`.
    """

    name: str
    summary: str
    description: str
    configure: Configure
    run: Runner
    examples: tuple[str, ...] = ()

    def epilog(self) -> str:
        parts = []
        if self.examples:
            parts.append("examples:\n" + "\n".join(f"  {line}" for line in self.examples))
        parts.append(EXIT_CODES_HELP)
        return "\n\n".join(parts)


def add_format_option(parser: argparse.ArgumentParser) -> None:
    """The `--format text|json` option every command that reports results shares."""
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people (default), or one JSON document on stdout for programs",
    )
