"""The `liqpolicy` program: the command registry, the parser, and error handling around a run.

`main(argv)` parses and calls `run(args, stdout=..., stderr=...)`; tests call either.  User
mistakes (every :class:`~engine.errors.EngineError`, unreadable paths, bad options) are rendered
and exit 2; anything else is a bug: exit 3 with a one-line message, the traceback only with
`--debug`.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import TextIO

from engine._version import __version__
from engine.cli import (
    book,
    compare,
    diff,
    evaluate,
    expr,
    liq_price,
    new,
    schema,
    serve,
    simulate,
    test_cmd,
    tiers,
    validate,
)
from engine.cli.command import EXIT_CODES_HELP, Command, Exit, UsageError
from engine.cli.output import Output
from engine.errors import DiagnosticError, EngineError, EvaluationError

# The registry: adding a command is writing engine/cli/<name>.py with a COMMAND and listing it
# here.  `liqpolicy --help` shows them in this order.
COMMANDS: tuple[Command, ...] = (
    validate.COMMAND,
    new.COMMAND,
    test_cmd.COMMAND,
    evaluate.COMMAND,
    liq_price.COMMAND,
    book.COMMAND,
    simulate.COMMAND,
    compare.COMMAND,
    diff.COMMAND,
    expr.COMMAND,
    schema.COMMAND,
    tiers.COMMAND,
    serve.COMMAND,
)

PROG = "liqpolicy"
DESCRIPTION = """\
Compare how crypto exchanges liquidate leveraged positions: exchange rulebooks as
validated YAML policies with a checked expression language, run by one exact-decimal engine."""
MORE_HELP = "Run `liqpolicy COMMAND --help` for a command's options and examples."


def _wide_formatter(prog: str) -> argparse.HelpFormatter:
    """Room for the longest command name next to its summary."""
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=30, width=100)


def build_parser() -> argparse.ArgumentParser:
    """The full parser: global options and one subparser per registered command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=f"{MORE_HELP}\n\n{EXIT_CODES_HELP}",
        formatter_class=_wide_formatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an internal error"
    )
    # `--debug` is accepted after the command too; SUPPRESS keeps the subparser from resetting
    # a `--debug` given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an internal error",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command_name")
    for command in COMMANDS:
        sub = commands.add_parser(
            command.name,
            help=command.summary,
            description=command.description,
            epilog=command.epilog(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],
        )
        command.configure(sub)
        sub.set_defaults(command=command)
    return parser


def run(args: argparse.Namespace, *, stdout: TextIO, stderr: TextIO) -> int:
    """Run the command chosen in `args`, writing only to the given streams; return the exit code."""
    command: Command = args.command
    output = Output(stdout, stderr, prog=f"{PROG} {command.name}")
    debug = bool(getattr(args, "debug", False))
    try:
        return int(command.run(args, output))
    except UsageError as error:
        output.error(error.message, error.hint)
    except DiagnosticError as error:
        output.diagnostics(error.diagnostics)
    except EvaluationError as error:
        output.diagnostics([error.diagnostic()])
    except EngineError as error:  # pragma: no cover - every EngineError subclass is handled above
        output.error(str(error))
    except BrokenPipeError:
        raise  # the reader went away (`| head`); main() handles it
    except OSError as error:
        where = f"'{error.filename}': " if error.filename else ""
        output.error(f"cannot read {where}{error.strerror or error}")
    except KeyboardInterrupt:
        output.message(f"{PROG}: interrupted")
        return 130
    except Exception as error:  # an InternalError, or any other bug
        if debug:
            traceback.print_exception(error, file=stderr)
        detail = f"{type(error).__name__}: {error}".rstrip(": ")
        hint = "please report it" + ("" if debug else "; rerun with --debug for the traceback")
        output.message(f"{PROG}: internal error (a bug in liqpolicy, {hint}): {detail}")
        return Exit.INTERNAL_ERROR
    return Exit.INVALID_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `liqpolicy` console script and of `python -m engine`."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: --help/--version (0) or a usage error (2)
        code = exit_.code
        return code if isinstance(code, int) else Exit.INVALID_INPUT
    if getattr(args, "command", None) is None:
        parser.print_help(sys.stderr)
        return Exit.INVALID_INPUT
    try:
        return run(args, stdout=sys.stdout, stderr=sys.stderr)
    except BrokenPipeError:
        # Python's recipe: point stdout at devnull so the interpreter's final flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # what shells report for a process ended by SIGPIPE (128 + 13)
